"""Sync, stuck-order and stock metrics on the API's /metrics, read from the warehouse at scrape
time (``api.warehouse_metrics``): a real MX sync against the sandbox shows up, a failed one counts."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.warehouse_metrics import SyncTotals, split_stream
from resources.dagster_resources import MxMerchantResource
from syncing.mx import sync_tenant
from syncing.state import SyncLedger
from syncing.result import SyncResult
from tests.api_storefront import settings_for
from tests.test_api_http import make_storefront
from tests.test_mx_sync import connect, make_merchant
from warehouse.tables.orders import orders
from warehouse.types import now_utc


@pytest.fixture
def client(warehouse_url, engine):
    with TestClient(create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine)) as c:
        yield c


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


MX = {"system": "mx_merchant", "stream": "mx_transactions"}


def test_a_real_sync_shows_its_rows_calls_and_duration(client, sandbox, engine, tenant_id):
    merchant = make_merchant(sandbox, transactions=120)
    connect(engine, sandbox, tenant_id, merchant)
    before = scrape(client)
    results = sync_tenant(engine, tenant_id, MxMerchantResource(backoff_base_s=0.01).client_for, run_id="run-obs-1")
    after = scrape(client)
    tx = results["mx_transactions"]
    assert tx.rows == 120 and tx.api_calls >= 1

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("storehouse_sync_rows_total", **MX) == 120
    assert delta("storehouse_sync_rows_written_total", **MX) == 120
    assert delta("storehouse_sync_api_calls_total", **MX) == tx.api_calls
    assert delta("storehouse_sync_runs_total", **MX, status="success") == 1
    assert delta("storehouse_sync_duration_seconds_count", **MX) == 1
    assert delta("storehouse_sync_duration_seconds_bucket", **MX, le="+Inf") == 1
    assert 0 < delta("storehouse_sync_duration_seconds_sum", **MX) <= tx.duration + 0.01
    for stream in ("mx_invoices", "mx_products"):
        assert delta("storehouse_sync_runs_total", system="mx_merchant", stream=stream, status="success") == 1
    # the tenant has a failure series at 0, for an alert's increase() to rise from
    assert ("storehouse_sync_failures_total", frozenset({"system": "mx_merchant", "tenant": tenant_id}.items())) in after
    assert value(after, "storehouse_sync_failures_total", system="mx_merchant", tenant=tenant_id) == 0
    again = scrape(client)  # a scrape alone adds nothing
    assert value(again, "storehouse_sync_rows_total", **MX) == value(after, "storehouse_sync_rows_total", **MX)


def test_a_failed_sync_increments_failures(client, sandbox, engine, tenant_id):
    merchant = make_merchant(sandbox)
    connect(engine, sandbox, tenant_id, {**merchant, "consumer_secret": "wrong-secret"})
    before = scrape(client)
    with pytest.raises(Exception, match="(?i)auth|credential|401"):
        sync_tenant(engine, tenant_id, MxMerchantResource(backoff_base_s=0.01).client_for, run_id="run-obs-2")
    after = scrape(client)
    failures = {"system": "mx_merchant", "tenant": tenant_id}
    assert value(after, "storehouse_sync_failures_total", **failures) - value(before, "storehouse_sync_failures_total",
                                                                               **failures) == 1
    assert value(after, "storehouse_sync_runs_total", **MX, status="failed") - \
        value(before, "storehouse_sync_runs_total", **MX, status="failed") == 1


def test_running_rows_are_counted_once_when_they_finish(engine, tenant_id):
    totals = SyncTotals(settle=dt.timedelta(0))
    totals.advance(engine)
    start = dict(totals.runs)
    key = ("dutchie", "pos_products", "success")
    first = SyncLedger(engine, tenant_id, "pos_products:dutchie", "r1")
    second = SyncLedger(engine, tenant_id, "pos_products:dutchie", "r2")
    second.finish(SyncResult(rows=5, api_calls=2))
    totals.advance(engine)
    assert totals.runs[key] - start.get(key, 0) == 1 and totals.running[("dutchie", "pos_products")] == 1
    assert totals.watermark < first.id  # held below the running row
    first.finish(SyncResult(rows=7, api_calls=1))
    totals.advance(engine)
    totals.advance(engine)
    assert totals.runs[key] - start.get(key, 0) == 2 and totals.running[("dutchie", "pos_products")] == 0
    assert totals.values[("dutchie", "pos_products")][:2] >= [3, 12]
    assert second.id <= totals.watermark or {first.id, second.id} <= totals.counted  # (another test's row may run)


def test_split_stream_names_the_system():
    assert split_stream("pos_inventory:flowhub") == ("flowhub", "pos_inventory")
    assert split_stream("esim_packages:airalo") == ("airalo", "esim_packages")
    assert split_stream("mx_invoices") == ("mx_merchant", "mx_invoices")


def test_stuck_orders_and_low_stock(client, engine, tenant_id):
    make_storefront(engine, tenant_id)  # jp-30 is out of stock
    paid = now_utc() - dt.timedelta(hours=2)
    with engine.begin() as conn:
        conn.execute(sa.insert(orders), [{
            "tenant_id": tenant_id, "order_id": f"ord_obs{i}", "status": status, "email": "a@b.io", "provider": "airalo",
            "provider_package_id": "jp-7", "package_name": "Japan", "quantity": 1, "unit_price": Decimal("3.99"),
            "amount_total": Decimal("3.99"), "currency": "USD", "request_hash": "h", "paid_at": at,
            "status_changed_at": at} for i, (status, at) in enumerate(
                [("paid", paid), ("processing", paid), ("paid", now_utc()), ("provisioned", paid)])])
    samples = scrape(client)
    assert value(samples, "storehouse_orders_stuck", tenant=tenant_id) == 2
    assert value(samples, "storehouse_esim_packages_low_stock", tenant=tenant_id, provider="airalo",
                 status="out_of_stock") == 1
    assert value(samples, "storehouse_esim_packages_low_stock", tenant=tenant_id, provider="airalo", status="low") == 0
