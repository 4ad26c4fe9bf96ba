"""The gate before the marts (assets/marts_gate.py): a blocking check that failed on a source in
an earlier run (the POS sync's own) holds back, in the marts' separate run, the marts built on
that source; the others build. Once the source is fixed and its check passes, they build too."""

import dataclasses

import dagster as dg
import pytest
import sqlalchemy as sa

from assets.partitions import pos_partitions
from pipelines.pos import pos_assets
from resources.warehouse import WarehouseResource
from tests.pos_accounts import native_id, new_account
from tests.test_pos_assets import FAST, connect
from warehouse.db import make_engine
from warehouse.migrate import upgrade
from warehouse.tables.pos import products

STOCK = dg.AssetKey(["pos", "pos_stock_on_hand"])  # reads pos/inventory
LOW = dg.AssetKey(["pos", "pos_low_stock"])  # reads pos_stock_on_hand
ORDERS = dg.AssetKey(["orders", "mart_orders_daily"])  # reads the API's orders only


@pytest.fixture
def world(sandbox, tmp_path, monkeypatch, tenant_id):
    """A warehouse of its own (dbt replaces whole tables), one POS tenant on it, one instance. The
    gate reads Dagster's instance, not the warehouse: SQLite on both passes."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", url)  # what the definitions' warehouse resource reads
    upgrade(url)
    engine = make_engine(url)
    account = new_account(sandbox.url, "treez", products=20, customers=0)
    connect(engine, tenant_id, account)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(pos_partitions.name, [tenant_id])
    yield {"engine": engine, "account": account, "instance": instance, "warehouse": WarehouseResource(url=url)}
    engine.dispose()


def sync_pos(world, tenant_id) -> dict[str, bool]:
    result = dg.materialize(pos_assets, partition_key=tenant_id, instance=world["instance"], raise_on_error=False,
                            resources={"warehouse": world["warehouse"], "pos_clients": FAST})
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations() if c.asset_key.path[-1] == "inventory"}


def run_marts(world, *selection: dg.AssetKey) -> dg.ExecuteInProcessResult:
    """The `marts` job of the definitions (its own run, as the hourly schedule starts it)."""
    from pipelines.definitions import build_defs

    job = build_defs().resolve_job_def("marts")
    return job.execute_in_process(instance=world["instance"], asset_selection=list(selection), raise_on_error=False)


def built(result) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def test_a_failed_blocking_check_upstream_holds_back_its_marts_until_the_source_is_fixed(world, tenant_id):
    assert sync_pos(world, tenant_id)["no_negative_stock"] is True
    with world["engine"].connect() as conn:
        target = conn.execute(sa.select(products).where(products.c.tenant_id == tenant_id)
                              .order_by(products.c.product_id)).mappings().first()
    world["account"].set_stock(native_id(dict(target)), -3)
    assert sync_pos(world, tenant_id)["no_negative_stock"] is False  # blocking: the POS step fails (its run too)

    result = run_marts(world, STOCK, LOW, ORDERS)
    assert result.success and built(result) == {ORDERS}  # the clean mart builds, the two on bad stock wait
    held = {e.asset_key: e.event_specific_data.asset_observation.metadata for e in result.all_events
            if e.is_asset_observation}
    assert set(held) == {STOCK, LOW} and all(m["held_back"].value is True for m in held.values())
    assert f"pos/inventory:no_negative_stock (tenant {tenant_id})" in held[LOW]["failed_blocking_checks"].value

    alone = run_marts(world, STOCK)  # nothing left to build: the run fails and says why
    assert not alone.success
    (failure,) = [e for e in alone.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert "pos/pos_stock_on_hand: held back by" in message
    assert f"pos/inventory:no_negative_stock (tenant {tenant_id})" in message

    account = world["account"]  # a sync that dies before its checks (bad credentials) clears nothing
    connect(world["engine"], tenant_id, dataclasses.replace(account, credentials=dict.fromkeys(account.credentials, "x")))
    assert sync_pos(world, tenant_id) == {}
    assert not run_marts(world, STOCK).success
    connect(world["engine"], tenant_id, account)

    world["account"].set_stock(native_id(dict(target)), 4)  # the store corrects the count; the next sync reads it
    assert sync_pos(world, tenant_id)["no_negative_stock"] is True
    fixed = run_marts(world, STOCK, LOW, ORDERS)  # the held-back marts build now; the orders mart is up to date
    assert fixed.success and built(fixed) == {STOCK, LOW}
    assert not [e for e in fixed.all_events if e.is_asset_observation]
