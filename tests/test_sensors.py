"""Tenant discovery owns the partition sets (one per system family); manual sync requests become partition runs once."""

import datetime as dt
import time
import uuid

import dagster as dg
import sqlalchemy as sa
from dagster._core.storage.dagster_run import DagsterRun

from assets.partitions import PARTITION_SETS, esim_partitions, mx_merchant_partitions
from pipelines.definitions import JOBS_BY_SYSTEM
from sensors.sync_requests import build_sync_request_sensor
from sensors.tenants import build_tenant_discovery_sensor, partition_changes
from warehouse.syncs import request_sync
from warehouse.tables.core import sync_requests
from warehouse.tenants import add_tenant, remove_tenant, set_connection
from warehouse.types import now_utc


def test_partition_changes():
    assert partition_changes(["a", "b"], ["b", "c"]) == (["c"], ["a"])


def _evaluate(sensor, instance, warehouse):
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    return sensor(context)


def _changes(result, kind) -> dict[str, set[str]]:
    """Partition keys added (or deleted) by a sensor result, by partition set."""
    found: dict[str, set[str]] = {}
    for r in result.dynamic_partitions_requests:
        if isinstance(r, kind):
            found.setdefault(r.partitions_def_name, set()).update(r.partition_keys)
    return found


def _mine(changes: dict[str, set[str]], tenant: str) -> set[str]:
    return {name for name, keys in changes.items() if tenant in keys}


def test_discovery_adds_new_tenants_requests_first_sync_and_deletes_removed(engine, warehouse, tenant_id):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, ["gone-tenant"])
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "New clinic")
        set_connection(conn, tenant_id, "mx_merchant", "http://x", {"merchant_id": 1, "consumer_key": "k", "consumer_secret": "s"})
    result = _evaluate(build_tenant_discovery_sensor(JOBS_BY_SYSTEM), instance, warehouse)
    added = _changes(result, dg.AddDynamicPartitionsRequest)
    deleted = _changes(result, dg.DeleteDynamicPartitionsRequest)
    assert _mine(added, tenant_id) == {"mx_merchant_tenants"}  # only where it is connected
    assert _mine(deleted, "gone-tenant") == {"mx_merchant_tenants"}
    mine = [r for r in result.run_requests if r.partition_key == tenant_id]
    assert [r.job_name for r in mine] == ["mx_merchant_sync"]
    assert mine[0].run_key.startswith(f"first-sync:{tenant_id}:mx_merchant_sync:")
    with engine.begin() as conn:
        remove_tenant(conn, tenant_id)


def test_a_system_added_later_and_a_tenant_added_again_get_their_first_sync(engine, warehouse, tenant_id):
    instance = dg.DagsterInstance.ephemeral()
    sensor = build_tenant_discovery_sensor(JOBS_BY_SYSTEM)

    def evaluate(cursor):
        context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}, cursor=cursor)
        result = sensor(context)
        for request in result.dynamic_partitions_requests:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            else:
                for key in request.partition_keys:
                    instance.delete_dynamic_partition(request.partitions_def_name, key)
        return [(r.job_name, r.run_key) for r in result.run_requests if r.partition_key == tenant_id], result.cursor

    def sets() -> set[str]:
        return {p.name for p in PARTITION_SETS.values() if tenant_id in instance.get_dynamic_partitions(p.name)}

    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Clinic")
        set_connection(conn, tenant_id, "mx_merchant", "http://x", {"merchant_id": 1})
    first, cursor = evaluate(None)
    assert [job for job, _ in first] == ["mx_merchant_sync"] and sets() == {"mx_merchant_tenants"}
    with engine.begin() as conn:  # its partition exists now: a second system still gets its first sync
        set_connection(conn, tenant_id, "airalo", "http://x", {"client_id": "c"})
    later, cursor = evaluate(cursor)
    assert "esim_catalog_sync" in [job for job, _ in later]
    assert sets() == {"mx_merchant_tenants", "esim_tenants"}  # and now an eSIM tenant too
    assert evaluate(cursor)[0] == []  # handled: not asked for again on the next tick
    time.sleep(1.1)  # first-seen times have whole seconds on SQLite
    with engine.begin() as conn:  # removed, then added again: a new first sync, under a new run key
        remove_tenant(conn, tenant_id)
        add_tenant(conn, tenant_id, "Clinic")
        set_connection(conn, tenant_id, "mx_merchant", "http://x", {"merchant_id": 1})
    again, cursor = evaluate(cursor)
    assert [job for job, _ in again] == ["mx_merchant_sync"]
    assert dict(again)["mx_merchant_sync"] != dict(first)["mx_merchant_sync"]
    assert sets() == {"mx_merchant_tenants"}  # no longer on airalo: no longer an eSIM partition
    with engine.begin() as conn:
        remove_tenant(conn, tenant_id)
    evaluate(cursor)
    assert sets() == set()


def test_sync_request_runs_the_partition_once(engine, warehouse, tenant_id):
    instance = dg.DagsterInstance.ephemeral()
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Clinic")
        set_connection(conn, tenant_id, "mx_merchant", "http://x", {"merchant_id": 1})
        request_id = request_sync(conn, tenant_id, "mx_merchant_sync", "cli")
        bogus_id = request_sync(conn, tenant_id, "no_such_job", "cli")
        unconnected_id = request_sync(conn, tenant_id, "esim_catalog_sync", "cli")  # it buys no eSIMs
    sensor = build_sync_request_sensor(JOBS_BY_SYSTEM)
    waiting = _evaluate(sensor, instance, warehouse)  # discovery has not made it a partition yet: it waits
    assert not [r for r in waiting.run_requests if r.partition_key == tenant_id]
    assert not waiting.dynamic_partitions_requests  # and no partition is added but by discovery
    with engine.connect() as conn:
        assert conn.execute(sa.select(sync_requests.c.status).where(sync_requests.c.id == request_id)
                            ).scalar_one() == "pending"
    instance.add_dynamic_partitions(mx_merchant_partitions.name, [tenant_id])  # discovery's tick
    first = _evaluate(sensor, instance, warehouse)
    mine = [r for r in first.run_requests if r.partition_key == tenant_id]
    assert [r.job_name for r in mine] == ["mx_merchant_sync"]
    assert mine[0].run_key.startswith(f"sync-request:{request_id}:")  # and the request's time: ids can return
    assert not first.dynamic_partitions_requests
    second = _evaluate(sensor, instance, warehouse)
    assert not [r for r in second.run_requests if r.partition_key == tenant_id]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sync_requests.c.status).where(sync_requests.c.id == request_id)
                            ).scalar_one() == "launched"
    with engine.begin() as conn:  # handed to a daemon that stopped before it submitted the run
        conn.execute(sa.update(sync_requests).where(sync_requests.c.id == request_id)
                     .values(launched_at=now_utc() - dt.timedelta(minutes=5)))
    third = _evaluate(sensor, instance, warehouse)
    assert [r.run_key for r in third.run_requests if r.partition_key == tenant_id] == [mine[0].run_key]
    instance.add_run(DagsterRun(job_name="mx_merchant_sync", run_id=uuid.uuid4().hex,
                                tags={"dagster/run_key": mine[0].run_key}))  # the daemon submitted it this time
    fourth = _evaluate(sensor, instance, warehouse)
    assert not [r for r in fourth.run_requests if r.partition_key == tenant_id]
    with engine.connect() as conn:  # the run exists: watched no more
        statuses = dict(conn.execute(sa.select(sync_requests.c.id, sync_requests.c.status)
                                     .where(sync_requests.c.tenant_id == tenant_id)).all())
    assert statuses == {request_id: "started", bogus_id: "rejected", unconnected_id: "rejected"}
    assert tenant_id not in instance.get_dynamic_partitions(esim_partitions.name)


def test_a_failure_is_reported_by_its_own_error_not_dagsters_wrappers():
    from types import SimpleNamespace as Error

    from sensors.alerts import cause_of

    own = Error(cls_name="Failure", message="dagster._core.definitions.events.Failure: Tenant 'acme': mx_merchant: "
                "cannot reach 127.0.0.1 (ConnectError)\n", cause=None)
    retried = Error(cls_name="RetryRequestedFromPolicy", message="RetryRequestedFromPolicy\n", cause=own)
    exhausted = Error(cls_name="DagsterMaxRetriesExceededError", message="Exceeded max_retries of 2\n", cause=retried)
    assert cause_of(exhausted) == "Tenant 'acme': mx_merchant: cannot reach 127.0.0.1 (ConnectError)"
    assert cause_of(Error(cls_name="KeyError", message="KeyError: 'price'\n", cause=None)) == "KeyError: 'price'"
