"""A tick of our sensors and schedules, evaluated as the code server evaluates it (from the daemon's
instance ref), builds no Dagster instance beyond the one the process keeps, and reads the warehouse
the Definitions configure."""

import time
import weakref

import dagster as dg
import pytest
from dagster._core.definitions.schedule_definition import ScheduleExecutionData
from dagster._core.definitions.sensor_definition import SensorExecutionData
from dagster._grpc.impl import get_external_schedule_execution, get_external_sensor_execution

from assets.partitions import mx_merchant_partitions
from pipelines.definitions import build_defs
from resources.warehouse import WarehouseResource
from sensors import tick_context
from warehouse.syncs import request_sync
from warehouse.tenants import add_tenant, set_connection

OURS = ["tenant_discovery", "sync_requests", "abandoned_syncs", "pos_webhook_inventory"]


@pytest.fixture
def built(monkeypatch):
    """Each Dagster instance built (from a ref, or in memory as ``build_resources`` makes one when
    given none), with nothing kept from an earlier test."""
    calls = []
    from_ref, ephemeral = dg.DagsterInstance.from_ref, dg.DagsterInstance.ephemeral
    monkeypatch.setattr(dg.DagsterInstance, "from_ref", staticmethod(lambda ref: calls.append(ref) or from_ref(ref)))
    monkeypatch.setattr(dg.DagsterInstance, "ephemeral",
                        staticmethod(lambda *a, **kw: calls.append("ephemeral") or ephemeral(*a, **kw)))
    monkeypatch.setattr(tick_context, "_instances", {})
    monkeypatch.setattr(tick_context, "_warehouses", weakref.WeakKeyDictionary())
    return calls


def _sensor(repo, ref, name, cursors=None):
    cursors = {} if cursors is None else cursors
    data = get_external_sensor_execution(repo, None, ref, name, None, None, cursors.get(name), None, None)
    assert isinstance(data, SensorExecutionData), data
    cursors[name] = data.cursor
    return data


def test_ticks_share_one_instance_per_process(built, monkeypatch, engine, warehouse_url, tenant_id):
    monkeypatch.setenv("DATABASE_URL", warehouse_url)  # the Definitions' warehouse: DATABASE_URL, as in production
    with engine.begin() as conn:
        add_tenant(conn, tenant_id)
        set_connection(conn, tenant_id, "mx_merchant", "http://x", {"merchant_id": 1})
    repo = build_defs().get_repository_def()
    with dg.instance_for_test() as instance:
        ref = instance.get_ref()
        cursors = {}
        first = _sensor(repo, ref, "tenant_discovery", cursors)  # asks for the tenant's first sync
        assert tenant_id in {k for r in first.dynamic_partitions_requests for k in r.partition_keys}
        for name in OURS:
            for _ in range(3):
                _sensor(repo, ref, name, cursors)
        # the process's own, kept: not one a tick, nor one for a tick's log or its run requests' partitions
        assert len(built) == 1

        instance.add_dynamic_partitions(mx_merchant_partitions.name, [tenant_id])
        job = repo.get_schedule_def("mx_merchant_sync_schedule").job_name
        with engine.begin() as conn:
            request_sync(conn, tenant_id, job, "test")
        requested = [r.partition_key for r in _sensor(repo, ref, "sync_requests").run_requests]
        assert requested == [tenant_id]
        ticked = get_external_schedule_execution(repo, ref, "mx_merchant_sync_schedule", time.time(), "UTC", None)
        assert isinstance(ticked, ScheduleExecutionData), ticked.error.to_string()
        [run] = ticked.run_requests  # MX runs a range of tenants: here the one partition
        assert run.tags["dagster/asset_partition_range_start"] == run.tags["dagster/asset_partition_range_end"] == tenant_id


def test_the_warehouse_is_the_one_the_definitions_or_the_context_name(warehouse):
    elsewhere = WarehouseResource(url="sqlite:///elsewhere.db")
    repo = dg.Definitions(resources={"warehouse": elsewhere}).get_repository_def()
    assert tick_context.warehouse_of(dg.build_sensor_context(repository_def=repo)).url == elsewhere.url
    given = dg.build_sensor_context(repository_def=repo, resources={"warehouse": warehouse})
    assert tick_context.warehouse_of(given).url == warehouse.url
    assert tick_context.warehouse_of(dg.build_schedule_context()).url is None  # the default: DATABASE_URL or SQLite
