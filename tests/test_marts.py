"""The analysts' marts (dbt, analytics/): built and tested on this run's database (SQLite, or
PostgreSQL in CI's second pass), equal to the Python marts they replace, documented column by
column, and loaded into Dagster downstream of the ingestion assets."""

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from resources.dbt import model_names, run_dbt
from tests.conftest import postgres_url
from tests.marts_reference import orders_daily, provisioning_daily
from warehouse.db import make_engine, normalise_url
from warehouse.migrate import upgrade
from warehouse.tables.core import quarantine, sync_runs, tenants
from warehouse.tables.mx import transactions
from warehouse.tables.orders import order_esims, order_refunds, orders, payments, provisioning_attempts
from warehouse.tables.pos import customers, inventory, products

UTC = dt.timezone.utc
DAY1, DAY2 = dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 3, 2, tzinfo=UTC)
A, B = "shop-a", "shop-b"
FOUR = Decimal("0.0001")


@pytest.fixture(scope="module")
def marts_url(tmp_path_factory) -> Iterator[str]:
    """A warehouse of its own (dbt replaces whole tables: other tests' rows stay out of it)."""
    base = postgres_url()
    if base is None:
        url = f"sqlite:///{tmp_path_factory.mktemp('marts') / 'warehouse.db'}"
        upgrade(url)
        yield url
        return
    own = make_url(base).database  # named after the given database (sh_x → sh_x_marts_…), as the benches do
    name = f"{own if own and own != 'postgres' else 'storehouse'}_marts_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(normalise_url(base)).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _order(tenant, order_id, day, hour, status, total, currency="USD", refunded="0", paid=True):
    created = day + dt.timedelta(hours=hour)
    return {"tenant_id": tenant, "order_id": order_id, "status": status, "email": "t@example.com",
            "provider": "esimcard", "provider_package_id": "p1", "package_name": "1GB", "quantity": 1,
            "unit_price": Decimal(total), "amount_total": Decimal(total), "currency": currency,
            "amount_refunded": Decimal(refunded), "request_hash": "h" * 64, "created_at": created,
            "status_changed_at": created, "paid_at": created + dt.timedelta(minutes=1) if paid else None}


def _refunds(order, *totals, at=None):
    """``order_refunds`` rows for refunds raising the order's refunded total to each of ``totals``
    in turn (what ``commerce.orders.raise_refunded`` records): the first at ``at`` (default: a
    minute after the order was made), each next one a minute later."""
    totals, at = [Decimal(t) for t in totals], at or order["created_at"] + dt.timedelta(minutes=1)
    return [{"tenant_id": order["tenant_id"], "order_id": order["order_id"], "refunded_total": total,
             "amount": total - before, "recorded_at": at + dt.timedelta(minutes=i)}
            for i, (before, total) in enumerate(zip([Decimal(0), *totals], totals))]


def _attempt(tenant, day, provider, outcome, latency, error_class=None, minute=0):
    return {"tenant_id": tenant, "order_id": "o1", "unit": 1, "provider": provider, "reference": "r",
            "outcome": outcome, "error_class": error_class, "latency_ms": latency,
            "started_at": day + dt.timedelta(hours=10, minutes=minute)}


def _product(tenant, pid, category, strain=None, price="10", status="active", source="treez"):
    return {"tenant_id": tenant, "source": source, "product_id": pid, "name": f"Product {pid}", "source_name": pid,
            "category": category, "categories": [category], "strain_type": strain, "effects": [], "flavors": [],
            "cannabinoids": {}, "price": Decimal(price), "currency": "USD", "status": status, "attributes": {}}


def _lot(tenant, pid, lot, quantity, expires=None, location="L1", threshold="5", source="treez"):
    return {"tenant_id": tenant, "source": source, "location_id": location, "product_id": pid, "lot_id": lot,
            "tracking": "lot", "quantity": Decimal(quantity), "quantity_unit": "each", "min_quantity": Decimal(1),
            "increment": Decimal(1), "available": True, "low_stock_threshold": Decimal(threshold),
            "low_stock": False, "quantity_capped": False, "expires_on": expires}


def _tx(tenant, tx_id, day, amount, kind="Sale", status="Settled", category=None, product=None, invoice=None):
    return {"tenant_id": tenant, "id": tx_id, "merchant_id": 1, "amount": Decimal(amount), "status": status,
            "type": kind, "created_at": day + dt.timedelta(hours=9, minutes=tx_id % 60),
            "invoice_number": invoice, "invoice_id": 900 + tx_id if invoice and tx_id % 2 else None,
            "has_invoice": bool(invoice and tx_id % 2), "product_category": category, "primary_product": product}


@pytest.fixture(scope="module")
def loaded(marts_url) -> str:
    """Two tenants' rows in every table the models read, with the cases that matter."""
    today = dt.datetime.now(UTC).date()
    now = dt.datetime.now(UTC)
    engine = make_engine(marts_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(tenants), [{"tenant_id": A, "name": "A"}, {"tenant_id": B, "name": "B"}])
        shop = [
            _order(A, "o1", DAY1, 1, "provisioned", "10.00"),
            _order(A, "o2", DAY1, 2, "partially_provisioned", "20.50", refunded="10.25"),
            _order(A, "o3", DAY1, 3, "failed", "7.10", currency="EUR", refunded="7.10"),
            _order(A, "o4", DAY2, 4, "expired", "5.00", paid=False),
            _order(A, "o5", DAY2, 5, "refunded", "3.33", refunded="3.33"),
            _order(A, "o6", DAY2, 23.9999, "provisioned", "0.1"),
            _order(B, "o1", DAY1, 6, "provisioned", "1.99"),
        ]
        conn.execute(sa.insert(orders), shop)
        o2, o3, o5 = shop[1], shop[2], shop[4]  # refunded as their amount_refunded says; o2 in two refunds
        conn.execute(sa.insert(order_refunds), [*_refunds(o2, "4.00", "10.25"), *_refunds(o3, "7.10"),
                                                *_refunds(o5, "3.33")])
        conn.execute(sa.insert(order_esims), [
            {"tenant_id": t, "order_id": o, "unit": u, "provider": "esimcard", "provider_package_id": "p1",
             "iccid": f"89{o}{u}", "activation_code": "LPA:1$x$y", "qr_png": b"png"}
            for t, o, u in [(A, "o1", 1), (A, "o1", 2), (A, "o2", 1), (A, "o6", 1), (B, "o1", 1)]])
        conn.execute(sa.insert(payments), [
            {"tenant_id": t, "payment_intent_id": f"pi_{t}_{o}", "order_id": o, "status": "succeeded",
             "amount": Decimal(a), "currency": c.lower()}
            for t, o, a, c in [(A, "o1", "10.00", "USD"), (A, "o2", "20.50", "USD"), (A, "o3", "7.10", "EUR"),
                               (A, "o5", "3.33", "USD"), (A, "o6", "0.1", "USD"), (B, "o1", "1.99", "USD")]])
        conn.execute(sa.insert(provisioning_attempts), [
            *[_attempt(A, DAY1, "esimcard", "succeeded" if i % 3 else "failed", round(i * 1.7 + 3, 3),
                       None if i % 3 else ("server" if i % 2 else "connection"), minute=i) for i in range(23)],
            _attempt(A, DAY1, "esimcard", "skipped", None, "circuit_open"),
            _attempt(A, DAY1, "esimcard", "skipped", None, "circuit_open"),
            _attempt(A, DAY1, "airalo", "succeeded", 88.8),
            _attempt(A, DAY2, "mobimatter", "unknown", None, "timeout"),
            _attempt(A, DAY2, "mobimatter", "succeeded", 41.25),
            _attempt(A, DAY2, "mobimatter", "succeeded", 12.5),
            _attempt(B, DAY1, "esimcard", "succeeded", 7.0),
        ])
        conn.execute(sa.insert(transactions), [
            _tx(A, 1, DAY1, "100.00", category="Injectables", product="Botox", invoice="INV1"),
            _tx(A, 2, DAY1, "50.25", category="Injectables", product="Filler", invoice="INV2"),
            _tx(A, 3, DAY1, "19.99"),
            _tx(A, 4, DAY2, "-20.00", kind="Return"),
            _tx(A, 5, DAY2, "30.00", status="Declined"),
            _tx(A, 6, DAY2, "75.10", category="Memberships", product="Gold", invoice="INV3"),
            _tx(B, 7, DAY1, "0.01"),
        ])
        conn.execute(sa.insert(products), [
            _product(A, "p1", "cannabis/flower", "indica", "12.50"),
            _product(A, "p2", "cannabis/edible/beverage", "hybrid", "4"),
            _product(A, "p3", "unmapped"),
            _product(A, "p4", "cannabis/edible", "sativa", status="deleted"),
            _product(B, "q1", "accessories", source="dutchie", price="2"),
        ])
        conn.execute(sa.insert(inventory), [
            _lot(A, "p1", "lot1", "3", expires=today + dt.timedelta(days=10)),
            _lot(A, "p1", "lot2", "4", expires=today + dt.timedelta(days=90)),
            _lot(A, "p2", "lot3", "0", expires=today + dt.timedelta(days=5)),   # empty: not "expiring"
            _lot(A, "p3", "", "2.5", location="L2", threshold="1"),
            _lot(B, "q1", "", "1", source="dutchie", expires=today - dt.timedelta(days=1)),
        ])
        conn.execute(sa.insert(customers), [
            {"tenant_id": A, "source": "treez", "customer_id": f"c{i}", "status": "active", "first_name": "Secret",
             "customer_type": ["medical", "recreational", None][i % 3], "marketing_opt_in": i % 2 == 0,
             "loyalty_points": Decimal("1.5")} for i in range(7)])
        conn.execute(sa.insert(sync_runs), [
            {"tenant_id": A, "stream": "mx_transactions", "run_id": "run1", "status": "success", "rows": 6,
             "api_calls": 2, "started_at": now - dt.timedelta(hours=3), "finished_at": now - dt.timedelta(hours=2)},
            {"tenant_id": A, "stream": "mx_invoices", "run_id": "run1", "status": "success", "rows": 3,
             "api_calls": 3, "started_at": now - dt.timedelta(hours=3), "finished_at": now - dt.timedelta(hours=2)},
            {"tenant_id": A, "stream": "pos_products:treez", "run_id": "run2", "status": "failed", "rows": 0,
             "api_calls": 1, "started_at": now - dt.timedelta(hours=1), "finished_at": now - dt.timedelta(hours=1)},
        ])
        conn.execute(sa.insert(quarantine), [
            {"tenant_id": A, "stream": "mx_transactions", "record_key": f"k{i}", "reason": "bad amount",
             "raw": {"amount": "12.3O"}} for i in range(2)])
    engine.dispose()
    return marts_url


@pytest.fixture(scope="module")
def built(loaded, tmp_path_factory) -> dict:
    """One ``dbt build`` (every model, then every dbt test) of the loaded warehouse."""
    work = tmp_path_factory.mktemp("dbt")
    result = run_dbt(["build"], loaded, work / "profiles", target_path=work / "target", check=False)
    assert result.returncode == 0, result.stdout[-6000:]
    return {"url": loaded, "work": work, "stdout": result.stdout,
            "manifest": json.loads((work / "target" / "manifest.json").read_text())}


def rows(url: str, sql: str) -> list[dict]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]
    finally:
        engine.dispose()


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(FOUR)


def test_dbt_build_runs_every_model_and_test_on_this_database(built):
    kinds = {n["resource_type"] for n in built["manifest"]["nodes"].values()}
    assert kinds == {"model", "test"}
    assert {n["name"] for n in built["manifest"]["nodes"].values() if n["resource_type"] == "model"} == model_names()
    assert "Completed successfully" in built["stdout"]
    assert "ERROR=0" in built["stdout"] and "SKIP=0" in built["stdout"] and "WARN=0" in built["stdout"]


def test_storefront_marts_equal_the_python_marts_they_replace(built):
    engine = make_engine(built["url"])
    try:
        old_orders = [r for t in (A, B) for r in orders_daily(engine, t)]
        old_attempts = [r for t in (A, B) for r in provisioning_daily(engine, t)]
    finally:
        engine.dispose()
    new_orders = {(r["tenant_id"], str(r["day"])[:10], r["currency"]): r
                  for r in rows(built["url"], "select * from mart_orders_daily")}
    assert len(new_orders) == len(old_orders) == 4
    for old in old_orders:
        new = new_orders[(old["tenant_id"], old["day"].isoformat(), old["currency"])]
        for column in ("orders", "paid_orders", "provisioned", "failed", "expired", "refunded", "esims"):
            assert new[column] == old[column], column
        for column in ("revenue", "refunds", "net_revenue"):
            assert money(new[column]) == money(old[column]), column
        assert money(new["captured"]) == money(new["revenue"])  # every paid order was captured in full
    new_attempts = {(r["tenant_id"], str(r["day"])[:10], r["provider"]): r
                    for r in rows(built["url"], "select * from mart_provisioning_daily")}
    assert len(new_attempts) == len(old_attempts) == 4
    for old in old_attempts:
        new = new_attempts[(old["tenant_id"], old["day"].isoformat(), old["provider"])]
        for column in ("attempts", "succeeded", "skipped_open"):
            assert new[column] == old[column], column
        for column in ("success_rate", "p50_latency_ms", "p95_latency_ms"):
            assert new[column] == pytest.approx(old[column], abs=1e-9), column
        assert json.loads(new["error_classes"]) == old["error_classes"]
    esimcard = new_attempts[(A, "2026-03-01", "esimcard")]  # 23 calls: interpolated percentiles
    assert (esimcard["attempts"], esimcard["skipped_open"]) == (23, 2)
    assert esimcard["p95_latency_ms"] == pytest.approx(38.53)


def test_mx_marts_per_tenant(built):
    daily = {(r["tenant_id"], str(r["day"])[:10]): r for r in rows(built["url"], "select * from mx_sales_daily")}
    day1, day2 = daily[(A, "2026-03-01")], daily[(A, "2026-03-02")]
    assert (day1["sales"], money(day1["sales_amount"]), day1["refunds"]) == (3, Decimal("170.2400"), 0)
    assert (day2["sales"], day2["refunds"], day2["failed"]) == (1, 1, 1)
    assert money(day2["refund_amount"]) == Decimal("-20.0000") and money(day2["gross_amount"]) == Decimal("85.1000")
    assert money(daily[(B, "2026-03-01")]["sales_amount"]) == Decimal("0.0100")
    categories = {(r["tenant_id"], r["product_category"]): money(r["revenue"])
                  for r in rows(built["url"], "select * from mx_revenue_by_category")}
    assert categories == {(A, "Injectables"): Decimal("150.2500"), (A, "Uncategorized"): Decimal("19.9900"),
                          (A, "Memberships"): Decimal("75.1000"), (B, "Uncategorized"): Decimal("0.0100")}
    products_ = {(r["tenant_id"], r["product"]): r["transactions"]
                 for r in rows(built["url"], "select * from mx_revenue_by_product")}
    assert products_[(A, "Botox")] == 1 and products_[(A, "(no product)")] == 1
    (linkage,) = rows(built["url"], f"select * from mx_invoice_linkage where tenant_id = '{A}'")
    assert (linkage["referencing_invoice"], linkage["linked"], linkage["linkage_rate"]) == (3, 1, pytest.approx(0.3333))
    (sync,) = rows(built["url"], "select * from mx_sync_calls")
    assert (sync["run_id"], sync["api_calls"], sync["transactions"]) == ("run1", 5, 6)
    assert sync["calls_per_transaction"] == pytest.approx(0.8333)


def test_an_incremental_rebuild_equals_a_full_one(built):
    """A changed and a new transaction: the incremental rebuild recomputes only their days (months)
    onwards, and every MX mart over it gives what a full rebuild gives."""
    later = dt.datetime.now(UTC) + dt.timedelta(minutes=5)
    engine = make_engine(built["url"])
    with engine.begin() as conn:
        conn.execute(sa.update(transactions).where(transactions.c.tenant_id == A, transactions.c.id == 6)
                     .values(amount=Decimal("80.00"), updated_at=later))
        conn.execute(sa.insert(transactions), [{**_tx(A, 8, DAY2, "1.00"), "updated_at": later}])
    engine.dispose()
    work, selected = built["work"], ["--select", "source:warehouse.transactions+"]
    marts = {"mx_sales_daily": "tenant_id, day", "mx_revenue_by_category": "tenant_id, product_category",
             "mx_revenue_by_product": "tenant_id, product, product_category", "mx_invoice_linkage": "tenant_id"}

    def read() -> dict[str, list[dict]]:  # (build_id: the build that wrote the row, which differs)
        return {mart: [{k: v for k, v in r.items() if k != "build_id"}
                       for r in rows(built["url"], f"select * from {mart} order by {key}")] for mart, key in marts.items()}

    run_dbt(["run", *selected], built["url"], work / "profiles", target_path=work / "target")
    incremental = read()
    run_dbt(["run", "--full-refresh", *selected], built["url"], work / "profiles", target_path=work / "target")
    assert incremental == read()
    day2 = next(r for r in incremental["mx_sales_daily"] if r["tenant_id"] == A and str(r["day"])[:10] == "2026-03-02")
    assert (day2["sales"], money(day2["sales_amount"])) == (2, Decimal("81.0000"))


def test_pos_marts_per_tenant(built):
    stock = {(r["tenant_id"], r["product_id"], r["location_id"]): r
             for r in rows(built["url"], "select * from pos_stock_on_hand")}
    p1 = stock[(A, "p1", "L1")]
    assert (money(p1["quantity"]), p1["lots"], money(p1["inventory_value"])) == (Decimal(7), 2, Decimal("87.5000"))
    low = {(r["product_id"], r["stock_status"]) for r in rows(built["url"], f"select * from pos_low_stock where tenant_id = '{A}'")}
    assert low == {("p2", "out_of_stock")}  # p1 7 >= 5; p3 2.5 >= its threshold 1
    expiring = {(r["tenant_id"], r["lot_id"]) for r in rows(built["url"], "select * from pos_expiring_lots")}
    assert expiring == {(A, "lot1"), (B, "")}  # lot2 is 90 days out, lot3 is empty
    tree = {(r["category_path"], r["depth"]): r["products"]
            for r in rows(built["url"], f"select * from pos_products_by_category where tenant_id = '{A}'")}
    assert tree == {("cannabis", 1): 2, ("cannabis/flower", 2): 1, ("cannabis/edible", 2): 1,
                    ("cannabis/edible/beverage", 3): 1, ("unmapped", 1): 1}  # p4 is deleted
    strains = {r["strain_type"]: r["products"] for r in rows(built["url"], f"select * from pos_products_by_strain where tenant_id = '{A}'")}
    assert strains == {"indica": 1, "hybrid": 1, "none": 1}
    by_type = {r["customer_type"]: r["customers"] for r in rows(built["url"], "select * from pos_customers_by_type")}
    assert by_type == {"medical": 3, "recreational": 2, "unknown": 2}
    columns = set(rows(built["url"], "select * from pos_customers_by_type")[0])
    assert not columns & {"first_name", "last_name", "email", "phone", "birth_date", "street", "medical_id"}


def test_platform_summary_across_tenants(built):
    summary = {(r["tenant_id"], r["stream"]): r for r in rows(built["url"], "select * from platform_sync_summary")}
    tx = summary[(A, "mx_transactions")]
    assert (tx["system"], tx["runs"], tx["last_success_rows"], tx["quarantined"]) == ("mx_merchant", 1, 6, 2)
    assert 1.9 <= float(tx["hours_since_success"]) <= 2.2
    failed = summary[(A, "pos_products:treez")]
    assert (failed["system"], failed["failed_runs"], failed["last_success_at"]) == ("treez", 1, None)


def test_every_model_column_is_described(built):
    """schema.yml documents each column the model really builds, each with a description."""
    engine = make_engine(built["url"])
    try:
        inspector = sa.inspect(engine)
        for node in built["manifest"]["nodes"].values():
            if node["resource_type"] != "model":
                continue
            built_columns = {c["name"] for c in inspector.get_columns(node["name"])}
            documented = node["columns"]
            assert node["description"].strip(), node["name"]
            assert set(documented) == built_columns, node["name"]
            assert all(c["description"].strip() for c in documented.values()), node["name"]
    finally:
        engine.dispose()


def test_the_column_description_check_catches_an_undocumented_column(built, tmp_path):
    """The same check on a project where one column lost its description fails."""
    import shutil

    from resources import dbt as dbt_module

    copy = tmp_path / "analytics"
    shutil.copytree(dbt_module.PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    schema = copy / "models" / "orders" / "schema.yml"
    schema.write_text(schema.read_text().replace("description: Calls that delivered an eSIM.", "description: ''"))
    original = dbt_module.PROJECT_DIR
    dbt_module.PROJECT_DIR = copy
    try:
        run_dbt(["parse"], built["url"], tmp_path / "profiles", target_path=tmp_path / "target")
    finally:
        dbt_module.PROJECT_DIR = original
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    undocumented = [(n["name"], c) for n in manifest["nodes"].values() if n["resource_type"] == "model"
                    for c, props in n["columns"].items() if not props["description"].strip()]
    assert undocumented == [("mart_provisioning_daily", "succeeded")]


def test_dagster_materialises_the_marts_downstream_of_ingestion(built, tmp_path, monkeypatch):
    from assets.marts import warehouse_marts
    from assets.orders import PAID_IN_FULL, orders_checks
    from pipelines.definitions import build_defs
    from resources.warehouse import WarehouseResource

    graph = build_defs().resolve_asset_graph()
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
               for k in graph.get_all_asset_keys() if graph.get(k).group_name == "marts"}
    assert parents["orders/mart_orders_daily"] == {"api/orders", "api/order_esims", "api/order_refunds", "api/payments",
                                                  "warehouse/tenants"}  # the API's tables, external; current tenants
    assert parents["orders/mart_provisioning_daily"] >= {"api/provisioning_attempts"}
    (paid_in_full,) = [graph.get_check_spec(c) for c in graph.get_check_keys_for_assets(
        {dg.AssetKey(["orders", "mart_orders_daily"])}) if c.name == PAID_IN_FULL]  # Stripe's payments feed its check
    assert {d.asset_key.to_user_string() for d in paid_in_full.additional_deps} == {"api/orders", "api/payments"}
    assert parents["pos/pos_stock_on_hand"] == {"pos/inventory", "pos/products", "warehouse/tenants"}
    assert parents["mx_merchant/mx_transactions_daily"] == {  # the columns of transactions those assets write
        "mx_merchant/transactions", "mx_merchant/invoices", "mx_merchant/product_categories", "warehouse/tenants"}
    assert parents["mx_merchant/mx_sales_daily"] == {"mx_merchant/mx_transactions_daily"}
    assert parents["pos/pos_customers_by_type"] == {"pos/customers", "warehouse/tenants"}
    spec = next(s for s in warehouse_marts.specs if s.key.to_user_string() == "orders/mart_orders_daily")
    schema = spec.metadata["dagster/column_schema"]
    assert {c.name: bool(c.description) for c in schema.columns}["net_revenue"] is True

    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    resources = {"warehouse": WarehouseResource(url=built["url"])}
    selection = [dg.AssetKey(["orders", "mart_orders_daily"]), dg.AssetKey(["orders", "mart_provisioning_daily"])]

    last_result = []

    def materialise() -> dict[str, bool]:
        result = dg.materialize([warehouse_marts, *orders_checks], selection=selection, resources=resources,
                                raise_on_error=False)
        last_result[:] = [result]
        assert result.success
        assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {k.to_user_string() for k in selection}
        return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}

    checks = materialise()
    (built_orders,) = [e.materialization for e in last_result[0].get_asset_materialization_events()
                       if e.asset_key == dg.AssetKey(["orders", "mart_orders_daily"])]
    columns = {c.name: c for c in built_orders.metadata["dagster/column_schema"].value.columns}
    assert "?" not in {c.type for c in columns.values()} and columns["tenant_id"].type  # the types dbt built
    assert columns["net_revenue"].type in ("numeric", "real") and columns["net_revenue"].description
    assert checks["mart_revenue_matches_payments"] is True and all(checks.values()), checks
    engine = make_engine(built["url"])
    with engine.begin() as conn:  # Stripe captured less than the order says was paid
        conn.execute(sa.update(payments).where(payments.c.tenant_id == B).values(amount=Decimal("0.50")))
    engine.dispose()
    assert materialise()["mart_revenue_matches_payments"] is False


def test_the_data_dictionary_is_generated_offline(built, tmp_path, monkeypatch):
    """`storehouse docs`: dbt's docs, with the warehouse's catalog, as files it can serve."""
    from resources.dbt import generate_docs

    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path / "home"))
    folder = generate_docs(built["url"], tmp_path / "docs")
    catalog = json.loads((folder / "catalog.json").read_text())
    mart = catalog["nodes"]["model.storehouse.mart_orders_daily"]
    assert {"tenant_id", "day", "currency", "net_revenue"} <= {c.lower() for c in mart["columns"]}
    page = (folder / "static_index.html").read_text()  # one file: the page with manifest and catalog inlined
    assert "Sum of the paid orders' totals" in page and "platform_sync_summary" in page
    assert (folder / "index.html").exists()


def test_the_accepted_pos_systems_and_esim_providers_come_from_the_registry(built, monkeypatch):
    """The accepted_values tests read the registry (run_dbt's vars): a system it lacks fails them."""
    import resources.esim
    import resources.pos

    work = built["work"]
    args = ["test", "--select", "pos_stock_on_hand,test_type:generic mart_provisioning_daily,test_type:generic"]
    assert run_dbt(args, built["url"], work / "profiles", target_path=work / "target", check=False).returncode == 0
    monkeypatch.setattr(resources.pos, "POS_SYSTEMS", tuple(s for s in resources.pos.POS_SYSTEMS if s != "treez"))
    monkeypatch.setattr(resources.esim, "ESIM_PROVIDERS", tuple(p for p in resources.esim.ESIM_PROVIDERS
                                                                 if p.system != "airalo"))
    result = run_dbt(args, built["url"], work / "profiles", target_path=work / "target", check=False)
    assert result.returncode != 0
    assert "FAIL 1 accepted_values_pos_stock_on_hand_source" in result.stdout, result.stdout[-3000:]
    assert "FAIL 1 accepted_values_mart_provisioning_daily_provider" in result.stdout, result.stdout[-3000:]


def test_a_failed_dagster_build_names_its_failed_tests_prints_nothing_and_leaves_no_folder(
        built, tmp_path, monkeypatch, capfd):
    """The asset's dbt build is quiet on the terminal, names what failed, and cleans up after itself."""
    import resources.pos
    from assets.marts import warehouse_marts
    from resources.dbt import TARGET_DIR
    from resources.warehouse import WarehouseResource

    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.setattr(resources.pos, "POS_SYSTEMS", tuple(s for s in resources.pos.POS_SYSTEMS if s != "treez"))
    before = set(TARGET_DIR.iterdir())
    capfd.readouterr()
    result = dg.materialize([warehouse_marts], selection=[dg.AssetKey(["pos", "pos_stock_on_hand"])],
                            resources={"warehouse": WarehouseResource(url=built["url"])}, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "accepted_values_pos_stock_on_hand_source" in message and "(fail)" in message, message
    assert set(TARGET_DIR.iterdir()) == before  # no run folder left behind
    printed = capfd.readouterr()
    assert "Running with dbt" not in printed.out + printed.err and "\x1b[" not in printed.out


def test_a_removed_tenant_leaves_the_marts_at_the_next_build(built):
    """Removing a tenant keeps its synced rows (until purged) but the marts carry current tenants
    only: the next build, incremental models included, drops it and its tests pass."""
    from warehouse.tenants import remove_tenant

    engine = make_engine(built["url"])
    with engine.begin() as conn:
        assert remove_tenant(conn, B)
    engine.dispose()
    work = built["work"]
    try:
        result = run_dbt(["build"], built["url"], work / "profiles", target_path=work / "target", check=False)
        assert result.returncode == 0, result.stdout[-6000:]
        with_b = [m for m in sorted(model_names()) if rows(built["url"], f"select count(*) as n from {m} where tenant_id = '{B}'")[0]["n"]]
        assert with_b == []
        assert rows(built["url"], f"select count(*) as n from transactions where tenant_id = '{B}'")[0]["n"] == 1  # kept
        assert rows(built["url"], f"select count(*) as n from mx_sales_daily where tenant_id = '{A}'")[0]["n"] > 0
    finally:  # B back, every mart rebuilt whole, for the test after this one
        engine = make_engine(built["url"])
        with engine.begin() as conn:
            conn.execute(sa.insert(tenants), [{"tenant_id": B, "name": "B"}])
        engine.dispose()
        run_dbt(["build", "--full-refresh"], built["url"], work / "profiles", target_path=work / "target")


def test_a_full_rebuild_keeps_the_incremental_models_indexes(built):
    """The daily MX model's indexes (its watermark, its days, its build) are post-hooks: after a
    full refresh (dbt replaces the table, the old one renamed aside with the indexes' names) the
    new table has them too, or every later rebuild and its tests would scan it."""
    work = built["work"]
    run_dbt(["run", "--full-refresh", "--select", "mx_transactions_daily"], built["url"], work / "profiles",
            target_path=work / "target")
    engine = make_engine(built["url"])
    try:
        schema = "analytics" if engine.dialect.name == "postgresql" else None
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("mx_transactions_daily", schema=schema)}
    finally:
        engine.dispose()
    assert indexes >= {"ix_mx_transactions_daily_updated", "ix_mx_transactions_daily_tenant_day",
                       "ix_mx_transactions_daily_build"}


def test_the_shop_reconciliations_hold_while_checkouts_arrive_between_build_and_test(built):
    """Orders, refunds and provider calls written after the shop's marts were built (a live shop) are
    left out of both sides of their reconciliations, up to the cut-off the build recorded, a further
    refund of an older order included; an order or a refund of before it that the mart lacks, or a
    mart that drifts, still fails them."""
    engine = make_engine(built["url"])
    now = dt.datetime.now(UTC)
    work = built["work"]  # the marts' tests, and the source check that the refunds are all recorded
    shop = ["--select", "mart_orders_daily", "mart_provisioning_daily", "order_refunds_add_up_to_amount_refunded"]

    def failing() -> set[str]:  # the shop's tests that fail now
        result = run_dbt(["test", *shop], built["url"], work / "profiles", target_path=work / "target", check=False)
        failed = {name.split("__")[0] for name in re.findall(r"^\d+ of \d+ FAIL \d+ (\S+)", result.stdout, re.M)}
        assert (result.returncode == 0) == (not failed), result.stdout[-3000:]
        return failed

    try:
        with engine.begin() as conn:  # after the build: a paid checkout, a refund of it, a provider call,
            late = {**_order(A, "late", now, 0, "provisioned", "9.99", refunded="1.00"), "created_at": now, "paid_at": now}
            conn.execute(sa.insert(orders), [late])
            conn.execute(sa.insert(order_refunds), _refunds(late, "1.00", at=now))
            conn.execute(sa.insert(provisioning_attempts), [{**_attempt(A, DAY1, "esimcard", "started", None),
                                                             "started_at": now}])
            # and a further refund of an order of before the build (o2: 10.25 refunded, now 12.00)
            conn.execute(orders.update().where(orders.c.tenant_id == A, orders.c.order_id == "o2")
                         .values(amount_refunded=Decimal("12.00")))
            conn.execute(sa.insert(order_refunds), [{"tenant_id": A, "order_id": "o2", "refunded_total": Decimal("12.00"),
                                                     "amount": Decimal("1.75"), "recorded_at": now}])
        assert failing() == set()
        with engine.begin() as conn:  # an order of before the cut-off the mart does not have
            conn.execute(sa.insert(orders), [_order(A, "missed", DAY1, 7, "provisioned", "2.00")])
        assert failing() == {"money_matches_mart_orders_daily_orders", "money_matches_mart_orders_daily_revenue"}
        with engine.begin() as conn:  # and a refund of before the cut-off it does not have
            conn.execute(orders.delete().where(orders.c.order_id == "missed"))
            conn.execute(sa.insert(order_refunds), _refunds(_order(A, "o1", DAY1, 1, "provisioned", "10.00"), "0.50"))
        assert failing() == {"money_matches_mart_orders_daily_refunds", "order_refunds_add_up_to_amount_refunded"}
        with engine.begin() as conn:  # a refund written around the ledger
            conn.execute(order_refunds.delete().where(order_refunds.c.order_id == "o1"))
            conn.execute(orders.update().where(orders.c.tenant_id == B, orders.c.order_id == "o1")
                         .values(amount_refunded=Decimal("1.99")))
        assert failing() == {"order_refunds_add_up_to_amount_refunded"}
        with engine.begin() as conn:
            conn.execute(orders.update().where(orders.c.tenant_id == B, orders.c.order_id == "o1")
                         .values(amount_refunded=Decimal("0")))
            conn.execute(sa.text(f"update mart_provisioning_daily set attempts = attempts + 1 where tenant_id = '{B}'"))
        assert failing() == {"money_matches_mart_provisioning_daily_attempts"}
    finally:
        with engine.begin() as conn:
            conn.execute(orders.delete().where(orders.c.order_id.in_(["late", "missed"])))
            conn.execute(order_refunds.delete().where(order_refunds.c.order_id.in_(["late", "o1"])))
            conn.execute(order_refunds.delete().where(order_refunds.c.order_id == "o2",
                                                      order_refunds.c.refunded_total == Decimal("12.00")))
            conn.execute(orders.update().where(orders.c.tenant_id == A, orders.c.order_id == "o2")
                         .values(amount_refunded=Decimal("10.25")))
            conn.execute(orders.update().where(orders.c.tenant_id == B, orders.c.order_id == "o1")
                         .values(amount_refunded=Decimal("0")))
            conn.execute(provisioning_attempts.delete().where(provisioning_attempts.c.started_at == now))
        engine.dispose()
        run_dbt(["run", *shop], built["url"], work / "profiles", target_path=work / "target")


def test_a_reconciliation_test_fails_when_a_mart_loses_money(built):
    """Last: the money test catches a mart whose total drifted from its source table."""
    engine = make_engine(built["url"])
    with engine.begin() as conn:
        conn.execute(sa.text(f"update mx_sales_daily set gross_amount = gross_amount + 0.01 where tenant_id = '{B}'"))
    engine.dispose()
    work = built["work"]
    result = run_dbt(["test", "--select", "mx_sales_daily"], built["url"], work / "profiles",
                     target_path=work / "target", check=False)
    assert result.returncode != 0
    assert "money_matches_mx_sales_daily_gross_amount" in result.stdout and "FAIL 1" in result.stdout


def test_the_hourly_jobs_tests_read_only_the_rows_of_their_build(built):
    """Last too: with STOREHOUSE_TESTS_THIS_BUILD_ONLY (the hourly job's builds) an incremental
    model's tests read only the rows that build wrote, the reconciliation only the days it rebuilt;
    a drift in rows an earlier build wrote is the whole-table tests' to catch (full builds, CI)."""
    from resources.dbt import TESTS_THIS_BUILD_ONLY

    engine = make_engine(built["url"])
    with engine.begin() as conn:  # an old row drifts; one payment of A arrives
        conn.execute(sa.text(f"update mx_sales_daily set gross_amount = gross_amount + 0.01 where tenant_id = '{B}'"))
        conn.execute(sa.insert(transactions), [{**_tx(A, 731, DAY2, "3.00"),
                                                "updated_at": dt.datetime.now(UTC) + dt.timedelta(minutes=10)}])
    engine.dispose()
    work, selected = built["work"], ["--select", "source:warehouse.transactions+"]
    events: list[dict] = []
    scoped = run_dbt(["build", *selected], built["url"], work / "profiles", target_path=work / "target", check=False,
                     env={TESTS_THIS_BUILD_ONLY: "true"}, on_event=events.append)
    assert scoped.returncode == 0, scoped.stdout[-3000:]
    invocation = events[0]["info"]["invocation_id"]
    this_build = rows(built["url"], f"select tenant_id, day from mx_sales_daily where build_id = '{invocation}'")
    assert {r["tenant_id"] for r in this_build} == {A}  # what the tests read: A's rebuilt days, not B's drift
    whole = run_dbt(["test", "--select", "mx_sales_daily"], built["url"], work / "profiles",
                    target_path=work / "target", check=False)
    assert whole.returncode != 0 and "money_matches_mx_sales_daily_gross_amount" in whole.stdout
