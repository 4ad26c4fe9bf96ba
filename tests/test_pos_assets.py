"""The POS assets per tenant on the shared warehouse: loads, incremental refresh, deletions, breakers."""

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from assets.partitions import pos_partitions
from syncing.pos import sync_stream
from pipelines.pos import pos_assets
from resources.breaker import OPEN, SqlBreakerStore
from resources.dagster_resources import PosClientsResource
from resources.http import HttpSession
from resources.pos import POS_SYSTEMS
from resources.pos.base import BasePosClient, PosProduct
from tests.pos_accounts import new_account, native_id
from warehouse.syncs import Rejected
from warehouse.tables.core import quarantine, sync_runs
from warehouse.tables.pos import customers, inventory, products, saq_branches
from warehouse.tenants import add_tenant, set_connection

FAST = PosClientsResource(max_attempts=2, backoff_base_s=0.01)


def connect(engine, tenant_id, account, **options):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, tenant_id)
        set_connection(conn, tenant_id, account.system, account.base_url, account.credentials, {**account.options, **options})


def materialize(warehouse, tenant_id, selection=pos_assets, clients=FAST, raise_on_error=True):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(pos_partitions.name, [tenant_id])
    return dg.materialize(selection, partition_key=tenant_id, instance=instance, raise_on_error=raise_on_error,
                          resources={"warehouse": warehouse, "pos_clients": clients})


def meta(result, asset):
    events = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in events[0].metadata.items()}


def rows(engine, table, tenant_id, *where):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(table.c.tenant_id == tenant_id, *where)).mappings()]


@pytest.mark.parametrize("system", POS_SYSTEMS)
def test_each_system_loads_one_normalised_model_with_checks_passing(sandbox, warehouse, engine, tenant_id, system):
    account = new_account(sandbox.url, system, products=80, customers=12)
    connect(engine, tenant_id, account)
    result = materialize(warehouse, tenant_id)
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    loaded = rows(engine, products, tenant_id)
    assert len(loaded) == 80 and {r["source"] for r in loaded} == {system}
    assert all(r["category"] != "unmapped" and r["currency"] in ("USD", "CAD") for r in loaded)
    assert meta(result, "pos__products")["api_calls"] >= 1
    assert meta(result, "pos__products")[f"{system}_api_retry_budget"] >= 30  # the run's budget, stated
    assert len(rows(engine, customers, tenant_id)) == 12
    stock = rows(engine, inventory, tenant_id)
    assert stock and {r["product_id"] for r in stock} <= {r["product_id"] for r in loaded}
    assert len(rows(engine, saq_branches, tenant_id)) == (5 if system == "portaus" else 0)
    with engine.connect() as conn:
        view = conn.execute(sa.text("select * from customers_analytics where tenant_id = :t"), {"t": tenant_id}).mappings().all()
    assert len(view) == 12 and "email" not in view[0] and "birth_year" in view[0]


@pytest.mark.parametrize("system", POS_SYSTEMS)
def test_inventory_refresh_after_a_stock_change_writes_only_the_change(sandbox, warehouse, engine, tenant_id, system):
    account = new_account(sandbox.url, system, products=150, customers=0)
    connect(engine, tenant_id, account)
    assert materialize(warehouse, tenant_id).success
    target = sorted(rows(engine, products, tenant_id), key=lambda r: r["product_id"])[3]
    account.set_stock(native_id(target), 2)
    result = materialize(warehouse, tenant_id, [a for a in pos_assets if a.key.path[-1] == "inventory"])
    m = meta(result, "pos__inventory")
    stock = rows(engine, inventory, tenant_id, inventory.c.product_id == target["product_id"], inventory.c.deleted_at.is_(None))
    assert sum(r["quantity"] for r in stock) == 2
    assert 1 <= m["rows_written"] <= 3  # the product's lots that changed, nothing else
    if system in ("blaze", "cova", "shopify", "portaus"):  # updated-since feeds: only the change is read
        assert m[f"{system}_mode"] == "incremental" and m["rows_received"] <= 3
    else:
        assert m[f"{system}_mode"] == "full"


@pytest.mark.parametrize("system, full_refresh_hours", [("treez", 24), ("blaze", 24), ("dutchie", 0), ("shopify", 0)])
def test_deleted_products_are_marked_not_kept_live(sandbox, warehouse, engine, tenant_id, system, full_refresh_hours):
    account = new_account(sandbox.url, system, products=60, customers=0)
    connect(engine, tenant_id, account, full_refresh_hours=full_refresh_hours)
    assert materialize(warehouse, tenant_id).success
    gone, deactivated = sorted(rows(engine, products, tenant_id), key=lambda r: r["product_id"])[5:7]
    account.delete(native_id(gone), hard=True)
    account.delete(native_id(deactivated), hard=False)
    result = materialize(warehouse, tenant_id)
    by_id = {r["product_id"]: r for r in rows(engine, products, tenant_id)}
    assert by_id[gone["product_id"]]["deleted_at"] is not None and by_id[gone["product_id"]]["status"] == "deleted"
    assert by_id[deactivated["product_id"]]["status"] in ("inactive", "deleted")
    assert sum(r["deleted_at"] is not None for r in by_id.values()) <= 2
    live_stock = rows(engine, inventory, tenant_id, inventory.c.product_id == gone["product_id"], inventory.c.deleted_at.is_(None))
    assert live_stock == []
    assert meta(result, "pos__products")["deleted_at_source"] >= 1


def test_incremental_feed_without_deletions_waits_for_the_full_read(sandbox, warehouse, engine, tenant_id):
    """Dutchie's modified feed cannot report a hard delete; the product stays until the due full read."""
    account = new_account(sandbox.url, "dutchie", products=40, customers=0)
    connect(engine, tenant_id, account, full_refresh_hours=24)
    materialize(warehouse, tenant_id)
    gone = rows(engine, products, tenant_id)[0]
    account.delete(gone["product_id"], hard=True)
    assert meta(materialize(warehouse, tenant_id), "pos__products")["dutchie_mode"] == "incremental"
    assert rows(engine, products, tenant_id, products.c.product_id == gone["product_id"])[0]["deleted_at"] is None
    with engine.begin() as conn:
        set_connection(conn, tenant_id, "dutchie", account.base_url, account.credentials, {"full_refresh_hours": 0})
    assert meta(materialize(warehouse, tenant_id), "pos__products")["dutchie_mode"] == "full"
    assert rows(engine, products, tenant_id, products.c.product_id == gone["product_id"])[0]["deleted_at"] is not None


def test_open_breaker_keeps_the_last_good_data_and_does_not_call(sandbox_reset, warehouse, engine, tenant_id):
    sandbox = sandbox_reset
    account = new_account(sandbox.url, "blaze", products=50, customers=5)
    connect(engine, tenant_id, account)
    assert materialize(warehouse, tenant_id).success
    before = rows(engine, products, tenant_id)
    httpx.put(f"{sandbox.url}/_sandbox/faults/blaze", json={"down": True}).raise_for_status()
    tripping = PosClientsResource(max_attempts=1, breaker_failure_threshold=1, breaker_reset_s=3600)
    result = materialize(warehouse, tenant_id, clients=tripping)
    assert result.success  # not failed: no Dagster retry into the outage
    m = meta(result, "pos__products")
    assert m["stale"] is True and m["circuit_open"] == "blaze" and m["blaze_serving_last_good_data_from"] != "never synced"
    reachable = {c.asset_key.path[-1]: c.passed for c in result.get_asset_check_evaluations() if c.check_name == "source_reachable"}
    assert reachable == {"products": False, "inventory": False, "customers": False, "saq_branches": True}  # WARN, visible
    assert rows(engine, products, tenant_id) == before  # nothing deleted, nothing changed
    calls = httpx.get(f"{sandbox.url}/_sandbox/faults").json()["blaze"]["calls"]
    assert materialize(warehouse, tenant_id, clients=tripping).success
    assert httpx.get(f"{sandbox.url}/_sandbox/faults").json()["blaze"]["calls"] == calls  # open: no request made
    assert SqlBreakerStore(engine).load(tenant_id, "blaze").state == OPEN


def test_one_tenants_outage_does_not_touch_another(sandbox, warehouse, engine, tenant_id):
    healthy, down = f"{tenant_id}-ok", f"{tenant_id}-down"
    good = new_account(sandbox.url, "treez", products=30, customers=3)
    bad = new_account(sandbox.url, "treez", products=30, customers=3)
    bad.base_url = "http://127.0.0.1:9"  # nothing listens: connection refused
    connect(engine, healthy, good)
    connect(engine, down, bad)
    tripping = PosClientsResource(max_attempts=1, breaker_failure_threshold=1)
    assert materialize(warehouse, down, clients=tripping).success
    assert materialize(warehouse, healthy, clients=tripping).success
    assert len(rows(engine, products, healthy)) == 30 and rows(engine, products, down) == []
    store = SqlBreakerStore(engine)
    assert store.load(down, "treez").state == OPEN and store.load(healthy, "treez").state == "closed"


def test_failures_below_the_threshold_fail_the_run_and_bad_credentials_are_not_retried(sandbox, warehouse, engine, tenant_id):
    account = new_account(sandbox.url, "shopify", products=10, customers=0)
    account.credentials = {"access_token": "shpat_wrong_token_value"}
    connect(engine, tenant_id, account)
    result = materialize(warehouse, tenant_id, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = failure.step_failure_data.user_failure_data.description
    assert tenant_id in text and "shpat_wrong_token_value" not in text and "storehouse tenants add" in text
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(sync_runs.c.status).where(sync_runs.c.tenant_id == tenant_id)).scalars().all()
    assert "failed" in statuses
    assert SqlBreakerStore(engine).load(tenant_id, "shopify").failures == 0  # credentials do not trip the breaker


def test_a_provider_failure_is_retried_by_its_call_policy_only_never_again_by_dagster(
        sandbox_reset, warehouse, engine, tenant_id):
    sandbox = sandbox_reset
    account = new_account(sandbox.url, "blaze", products=10, customers=0)
    connect(engine, tenant_id, account)
    httpx.put(f"{sandbox.url}/_sandbox/faults/blaze", json={"down": True}).raise_for_status()
    clients = PosClientsResource(max_attempts=3, backoff_base_s=0.01, breaker_failure_threshold=100)
    result = materialize(warehouse, tenant_id, clients=clients, raise_on_error=False)
    assert not result.success
    failed = [e for e in result.all_events if e.is_step_failure]
    assert failed and not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    calls = httpx.get(f"{sandbox.url}/_sandbox/faults").json()["blaze"]["calls"]
    assert calls == 3 * len(failed)  # each failing step: one call, tried three times, and no second round


class ListClient(BasePosClient):
    """A source that sends what the test gives it (the asset path is covered above; this pins the sync)."""

    system = "treez"

    def __init__(self, records):
        super().__init__(HttpSession("treez", "http://127.0.0.1:9"))
        self.records = records

    def iter_products(self, updated_since=None):
        return iter(self.records)


def test_bad_records_are_quarantined_and_the_rest_load(engine, tenant_id):
    good = PosProduct(source="treez", source_id="p1", name="BLUE DREAM", category_labels=["FLOWER"])
    bad_price = PosProduct(source="treez", source_id="p2", name="OG KUSH", price=-5)
    records = [good, Rejected({"product_id": "p3"}, "product_configurable_fields: Field required", "p3"), bad_price]
    stats = sync_stream(engine, ListClient(records), tenant_id, "products")
    assert (stats.rows, stats.quarantined) == (3, 2)
    assert [r["name"] for r in rows(engine, products, tenant_id)] == ["Blue Dream"]
    reasons = {r["source_id"]: r["reason"] for r in rows(engine, quarantine, tenant_id)}
    assert reasons["p3"].startswith("product_configurable_fields") and "negative price" in reasons["p2"]
    again = sync_stream(engine, ListClient(records), tenant_id, "products")
    assert again.rows_written == 0 and len(rows(engine, quarantine, tenant_id)) == 2  # idempotent


def test_a_record_that_could_not_be_read_is_not_taken_for_deleted(engine, tenant_id):
    def product(source_id, name):
        return PosProduct(source="treez", source_id=source_id, name=name, category_labels=["FLOWER"])

    listed = [product("p1", "BLUE DREAM"), product("p2", "OG KUSH"), product("p3", "SOUR DIESEL")]
    sync_stream(engine, ListClient(listed), tenant_id, "products")
    # The next full read sends p2 in a shape we reject: quarantined, but still listed, so still live.
    unreadable = Rejected({"product_id": "p2", "pricing": {"price_sell": "12,50"}}, "price_sell: not a number", "p2")
    stats = sync_stream(engine, ListClient([listed[0], unreadable, listed[2]]), tenant_id, "products")
    assert (stats.quarantined, stats.extra["marked_deleted"]) == (1, 0)
    assert {r["product_id"]: r["status"] for r in rows(engine, products, tenant_id)} == {
        "p1": "active", "p2": "active", "p3": "active"}
    sync_stream(engine, ListClient(listed), tenant_id, "products")  # readable again: out of quarantine
    assert rows(engine, quarantine, tenant_id) == []
    # A rejected record without an id could be any of them: nothing is marked deleted that run.
    blind = sync_stream(engine, ListClient([listed[0], Rejected({}, "no id at all", None)]), tenant_id, "products")
    assert (blind.extra["marked_deleted"], blind.extra["deletions_withheld"]) == (0, 2)


FULL_READS = {"full_refresh_hours": 0}  # every read a full one
# Where a full read pages and how to see its first page, per system that can be asked by id.
FIRST_PAGE = {"treez": (lambda c: c, "product_list", lambda b: [r["product_id"] for r in b["data"]["product_list"]]),
              "blaze": (lambda c: c.session, "/products", lambda b: [r["id"] for r in b["values"]])}


@pytest.mark.parametrize("system", sorted(FIRST_PAGE))
def test_a_product_that_slips_between_pages_while_another_is_deleted_stays_live(sandbox, engine, tenant_id, system):
    account = new_account(sandbox.url, system, products=20, customers=0)
    client = FAST.client_for(account.connection(tenant_id, page_size=5))
    sync_stream(engine, client, tenant_id, "products", FULL_READS)
    client.close()
    client = FAST.client_for(account.connection(tenant_id, page_size=5))
    where, path_part, ids_of = FIRST_PAGE[system]
    real, first_page = where(client).get_json, []

    def a_deletion_lands_after_the_first_page(path, **kwargs):
        body = real(path, **kwargs)
        if path_part in path and not first_page:
            first_page.extend(ids_of(body))
            account.delete(first_page[0], hard=True)  # the rest shift: the 6th product slides onto page 1
        return body

    where(client).get_json = a_deletion_lands_after_the_first_page
    stats = sync_stream(engine, client, tenant_id, "products", FULL_READS)
    client.close()
    assert stats.extra["slipped_between_pages"] == 1  # missing from the read, but the POS still lists it
    assert rows(engine, products, tenant_id, products.c.deleted_at.is_not(None)) == []
    client = FAST.client_for(account.connection(tenant_id, page_size=5))
    sync_stream(engine, client, tenant_id, "products", FULL_READS)  # the next read misses the deleted one: it is gone
    client.close()
    deleted = [r["product_id"] for r in rows(engine, products, tenant_id, products.c.deleted_at.is_not(None))]
    assert len(deleted) == 1 and first_page[0] in deleted[0]
