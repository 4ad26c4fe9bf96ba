"""The API's edges over HTTP: problem details for every error, limits, CORS, signatures, isolation."""

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from commerce.tokens import OrderTokens
from resources.breaker import CircuitBreaker, SqlBreakerStore
from tests.api_storefront import SECRET, settings_for
from warehouse.tables.esim import esim_packages, esim_stock
from warehouse.tables.orders import order_effects, orders, provisioning_jobs, webhook_events
from warehouse.tenants import add_tenant, set_connection
from warehouse.types import now_utc
from warehouse.upsert import upsert

WHSEC = "whsec_http_tests"
PROBLEM = "application/problem+json"


@pytest.fixture
def client(warehouse_url, engine):
    settings = settings_for(warehouse_url, 8000, worker_enabled=False, max_body_bytes=4096,
                            max_webhook_body_bytes=8192, checkout_burst=3,
                            checkout_rate_per_s=0.01, cors_origins=["https://shop.example"], max_quantity=5)
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as c:
        yield c


def make_storefront(engine, tenant_id: str, whsec=WHSEC) -> None:
    now = now_utc()
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "HTTP shop")
        set_connection(conn, tenant_id, "stripe", "http://127.0.0.1:9/stripe",
                       {"secret_key": "sk_test_unused", "webhook_secret": whsec})
        upsert(conn, esim_packages, [{
            "tenant_id": tenant_id, "provider": "airalo", "provider_package_id": pid, "name": f"Japan {pid}",
            "country_code": "JP", "region": None, "data_mb": 1024, "unlimited": False, "validity_days": days,
            "cost": Decimal("2.00"), "price": Decimal("3.99"), "currency": "USD", "active": True,
        } for pid, days in (("jp-7", 7), ("jp-30", 30))])
        upsert(conn, esim_stock, [{
            "tenant_id": tenant_id, "provider": "airalo", "provider_package_id": pid, "available": units,
            "status": status, "low_alerted": False, "status_since": now, "checked_at": now,
        } for pid, units, status in (("jp-7", 50, "in_stock"), ("jp-30", 0, "out_of_stock"))])


def signed(body: bytes, secret: str = WHSEC, age_s: int = 0) -> dict:
    t = int(time.time()) - age_s
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}


def assert_problem(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    if kind:
        assert body["type"].endswith("/" + kind), body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


def test_unknown_paths_and_storefronts_are_problems(client):
    assert_problem(client.get("/nowhere"), 404, "not-found")
    assert_problem(client.get("/shops/no-such-shop/catalog"), 404, "shop-not-found")
    assert_problem(client.delete("/healthz"), 405)


def test_catalog_lists_only_what_is_in_stock(client, engine, tenant_id):
    make_storefront(engine, tenant_id)
    body = client.get(f"/shops/{tenant_id}/catalog").json()
    assert [(i["package_id"], i["price"]) for i in body["items"]] == [("airalo:jp-7", "3.99")]
    assert client.get(f"/shops/{tenant_id}/catalog", params={"country": "FR"}).json()["items"] == []
    assert_problem(client.get(f"/shops/{tenant_id}/catalog", params={"country": "Japan"}), 422)


@pytest.mark.parametrize(("body", "status", "kind"), [
    ({}, 422, "validation-error"),
    ({"package_id": "airalo:jp-7", "quantity": 10**30, "email": "a@b.io"}, 422, "validation-error"),
    ({"package_id": "airalo:jp-7", "quantity": -1, "email": "a@b.io"}, 422, "validation-error"),
    ({"package_id": "airalo:jp-7", "quantity": "lots", "email": "a@b.io"}, 422, "validation-error"),
    ({"package_id": "airalo:jp-7", "quantity": 6, "email": "a@b.io"}, 422, "quantity-too-large"),
    ({"package_id": "airalo:jp-7", "email": "not an email"}, 422, "validation-error"),
    ({"package_id": "airalo:jp-7", "email": "a@b.io", "price": "0.01"}, 422, "validation-error"),
    ({"package_id": "airalo:nope", "email": "a@b.io"}, 422, "unknown-package"),
    ({"package_id": "no-colon", "email": "a@b.io"}, 422, "unknown-package"),
    ({"package_id": "airalo:jp-30", "email": "a@b.io"}, 409, "out-of-stock"),
    ({"package_id": "airalo:jp-7\u0000", "email": "a@b.io"}, 422, "validation-error"),
    ({"package_id": "airalo:jp-7", "email": "a\u0000b@b.io"}, 422, "validation-error"),
])
def test_bad_checkouts_are_4xx_problems(client, engine, tenant_id, body, status, kind):
    make_storefront(engine, tenant_id)
    problem = assert_problem(client.post(f"/shops/{tenant_id}/checkout", json=body), status, kind)
    if kind == "validation-error":
        assert problem["errors"] and all("location" in e for e in problem["errors"])
        assert "10000000000" not in json.dumps(problem)  # input is never echoed back


def test_malformed_json_is_400(client, engine, tenant_id):
    make_storefront(engine, tenant_id)
    response = client.post(f"/shops/{tenant_id}/checkout", content=b'{"package_id": ',
                           headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "malformed-json")


def test_oversized_bodies_are_413_declared_or_streamed(client, engine, tenant_id):
    make_storefront(engine, tenant_id)
    big = b'{"package_id": "' + b"x" * 10_000 + b'"}'
    assert_problem(client.post(f"/shops/{tenant_id}/checkout", content=big,
                               headers={"Content-Type": "application/json"}), 413, "body-too-large")

    def chunks():  # no Content-Length: the limit counts bytes as they arrive
        for _ in range(10):
            yield b" " * 1000

    response = client.post(f"/shops/{tenant_id}/webhooks/stripe", content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "body-too-large")
    # A delivery from another system may be bigger than what a client sends: its own, larger limit.
    event = b'{"id": "evt_1", "pad": "' + b"x" * 6_000 + b'"}'
    assert_problem(client.post(f"/shops/{tenant_id}/webhooks/stripe", content=event,
                               headers={"Content-Type": "application/json"}), 400, "invalid-signature")


def test_checkout_rate_limited_per_client(client, engine, tenant_id):
    make_storefront(engine, tenant_id)
    body = {"package_id": "airalo:nope", "email": "a@b.io"}
    codes = [client.post(f"/shops/{tenant_id}/checkout", json=body).status_code for _ in range(3)]
    assert codes == [422, 422, 422]
    limited = client.post(f"/shops/{tenant_id}/checkout", json=body)
    assert_problem(limited, 429, "rate-limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert client.get(f"/shops/{tenant_id}/catalog").status_code == 200  # only checkout is limited


def test_cors_allows_only_listed_origins(client):
    allowed = client.options("/healthz", headers={"Origin": "https://shop.example",
                                                  "Access-Control-Request-Method": "GET"})
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    denied = client.options("/healthz", headers={"Origin": "https://evil.example",
                                                 "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in denied.headers
    plain = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


def test_webhook_signature_checks(client, engine, tenant_id):
    make_storefront(engine, tenant_id)
    url = f"/shops/{tenant_id}/webhooks/stripe"
    event = json.dumps({"id": "evt_unknown_1", "object": "event", "type": "customer.created", "created": 1,
                        "data": {"object": {"id": "cus_1", "object": "customer"}}}).encode()
    assert_problem(client.post(url, content=event), 400, "invalid-signature")  # no header
    assert_problem(client.post(url, content=event, headers=signed(event, "whsec_wrong")), 400, "invalid-signature")
    assert_problem(client.post(url, content=event, headers=signed(event, age_s=301)), 400, "stale-signature")
    ten_years_ahead = signed(event, age_s=-10 * 365 * 86400)
    assert_problem(client.post(url, content=event, headers=ten_years_ahead), 400, "stale-signature")
    reserialised = json.dumps(json.loads(event), indent=2).encode()  # same JSON, other bytes
    assert_problem(client.post(url, content=reserialised, headers=signed(event)), 400, "invalid-signature")
    garbage = b"{not json"
    assert_problem(client.post(url, content=garbage, headers=signed(garbage)), 400, "malformed-event")
    first = client.post(url, content=event, headers=signed(event))
    assert first.status_code == 200 and first.json() == {"received": True, "outcome": "ignored"}
    again = client.post(url, content=event, headers=signed(event))
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"


def test_one_storefronts_secret_cannot_sign_for_another(client, engine, tenant_id):
    other = tenant_id + "-b"
    make_storefront(engine, tenant_id)
    make_storefront(engine, other, whsec="whsec_the_other_storefront")
    event = json.dumps({"id": "evt_x", "object": "event", "type": "charge.refunded", "created": 1,
                        "data": {"object": {"id": "ch_1", "object": "charge"}}}).encode()
    assert_problem(client.post(f"/shops/{other}/webhooks/stripe", content=event, headers=signed(event)), 400)
    assert client.post(f"/shops/{tenant_id}/webhooks/stripe", content=event, headers=signed(event)).status_code == 200


def test_misconfigured_storefront_is_a_bare_500(client, engine, tenant_id):
    make_storefront(engine, tenant_id, whsec=12345)  # a number where a secret belongs: our bug to own, not the caller's
    event = b'{"id": "evt_1", "object": "event", "type": "x", "data": {"object": {}}}'
    body = assert_problem(client.post(f"/shops/{tenant_id}/webhooks/stripe", content=event, headers=signed(event)),
                          500, "internal-error")
    assert body["incident"] in body["detail"] and "12345" not in json.dumps(body)


def test_orders_need_their_own_token(client, engine, tenant_id):
    make_storefront(engine, tenant_id)
    make_storefront(engine, tenant_id + "-b")
    order_id = "ord_" + "ab" * 12
    with engine.begin() as conn:
        conn.execute(sa.insert(orders).values(
            tenant_id=tenant_id, order_id=order_id, status="pending", email="a@b.io", provider="airalo",
            provider_package_id="jp-7", package_name="Japan", quantity=1, unit_price=Decimal("3.99"),
            amount_total=Decimal("3.99"), currency="USD", request_hash="x"))
    token = OrderTokens(SECRET.encode()).issue(tenant_id, order_id)
    assert_problem(client.get(f"/shops/{tenant_id}/orders/{order_id}"), 401, "order-token-required")
    assert_problem(client.get(f"/shops/{tenant_id}/orders/{order_id}", params={"token": token[:-1] + ("y" if token.endswith("x") else "x")}), 404)
    assert_problem(client.get(f"/shops/{tenant_id}-b/orders/{order_id}", params={"token": token}), 404)
    mine = client.get(f"/shops/{tenant_id}/orders/{order_id}", headers={"X-Order-Token": token})
    assert mine.status_code == 200 and mine.json()["status"] == "pending" and mine.json()["esims"] == []
    assert mine.headers["cache-control"] == "no-store" and mine.headers["referrer-policy"] == "no-referrer"
    assert_problem(client.get(f"/shops/{tenant_id}/orders/{order_id}/esims/1/qr.png", params={"token": token}),
                   404, "esim-not-ready")


def test_readyz_and_metrics(client, engine, tenant_id):
    assert client.get("/readyz").json() == {"ok": True, "database": "reachable"}
    breaker = CircuitBreaker(SqlBreakerStore(engine), tenant_id, "esimcard", failure_threshold=1)
    breaker.record_failure(RuntimeError("down"))
    client.get("/healthz")
    text = client.get("/metrics").text
    assert 'storehouse_api_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert f'storehouse_provider_breaker_state{{provider="esimcard",tenant="{tenant_id}"}} 2.0' in text


def pending_order(engine, tenant_id: str, order_id: str = "ord_" + "cd" * 12) -> str:
    with engine.begin() as conn:
        conn.execute(sa.insert(orders).values(
            tenant_id=tenant_id, order_id=order_id, status="pending", email="a@b.io", provider="airalo",
            provider_package_id="jp-7", package_name="Japan", quantity=1, unit_price=Decimal("3.99"),
            amount_total=Decimal("3.99"), currency="USD", request_hash="x"))
    return order_id


def session_event(tenant_id: str, order_id: str, amount: int, event_id: str = "evt_session_1") -> bytes:
    token = OrderTokens(SECRET.encode()).issue(tenant_id, order_id)
    return json.dumps({"id": event_id, "object": "event", "type": "checkout.session.completed", "created": 1,
                       "data": {"object": {
                           "id": "cs_test_1", "object": "checkout.session", "amount_total": amount, "currency": "usd",
                           "status": "complete", "payment_status": "paid", "payment_intent": "pi_1",
                           "client_reference_id": order_id, "metadata": {"order_id": order_id, "tenant_id": tenant_id},
                           "success_url": f"https://shop.example/orders/{order_id}/return?token={token}",
                           "cancel_url": f"https://shop.example/orders/{order_id}?token={token}"}}}).encode()


def test_stored_events_keep_no_order_token(client, engine, tenant_id):
    make_storefront(engine, tenant_id)
    order_id = pending_order(engine, tenant_id)
    event = session_event(tenant_id, order_id, 399)
    assert client.post(f"/shops/{tenant_id}/webhooks/stripe", content=event, headers=signed(event)).json()["outcome"] \
        == "applied"
    with engine.connect() as conn:
        stored = json.dumps(conn.execute(sa.select(webhook_events.c.payload)
                                         .where(webhook_events.c.tenant_id == tenant_id)).scalar_one())
    assert OrderTokens(SECRET.encode()).issue(tenant_id, order_id) not in stored
    assert f"https://shop.example/orders/{order_id}/return" in stored  # the rest of the event is kept


def test_charged_amount_mismatch_fails_and_refunds_the_order(client, engine, tenant_id):
    make_storefront(engine, tenant_id)
    order_id = pending_order(engine, tenant_id)
    event = session_event(tenant_id, order_id, 1)  # one cent charged for a 3.99 order
    assert client.post(f"/shops/{tenant_id}/webhooks/stripe", content=event, headers=signed(event)).json()["outcome"] \
        == "mismatch"
    with engine.connect() as conn:
        order = conn.execute(sa.select(orders).where(orders.c.tenant_id == tenant_id)).mappings().one()
        queued = set(conn.execute(sa.select(order_effects.c.kind).where(order_effects.c.tenant_id == tenant_id))
                     .scalars())
        jobs = conn.execute(sa.select(sa.func.count()).select_from(provisioning_jobs)
                            .where(provisioning_jobs.c.tenant_id == tenant_id)).scalar_one()
    assert order["status"] == "failed" and "refunded, not provisioned" in order["failure_reason"]
    assert order["stripe_payment_intent_id"] == "pi_1"
    assert queued == {"refund", "email_apology", "slack_failed"} and jobs == 0


def test_access_log_lines_lose_order_tokens(client, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                                                 "/shops/s/orders/ord_1?token=s3cr3t-Tok_en&x=1", "1.1", 200)
    assert "s3cr3t" not in caplog.text and "token=…&x=1" in caplog.text


def test_a_token_parameter_spelt_in_percent_escapes_is_redacted_too():
    from api.logs import redact

    line = "GET /shops/s/orders/o?%74oken=s3cr3t&tok=kept&x=token%3Dkept2 HTTP/1.1"
    assert redact(line) == "GET /shops/s/orders/o?%74oken=…&tok=kept&x=token%3Dkept2 HTTP/1.1"


def test_behind_a_proxy_the_rate_limit_keys_on_what_the_proxy_saw(warehouse_url, engine, tenant_id):
    make_storefront(engine, tenant_id)
    settings = settings_for(warehouse_url, 8000, worker_enabled=False, checkout_burst=2, checkout_rate_per_s=0.01,
                            trust_forwarded_for=True)
    body = {"package_id": "airalo:nope", "email": "a@b.io"}
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as c:
        # The client writes whatever it likes on the left; our proxy appends the address it saw.
        codes = [c.post(f"/shops/{tenant_id}/checkout", json=body,
                        headers={"X-Forwarded-For": f"10.0.0.{i}, 203.0.113.9"}).status_code for i in range(4)]
        assert codes == [422, 422, 429, 429]
        other = c.post(f"/shops/{tenant_id}/checkout", json=body, headers={"X-Forwarded-For": "198.51.100.7"})
        assert other.status_code == 422  # another client has its own budget


def test_a_value_the_database_cannot_keep_is_422_not_500():
    """The last line of defence behind the models: the database refusing a value is the caller's 4xx."""
    from fastapi import FastAPI

    from api import problems

    app = FastAPI()
    problems.install(app)

    @app.get("/store")
    def store() -> None:
        raise sa.exc.DataError("INSERT …", {}, ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes"))

    with TestClient(app, raise_server_exceptions=False) as plain:
        body = assert_problem(plain.get("/store"), 422, "unprocessable-input")
    assert "NUL (0x00)" not in body["detail"] and "INSERT" not in json.dumps(body)


def test_metrics_can_require_a_bearer_token(warehouse_url, engine):
    settings = settings_for(warehouse_url, 8000, worker_enabled=False, metrics_token="scrape-me")
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as guarded:
        assert_problem(guarded.get("/metrics"), 401, "metrics-token-required")
        assert_problem(guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
        scraped = guarded.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert scraped.status_code == 200 and "storehouse_api_requests_total" in scraped.text


def test_a_database_that_refuses_connections_is_a_503_problem():
    """When the database refuses connections (restarting, "too many clients"), a request is told to
    retry (503 problem details, Retry-After), never handed a bare 500 (the soak's finding)."""
    gone = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 2})
    settings = settings_for("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", 8000, worker_enabled=False)
    client = TestClient(create_app(settings, gone), raise_server_exceptions=False)  # no start-up: no database
    answer = client.get("/shops/a-shop/catalog")
    body = assert_problem(answer, 503, "database-unavailable")
    assert answer.headers["Retry-After"] == "2" and "Traceback" not in answer.text and "127.0.0.1" not in answer.text
    assert body["instance"] == "/shops/a-shop/catalog"
