"""Tenant discovery owns the partitions; manual sync requests become partition runs once."""

import dagster as dg
import sqlalchemy as sa

from assets.partitions import TENANT_PARTITIONS
from pipelines.definitions import ALL_JOBS, JOBS_BY_SYSTEM
from sensors.sync_requests import build_sync_request_sensor
from sensors.tenants import build_tenant_discovery_sensor, partition_changes
from warehouse.syncs import request_sync
from warehouse.tables.core import sync_requests
from warehouse.tenants import add_tenant, remove_tenant, set_connection


def test_partition_changes():
    assert partition_changes(["a", "b"], ["b", "c"]) == (["c"], ["a"])


def _evaluate(sensor, instance, warehouse):
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    return sensor(context)


def test_discovery_adds_new_tenants_requests_first_sync_and_deletes_removed(engine, warehouse, tenant_id):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(TENANT_PARTITIONS, ["gone-tenant"])
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "New clinic")
        set_connection(conn, tenant_id, "mx_merchant", "http://x", {"merchant_id": 1, "consumer_key": "k", "consumer_secret": "s"})
    result = _evaluate(build_tenant_discovery_sensor(JOBS_BY_SYSTEM), instance, warehouse)
    added = [k for r in result.dynamic_partitions_requests if isinstance(r, dg.AddDynamicPartitionsRequest) for k in r.partition_keys]
    deleted = [k for r in result.dynamic_partitions_requests if isinstance(r, dg.DeleteDynamicPartitionsRequest) for k in r.partition_keys]
    assert tenant_id in added and "gone-tenant" in deleted
    mine = [r for r in result.run_requests if r.partition_key == tenant_id]
    assert [r.job_name for r in mine] == ["mx_merchant_sync"]
    assert mine[0].run_key == f"first-sync:{tenant_id}:mx_merchant_sync"
    with engine.begin() as conn:
        remove_tenant(conn, tenant_id)


def test_sync_request_runs_the_partition_once(engine, warehouse, tenant_id):
    instance = dg.DagsterInstance.ephemeral()
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Clinic")
        request_id = request_sync(conn, tenant_id, "mx_merchant_sync", "cli")
        bogus_id = request_sync(conn, tenant_id, "no_such_job", "cli")
    sensor = build_sync_request_sensor(ALL_JOBS)
    first = _evaluate(sensor, instance, warehouse)
    mine = [r for r in first.run_requests if r.partition_key == tenant_id]
    assert [(r.job_name, r.run_key) for r in mine] == [("mx_merchant_sync", f"sync-request:{request_id}")]
    assert any(tenant_id in r.partition_keys for r in first.dynamic_partitions_requests)
    second = _evaluate(sensor, instance, warehouse)
    assert not [r for r in second.run_requests if r.partition_key == tenant_id]
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(sync_requests.c.id, sync_requests.c.status)
                                     .where(sync_requests.c.tenant_id == tenant_id)).all())
    assert statuses == {request_id: "launched", bogus_id: "rejected"}
