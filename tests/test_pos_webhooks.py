"""POS webhooks: signatures and URL tokens per provider, refusals counted but never stored, rate
limits, events recorded once, the refresh sensor, and the whole path from a stock change in the
sandbox to the new quantity in the warehouse."""

import base64
import hashlib
import hmac
import json
import re
import uuid

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from assets.partitions import pos_partitions
from commerce import webhook_tokens
from commerce.metrics import REGISTRY
from commerce.pos_webhooks import record, shopify_hmac, verify
from pipelines import pos
from pipelines.definitions import build_defs
from resources.dagster_resources import PosClientsResource
from sensors.pos_webhooks import SENSOR_NAME
from tests.api_storefront import ApiThread, free_port, settings_for, wait_for
from tests.pos_accounts import native_id, new_account
from warehouse.tables.pos import inventory, products
from warehouse.tables.pos_events import pos_webhook_events
from warehouse.tenants import add_tenant, set_connection

FAST = PosClientsResource(max_attempts=2, backoff_base_s=0.01)


def connect(engine, tenant_id, system, base_url="http://127.0.0.1:9/none", credentials=None, options=None):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, tenant_id)
        set_connection(conn, tenant_id, system, base_url, credentials or {}, options or {})


def issue_token(engine, tenant_id, system):
    with engine.begin() as conn:
        return webhook_tokens.issue(conn, tenant_id, system)


def refused(tenant_id, provider, outcome):
    return REGISTRY.get_sample_value("storehouse_pos_webhooks_total",
                                     {"tenant": tenant_id, "provider": provider, "outcome": outcome}) or 0


def events(engine, tenant_id):
    t = pos_webhook_events
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id).order_by(t.c.id)).mappings()]


@pytest.fixture(scope="module")
def client(engine, warehouse_url):
    return TestClient(create_app(settings_for(warehouse_url, free_port(), worker_enabled=False), engine))


def shopify_post(client, tenant_id, body: bytes, secret: str | None, webhook_id: str, topic="inventory_levels/update",
                 storefront="teststore", signature: str | None = None):
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": f"{storefront}.myshopify.com",
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


def test_bad_signature_is_401_counted_not_stored_and_the_real_event_still_lands(client, engine, tenant_id):
    connect(engine, tenant_id, "shopify", credentials={"access_token": "x", "api_secret": "shpss_real"})
    body = b'{"inventory_item_id": 1, "available": 999}'
    forged = shopify_post(client, tenant_id, body, "shpss_guess", "wh-9")
    missing = shopify_post(client, tenant_id, body, None, "wh-10")
    assert forged.status_code == missing.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    assert forged.json()["type"].endswith("/invalid-signature") and "does not match" in forged.json()["detail"]
    assert events(engine, tenant_id) == []
    assert refused(tenant_id, "shopify", "invalid-signature") == 2
    real = shopify_post(client, tenant_id, body, "shpss_real", "wh-9")  # same id as the forgery
    assert real.status_code == 200 and real.json()["duplicate"] is False
    rows = events(engine, tenant_id)
    assert [(r["event_id"], r["status"], r["signature"], r["refresh"]) for r in rows] == [
        ("wh-9", "accepted", "valid", "pending")]
    assert refused(tenant_id, "shopify", "accepted") == 1


def test_one_tenants_secret_does_not_open_another_tenants_endpoint(client, engine):
    a, b = f"t-{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:10]}"
    connect(engine, a, "shopify", credentials={"access_token": "x", "api_secret": "secret-a"})
    connect(engine, b, "shopify", credentials={"access_token": "y", "api_secret": "secret-b"})
    body = b'{"inventory_item_id": 5}'
    assert shopify_post(client, b, body, "secret-a", "cross-1").status_code == 401
    assert shopify_post(client, a, body, "secret-a", "cross-1").status_code == 200
    assert events(engine, b) == []


def test_shared_secret_providers_malformed_bodies_and_foreign_accounts(client, engine, tenant_id):
    connect(engine, tenant_id, "treez", credentials={"dispensary": "mine", "webhook_secret": "tz-secret"})
    url = f"/shops/{tenant_id}/webhooks/pos/treez?token={issue_token(engine, tenant_id, 'treez')}"
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
        ("accepted", "valid"), ("accepted", "valid")]
    assert [refused(tenant_id, "treez", kind) for kind in ("invalid-signature", "malformed-event", "wrong-account")
            ] == [2, 1, 1]


def test_unsigned_provider_takes_deliveries_only_with_its_url_token(client, engine, tenant_id):
    connect(engine, tenant_id, "dutchie", credentials={"api_key": "k"})
    body = json.dumps({"eventType": "product.updated", "locationId": 1001, "data": {}}).encode()
    url = f"/shops/{tenant_id}/webhooks/pos/dutchie"
    before = client.post(url, content=body)  # no token issued yet: nothing can be trusted
    assert before.status_code == 403 and before.json()["type"].endswith("/webhook-not-configured")
    token = issue_token(engine, tenant_id, "dutchie")
    for wrong in ("", "?token=", f"?token={token[:-1]}", f"?token={token}x", "?token=guess"):
        answer = client.post(url + wrong, content=body)
        assert answer.status_code == 401 and answer.json()["type"].endswith("/invalid-webhook-token"), wrong
    assert token not in client.post(url + "?token=guess", content=body).text
    response = client.post(f"{url}?token={token}", content=body)
    assert response.status_code == 200
    assert client.post(f"/shops/{tenant_id}/webhooks/pos/blaze", content=body).status_code == 404
    assert client.post(f"/shops/{tenant_id}/webhooks/pos/square", content=body).status_code == 404
    assert client.post("/shops/no-such-shop/webhooks/pos/dutchie", content=body).status_code == 404
    assert [(r["signature"], r["topic"], r["account"]) for r in events(engine, tenant_id)] == [
        ("token", "product.updated", "1001")]
    assert (refused(tenant_id, "dutchie", "webhook-not-configured"), refused(tenant_id, "dutchie", "invalid-webhook-token"),
            refused(tenant_id, "dutchie", "accepted")) == (1, 6, 1)
    renewed = issue_token(engine, tenant_id, "dutchie")  # a new token: the old URL stops working
    assert client.post(f"{url}?token={token}", content=body).status_code == 401
    assert client.post(f"{url}?token={renewed}", content=body).json()["duplicate"] is True


def test_300_unsigned_posts_to_a_treez_route_store_nothing_and_queue_no_refresh(client, engine, warehouse,
                                                                                 tenant_id):
    """Issue 9's report: 300 unsigned posts were stored and queued refreshes against the provider."""
    connect(engine, tenant_id, "treez", credentials={"dispensary": "mine"})
    url = f"/shops/{tenant_id}/webhooks/pos/treez"

    def flood(suffix):
        return {client.post(url + suffix, content=json.dumps({"event_type": "PRODUCT", "dispensary": "mine",
                                                              "data": {"product_id": f"p{i}"}}).encode()).status_code
                for i in range(300)}

    assert flood("") == {403}  # no URL token issued: the connection takes no delivery at all
    issue_token(engine, tenant_id, "treez")
    assert flood("?token=guessed") == {401}
    assert events(engine, tenant_id) == []
    assert refused(tenant_id, "treez", "webhook-not-configured") == refused(tenant_id, "treez",
                                                                             "invalid-webhook-token") == 300
    scraped = client.get("/metrics").text
    assert f'storehouse_pos_webhooks_total{{outcome="invalid-webhook-token",provider="treez",tenant="{tenant_id}"}} 300.0' \
        in scraped
    instance = dg.DagsterInstance.ephemeral()
    assert [r for r in evaluate(warehouse, instance).run_requests if r.partition_key == tenant_id] == []


def test_shopify_connection_without_its_secret_refuses_every_delivery(client, engine, tenant_id):
    connect(engine, tenant_id, "shopify", credentials={"access_token": "x"})
    body = b'{"inventory_item_id": 1, "available": 0}'
    for signature in (None, "forged", shopify_hmac("", body)):
        answer = shopify_post(client, tenant_id, body, None, "wh-1", signature=signature)
        assert answer.status_code == 403 and answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/webhook-not-configured")
    assert events(engine, tenant_id) == []
    assert refused(tenant_id, "shopify", "webhook-not-configured") == 3


def test_pos_webhooks_are_rate_limited_per_storefront_and_client(warehouse_url, engine):
    a, b = f"t-{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:10]}"
    for tenant in (a, b):
        connect(engine, tenant, "shopify", credentials={"access_token": "x", "api_secret": "shpss_rl"})
    settings = settings_for(warehouse_url, 8000, worker_enabled=False, pos_webhook_burst=3,
                            pos_webhook_rate_per_s=0.01, trust_forwarded_for=True)

    def post(c, tenant, address):
        body = json.dumps({"inventory_item_id": uuid.uuid4().int % 10**9}).encode()
        return c.post(f"/shops/{tenant}/webhooks/pos/shopify", content=body, headers={
            "X-Shopify-Hmac-Sha256": shopify_hmac("shpss_rl", body), "X-Shopify-Webhook-Id": uuid.uuid4().hex,
            "X-Shopify-Topic": "inventory_levels/update", "X-Forwarded-For": address})

    with TestClient(create_app(settings, engine)) as c:
        answers = [post(c, a, "203.0.113.9") for _ in range(5)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
        assert answers[-1].json()["type"].endswith("/rate-limited") and int(answers[-1].headers["Retry-After"]) >= 1
        assert post(c, a, "198.51.100.7").status_code == 200  # another client of the same shop
        assert post(c, b, "203.0.113.9").status_code == 200  # the same client, another shop
    assert len(events(engine, a)) == 4 and refused(a, "shopify", "rate-limited") == 2


def test_tenants_add_prints_the_token_url_once_and_webhook_url_renews_it(client, engine, warehouse_url, tenant_id,
                                                                         tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from storehouse.cli import app

    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("STOREHOUSE_SHOP_PUBLIC_URL", "https://shop.example")
    runner = CliRunner()
    add = ["tenants", "add", tenant_id, "--system", "cova", "--base-url", "http://127.0.0.1:9/cova",
           "--credential", "company_id=7", "--credential", "client_id=c", "--credential", "client_secret=s",
           "--credential", "username=u", "--credential", "password=pw-not-shown"]

    def url_in(output):
        found = re.findall(r"https://shop\.example(/shops/\S+)", output)
        return found[0] if found else None

    first = runner.invoke(app, add)
    assert first.exit_code == 0, first.output
    path = url_in(first.output)
    assert path.startswith(f"/shops/{tenant_id}/webhooks/pos/cova?token=") and "pw-not-shown" not in first.output
    body = json.dumps({"EventType": "InventoryUpdated", "LocationId": 201}).encode()
    assert client.post(path, content=body).status_code == 200
    again = runner.invoke(app, add)  # re-running keeps the token (the hook stays registered) and cannot show it
    assert again.exit_code == 0 and url_in(again.output) is None and "webhook-url" in again.output
    assert client.post(path, content=body).status_code == 200
    renewed = runner.invoke(app, ["tenants", "webhook-url", tenant_id, "cova"])
    assert renewed.exit_code == 0, renewed.output
    assert client.post(path, content=body).status_code == 401
    assert client.post(url_in(renewed.output), content=body).status_code == 200
    shopify = runner.invoke(app, ["tenants", "add", tenant_id, "--system", "shopify", "--base-url",
                                  "http://127.0.0.1:9/shopify", "--credential", "access_token=t"])
    assert "refuses every delivery" in shopify.output
    assert runner.invoke(app, ["tenants", "webhook-url", tenant_id, "shopify"]).exit_code != 0


# -- the sensor ------------------------------------------------------------------------------
def evaluate(warehouse, instance):
    sensor = build_defs().resolve_sensor_def(SENSOR_NAME)
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
    waiting = evaluate(warehouse, instance)  # not yet partitions: the events wait for tenant discovery
    assert not [r for r in waiting.run_requests if r.partition_key in (a, b)]
    assert not waiting.dynamic_partitions_requests  # discovery alone adds them
    assert {e["refresh"] for t in (a, b) for e in events(engine, t) if e["topic"] != "orders/create"} == {"pending"}
    instance.add_dynamic_partitions(pos_partitions.name, [a, b])  # discovery's tick
    result = evaluate(warehouse, instance)
    mine = [r for r in result.run_requests if r.partition_key in (a, b)]
    assert sorted((r.partition_key, r.tags["storehouse/events"]) for r in mine) == sorted([(a, "5"), (b, "2")])
    assert {r.job_name for r in mine} == {"pos_inventory_refresh"}
    assert len({r.run_key for r in mine}) == 2
    by_key = {r.partition_key: r.run_key for r in mine}
    for tenant in (a, b):
        marked = {(e["refresh"], e["run_key"]) for e in events(engine, tenant) if e["topic"] != "orders/create"}
        assert marked == {("requested", by_key[tenant])}
    assert [r for r in evaluate(warehouse, instance).run_requests if r.partition_key in (a, b)] == []


def test_events_join_a_refresh_that_is_still_queued(engine, warehouse, tenant_id):
    connect(engine, tenant_id, "shopify")
    instance = dg.DagsterInstance.ephemeral()
    job = build_defs().resolve_job_def("pos_inventory_refresh")
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
    instance.add_dynamic_partitions(pos_partitions.name, [tenant_id])
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
    token = None if system == "shopify" else issue_token(engine, tenant_id, system)
    with ApiThread(settings_for(warehouse_url, free_port(), worker_enabled=False), engine) as api:
        register_hook(account, webhook_tokens.webhook_url(api.url, tenant_id, system, token), secret)
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
