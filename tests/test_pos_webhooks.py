"""POS webhooks: signatures per provider, events recorded once, the refresh sensor, and the whole
path from a stock change in the sandbox to the new quantity in the warehouse."""

import base64
import hashlib
import hmac
import json
import uuid

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from assets.partitions import TENANT_PARTITIONS
from pipelines import pos
from pipelines.definitions import defs
from resources.pos import PosClientsResource
from sensors.pos_webhooks import SENSOR_NAME
from shop.pos_webhooks import record, shopify_hmac, verify
from tests.api_shop import ApiThread, free_port, settings_for, wait_for
from tests.pos_accounts import native_id, new_account
from warehouse.tables.pos import inventory, products
from warehouse.tables.pos_events import pos_webhook_events
from warehouse.tenants import add_tenant, set_connection

FAST = PosClientsResource(max_attempts=2, backoff_base_s=0.01)


def connect(engine, tenant_id, system, base_url="http://127.0.0.1:9/none", credentials=None, options=None):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, tenant_id)
        set_connection(conn, tenant_id, system, base_url, credentials or {}, options or {})


def events(engine, tenant_id):
    t = pos_webhook_events
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id).order_by(t.c.id)).mappings()]


@pytest.fixture(scope="module")
def client(engine, warehouse_url):
    return TestClient(create_app(settings_for(warehouse_url, free_port(), worker_enabled=False), engine))


def shopify_post(client, tenant_id, body: bytes, secret: str | None, webhook_id: str, topic="inventory_levels/update",
                 shop="teststore", signature: str | None = None):
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": f"{shop}.myshopify.com",
               "X-Shopify-Webhook-Id": webhook_id, "Content-Type": "application/json"}
    if signature is not None or secret is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature if signature is not None else shopify_hmac(secret, body)
    return client.post(f"/shops/{tenant_id}/webhooks/pos/shopify", content=body, headers=headers)


# -- signatures, as pure functions ----------------------------------------------------------
def test_shopify_signature_is_base64_hmac_sha256_of_the_raw_body():
    body, secret = b'{"inventory_item_id":1,"available":3}', "shpss_secret"
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    assert shopify_hmac(secret, body) == expected
    assert verify("shopify", body, {"x-shopify-hmac-sha256": expected}, secret).signature == "valid"
    assert verify("shopify", body + b" ", {"x-shopify-hmac-sha256": expected}, secret).signature == "invalid"
    assert verify("shopify", body, {"x-shopify-hmac-sha256": expected}, "other").signature == "invalid"
    assert verify("shopify", body, {}, secret).signature == "missing"
    assert not verify("shopify", body, {"x-shopify-hmac-sha256": expected}, None).ok  # Shopify always signs


@pytest.mark.parametrize("provider,header", [("treez", "authorization"), ("dutchie", "authorization"),
                                             ("blaze", "authorization"), ("flowhub", "key"), ("cova", "authorization")])
def test_unsigned_providers_check_the_shared_secret_when_one_is_configured(provider, header):
    assert verify(provider, b"{}", {header: "s3cret"}, "s3cret").signature == "valid"
    assert verify(provider, b"{}", {header: "wrong"}, "s3cret").signature == "invalid"
    assert verify(provider, b"{}", {}, "s3cret").signature == "missing"
    assert verify(provider, b"{}", {}, None).signature == "unsigned"


# -- the route ----------------------------------------------------------------------------------
def test_signed_event_recorded_once_and_redelivery_counted(client, engine, tenant_id):
    connect(engine, tenant_id, "shopify", credentials={"access_token": "x", "api_secret": "shpss_one"})
    body = json.dumps({"inventory_item_id": 42, "location_id": 7, "available": 3}).encode()
    first = shopify_post(client, tenant_id, body, "shpss_one", "wh-1")
    again = shopify_post(client, tenant_id, body, "shpss_one", "wh-1")
    assert first.status_code == again.status_code == 200
    assert first.json() == {"event_id": "wh-1", "duplicate": False, "refresh": True}
    assert again.json()["duplicate"] is True
    [row] = events(engine, tenant_id)
    assert (row["status"], row["signature"], row["deliveries"], row["refresh"]) == ("accepted", "valid", 2, "pending")
    assert row["payload"]["available"] == 3 and row["account"] == "teststore.myshopify.com"


def test_bad_signature_is_401_and_recorded_without_blocking_the_real_event(client, engine, tenant_id):
    connect(engine, tenant_id, "shopify", credentials={"access_token": "x", "api_secret": "shpss_real"})
    body = b'{"inventory_item_id": 1, "available": 999}'
    forged = shopify_post(client, tenant_id, body, "shpss_guess", "wh-9")
    missing = shopify_post(client, tenant_id, body, None, "wh-10")
    assert forged.status_code == missing.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    assert forged.json()["type"].endswith("/invalid-signature") and "does not match" in forged.json()["detail"]
    real = shopify_post(client, tenant_id, body, "shpss_real", "wh-9")  # same id as the forgery
    assert real.status_code == 200 and real.json()["duplicate"] is False
    rows = events(engine, tenant_id)
    assert [(r["event_id"], r["status"], r["signature"], r["refresh"]) for r in rows] == [
        ("wh-9", "rejected", "invalid", "not_needed"), ("wh-10", "rejected", "missing", "not_needed"),
        ("wh-9", "accepted", "valid", "pending")]
    assert rows[0]["payload"]["excerpt"] == body.decode() and rows[0]["reason"]


def test_one_tenants_secret_does_not_open_another_tenants_endpoint(client, engine):
    a, b = f"t-{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:10]}"
    connect(engine, a, "shopify", credentials={"access_token": "x", "api_secret": "secret-a"})
    connect(engine, b, "shopify", credentials={"access_token": "y", "api_secret": "secret-b"})
    body = b'{"inventory_item_id": 5}'
    assert shopify_post(client, b, body, "secret-a", "cross-1").status_code == 401
    assert shopify_post(client, a, body, "secret-a", "cross-1").status_code == 200
    assert [r["status"] for r in events(engine, b)] == ["rejected"]


def test_shared_secret_providers_malformed_bodies_and_foreign_accounts(client, engine, tenant_id):
    connect(engine, tenant_id, "treez", credentials={"dispensary": "mine", "webhook_secret": "tz-secret"})
    url = f"/shops/{tenant_id}/webhooks/pos/treez"
    event = {"event_type": "PRODUCT", "event_action": "UPDATE", "dispensary": "mine", "data": {"product_id": "p1"}}
    body = json.dumps(event).encode()
    assert client.post(url, content=body, headers={"authorization": "nope"}).status_code == 401
    ok = client.post(url, content=body, headers={"authorization": "tz-secret"})
    assert ok.status_code == 200 and ok.json()["refresh"] is True
    assert ok.json()["event_id"] == "sha256:" + hashlib.sha256(body).hexdigest()
    bad = client.post(url, content=b"{not json", headers={"authorization": "tz-secret"})
    assert bad.status_code == 400 and bad.json()["type"].endswith("/malformed-event")
    other = json.dumps({**event, "dispensary": "someone-else"}).encode()
    foreign = client.post(url, content=other, headers={"authorization": "tz-secret"})
    assert foreign.status_code == 400 and foreign.json()["type"].endswith("/wrong-account")
    nul = json.dumps({**event, "data": {"note": "a\u0000b"}}).encode()  # JSONB holds no NUL character
    assert client.post(url, content=nul, headers={"authorization": "tz-secret"}).status_code == 200
    assert client.post(url, content=b"\x00\xff junk", headers={"authorization": "x"}).status_code == 401
    assert [(r["status"], r["signature"]) for r in events(engine, tenant_id)] == [
        ("rejected", "invalid"), ("accepted", "valid"), ("rejected", "valid"), ("rejected", "valid"),
        ("accepted", "valid"), ("rejected", "invalid")]


def test_unsigned_provider_without_secret_and_unknown_endpoints(client, engine, tenant_id):
    connect(engine, tenant_id, "dutchie", credentials={"api_key": "k"})
    body = json.dumps({"eventType": "product.updated", "locationId": 1001, "data": {}}).encode()
    response = client.post(f"/shops/{tenant_id}/webhooks/pos/dutchie", content=body)
    assert response.status_code == 200
    assert client.post(f"/shops/{tenant_id}/webhooks/pos/blaze", content=body).status_code == 404
    assert client.post(f"/shops/{tenant_id}/webhooks/pos/square", content=body).status_code == 404
    assert client.post("/shops/no-such-shop/webhooks/pos/dutchie", content=body).status_code == 404
    assert [(r["signature"], r["topic"], r["account"]) for r in events(engine, tenant_id)] == [
        ("unsigned", "product.updated", "1001")]


# -- the sensor ------------------------------------------------------------------------------
def evaluate(warehouse, instance):
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    return sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}))


def accepted(engine, tenant_id, n, topic="inventory_levels/update", refresh=True):
    with engine.begin() as conn:
        for _ in range(n):
            record(conn, tenant_id, "shopify", event_id=uuid.uuid4().hex, status="accepted", signature="valid",
                   topic=topic, affects_inventory=refresh)


def test_sensor_requests_one_inventory_run_per_tenant_per_batch(engine, warehouse):
    a, b = f"t-{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:10]}"
    connect(engine, a, "shopify")
    connect(engine, b, "shopify")
    accepted(engine, a, 5)
    accepted(engine, b, 2)
    accepted(engine, b, 3, topic="orders/create", refresh=False)
    instance = dg.DagsterInstance.ephemeral()
    result = evaluate(warehouse, instance)
    mine = [r for r in result.run_requests if r.partition_key in (a, b)]
    assert sorted((r.partition_key, r.tags["storehouse/events"]) for r in mine) == sorted([(a, "5"), (b, "2")])
    assert {r.job_name for r in mine} == {"pos_inventory_refresh"}
    assert len({r.run_key for r in mine}) == 2
    added = {key for req in result.dynamic_partitions_requests for key in req.partition_keys}
    assert {a, b} <= added
    by_key = {r.partition_key: r.run_key for r in mine}
    for tenant in (a, b):
        marked = {(e["refresh"], e["run_key"]) for e in events(engine, tenant) if e["topic"] != "orders/create"}
        assert marked == {("requested", by_key[tenant])}
    assert [r for r in evaluate(warehouse, instance).run_requests if r.partition_key in (a, b)] == []


def test_events_join_a_refresh_that_is_still_queued(engine, warehouse, tenant_id):
    connect(engine, tenant_id, "shopify")
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("pos_inventory_refresh")
    instance.create_run_for_job(job, status=dg.DagsterRunStatus.NOT_STARTED,
                                tags={"dagster/partition": tenant_id, "dagster/run_key": "queued-one"})
    accepted(engine, tenant_id, 3)
    result = evaluate(warehouse, instance)
    assert [r for r in result.run_requests if r.partition_key == tenant_id] == []
    assert {e["run_key"] for e in events(engine, tenant_id)} == {"queued-one"}


# -- the whole path ----------------------------------------------------------------------------
def stock(engine, tenant_id, product_id):
    """Live quantity of one product over its locations and lots."""
    i = inventory.c
    with engine.connect() as conn:
        quantities = conn.execute(sa.select(i.quantity).where(
            i.tenant_id == tenant_id, i.product_id == product_id, i.deleted_at.is_(None))).scalars().all()
    return sum(quantities), len(quantities)


def register_hook(account, url, secret):
    if account.system == "shopify":
        httpx.post(f"{account.sandbox}{account.control}/webhooks", json={
            "address": url, "secret": secret, "topics": ["inventory_levels/update", "products/update"]}).raise_for_status()
    else:
        httpx.put(f"{account.sandbox}{account.control}/webhook", json={"url": url, "secret": secret}).raise_for_status()


@pytest.mark.parametrize("system", ["shopify", "treez"])
def test_stock_change_in_the_pos_reaches_the_warehouse(sandbox, engine, warehouse, warehouse_url, tenant_id, system):
    account = new_account(sandbox.url, system, products=15, customers=3)
    secret = f"hook-{uuid.uuid4().hex}"
    creds = {**account.credentials, ("api_secret" if system == "shopify" else "webhook_secret"): secret}
    connect(engine, tenant_id, system, account.base_url, creds, account.options)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(TENANT_PARTITIONS, [tenant_id])
    jobs = dg.Definitions(assets=pos.pos_assets, jobs=[pos.pos_sync_job, pos.pos_inventory_job],
                          resources={"warehouse": warehouse, "pos_clients": FAST})
    assert jobs.resolve_job_def("pos_sync").execute_in_process(partition_key=tenant_id, instance=instance).success
    p = products.c
    with engine.connect() as conn:
        row = dict(conn.execute(sa.select(products).where(p.tenant_id == tenant_id, p.source == system)
                                .order_by(p.product_id).limit(1)).mappings().one())
    before, lots = stock(engine, tenant_id, row["product_id"])
    assert lots >= 1
    new_quantity = 3 if before != 3 else 4
    with ApiThread(settings_for(warehouse_url, free_port(), worker_enabled=False), engine) as api:
        register_hook(account, f"{api.url}/shops/{tenant_id}/webhooks/pos/{system}", secret)
        account.set_stock(native_id(row), new_quantity)
        wait_for(lambda: any(e["status"] == "accepted" for e in events(engine, tenant_id)), 15, "the webhook")
        if system == "shopify":  # both topics arrive: two events, still one refresh
            wait_for(lambda: len(events(engine, tenant_id)) == 2, 15, "both Shopify topics")
    assert {(e["status"], e["signature"]) for e in events(engine, tenant_id)} == {("accepted", "valid")}
    assert stock(engine, tenant_id, row["product_id"])[0] == before  # not refreshed yet
    [request] = [r for r in evaluate(warehouse, instance).run_requests if r.partition_key == tenant_id]
    run = jobs.resolve_job_def(request.job_name).execute_in_process(
        partition_key=request.partition_key, instance=instance, tags=request.tags)
    assert run.success
    assert {e.asset_key for e in run.get_asset_materialization_events()} == {dg.AssetKey(["pos", "inventory"])}
    assert stock(engine, tenant_id, row["product_id"])[0] == new_quantity
