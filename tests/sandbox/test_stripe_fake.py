"""The Stripe fake, exercised over real HTTP through the official ``stripe`` SDK.

Webhooks go to a tiny threaded HTTP receiver on a free 127.0.0.1 port and are verified with
``stripe.Webhook.construct_event``, exactly as Storehouse will verify them.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import stripe

KEY_A = "sk_test_tenant_alpha_51Hx"
KEY_B = "sk_test_tenant_bravo_51Hy"
FAST_RETRIES = [0.05, 0.05, 0.05]


class Receiver:
    """A webhook endpoint that records raw deliveries and answers the statuses it is told to."""

    def __init__(self) -> None:
        self.deliveries: list[dict] = []
        self.statuses: list[int] = []  # answered in turn; 200 once exhausted
        self.delay_s = 0.0
        self.active = self.max_active = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.active += 1
                    receiver.max_active = max(receiver.max_active, receiver.active)
                time.sleep(receiver.delay_s)
                with receiver.lock:
                    receiver.active -= 1
                    receiver.deliveries.append({"headers": dict(self.headers), "raw": raw})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(d["raw"]) for d in self.deliveries]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events()]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def sb(sandbox_reset):
    return sandbox_reset


def client(sb, key: str = KEY_A) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": f"{sb.url}/stripe"}, max_network_retries=0)


def control(sb, method: str, path: str, **kwargs) -> httpx.Response:
    response = httpx.request(method, f"{sb.url}/_sandbox/stripe{path}", timeout=30, **kwargs)
    assert response.status_code == 200, response.text
    return response


def flush(sb) -> dict:
    result = control(sb, "POST", "/flush", json={"timeout_s": 15}).json()
    assert result["settled"], result
    return result


def new_session(c: stripe.StripeClient, order_id: str = "ord_1", amount: int = 2000, quantity: int = 1, **extra):
    params = {
        "mode": "payment",
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": amount,
                                       "product_data": {"name": "eSIM 10 GB / 30 days"}}, "quantity": quantity}],
        "success_url": "https://shop.example/thanks?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cart",
        "metadata": {"order_id": order_id, "tenant": "alpha"},
        "client_reference_id": order_id,
        "customer_email": "buyer@example.com",
        "payment_intent_data": {"metadata": {"order_id": order_id}},
        **extra,
    }
    return c.v1.checkout.sessions.create(params=params)


def endpoint(c: stripe.StripeClient, url: str, events=("*",)):
    return c.v1.webhook_endpoints.create(params={"url": url, "enabled_events": list(events)})


# ----- Checkout, PaymentIntents and signed webhooks ---------------------------------------------


def test_session_created_with_stripe_shape(sb):
    c = client(sb)
    s = new_session(c, amount=1250, quantity=2, expand=["line_items"])
    assert s.id.startswith("cs_test_") and s.object == "checkout.session"
    assert (s.status, s.payment_status, s.mode) == ("open", "unpaid", "payment")
    assert (s.amount_total, s.amount_subtotal, s.currency) == (2500, 2500, "usd")
    assert s.payment_intent is None and s.customer_email == "buyer@example.com"
    assert s.metadata.to_dict() == {"order_id": "ord_1", "tenant": "alpha"}
    assert s.client_reference_id == "ord_1"
    assert s.url.startswith(f"{sb.url}/stripe/c/pay/cs_test_")
    assert s.expires_at - s.created == 24 * 3600
    item = s.line_items.data[0]
    assert (item.object, item.quantity, item.amount_total, item.description) == ("item", 2, 2500,
                                                                               "eSIM 10 GB / 30 days")
    assert item.price.unit_amount == 1250 and item.price.id.startswith("price_")
    again = c.v1.checkout.sessions.retrieve(s.id)
    assert again.id == s.id and "line_items" not in again
    listed = c.v1.checkout.sessions.list(params={"limit": 5})
    assert listed.object == "list" and listed.url == "/v1/checkout/sessions" and not listed.has_more
    assert [x.id for x in listed.data] == [s.id]


def test_paid_session_delivers_signed_checkout_completed(sb, receiver):
    c = client(sb)
    we = endpoint(c, receiver.url)
    assert we.secret.startswith("whsec_") and we.id.startswith("we_")
    assert "secret" not in c.v1.webhook_endpoints.retrieve(we.id)
    s = new_session(c)
    paid = control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={}).json()
    assert paid["status"] == "complete" and paid["payment_status"] == "paid"
    flush(sb)

    assert receiver.types() == ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded",
                                "checkout.session.completed"]
    delivery = receiver.deliveries[-1]
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    assert headers["user-agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    assert headers["content-type"].startswith("application/json")
    event = stripe.Webhook.construct_event(delivery["raw"], headers["stripe-signature"], we.secret)
    assert event.type == "checkout.session.completed" and event.id.startswith("evt_")
    assert event.livemode is False and event.api_version
    session = event.data.object
    assert (session.id, session.payment_status, session.status) == (s.id, "paid", "complete")
    assert session.metadata["order_id"] == "ord_1" and session.client_reference_id == "ord_1"
    assert session.payment_intent.startswith("pi_") and session.amount_total == 2000
    assert session.customer_details.email == "buyer@example.com"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery["raw"], headers["stripe-signature"], "whsec_wrong")

    pi = c.v1.payment_intents.retrieve(session.payment_intent, params={"expand": ["latest_charge"]})
    assert (pi.status, pi.amount, pi.amount_received, pi.currency) == ("succeeded", 2000, 2000, "usd")
    assert pi.metadata.to_dict() == {"order_id": "ord_1"} and pi.last_payment_error is None
    assert pi.latest_charge.paid and pi.latest_charge.amount_refunded == 0 and not pi.latest_charge.refunded
    stored = c.v1.events.retrieve(event.id)
    assert stored.pending_webhooks == 0 and stored.request.id is None

    attempts = control(sb, "GET", "/deliveries", params={"event": event.id}).json()["data"]
    assert [(a["attempt"], a["status_code"], a["succeeded"]) for a in attempts] == [(1, 200, True)]


def test_declined_card_keeps_session_open_then_pays(sb, receiver):
    c = client(sb)
    endpoint(c, receiver.url, ["payment_intent.payment_failed", "checkout.session.completed"])
    s = new_session(c)
    declined = control(sb, "POST", f"/checkout/sessions/{s.id}/decline",
                       json={"decline_code": "insufficient_funds"}).json()
    assert (declined["status"], declined["payment_status"]) == ("open", "unpaid")
    pi = c.v1.payment_intents.retrieve(declined["payment_intent"]["id"])
    assert pi.status == "requires_payment_method"
    err = pi.last_payment_error
    assert (err.code, err.decline_code, err.type) == ("card_declined", "insufficient_funds", "card_error")
    assert err.message == "Your card has insufficient funds." and err.charge.startswith("ch_")
    assert c.v1.charges.retrieve(err.charge).status == "failed"

    control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={})
    flush(sb)
    assert receiver.types() == ["payment_intent.payment_failed", "checkout.session.completed"]
    failed = receiver.events()[0]["data"]["object"]
    assert failed["metadata"] == {"order_id": "ord_1"} and failed["status"] == "requires_payment_method"
    final = c.v1.payment_intents.retrieve(pi.id)
    assert final.status == "succeeded" and final.last_payment_error is None


def test_async_payment_completes_unpaid_then_settles(sb, receiver):
    c = client(sb)
    endpoint(c, receiver.url, ["checkout.session.*"])
    s = new_session(c)
    control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={"async_payment": True})
    assert c.v1.checkout.sessions.retrieve(s.id).payment_status == "unpaid"
    control(sb, "POST", f"/checkout/sessions/{s.id}/settle", json={"succeeded": True})
    flush(sb)
    assert receiver.types() == ["checkout.session.completed", "checkout.session.async_payment_succeeded"]
    assert [e["data"]["object"]["payment_status"] for e in receiver.events()] == ["unpaid", "paid"]


def test_expire_by_api_and_not_twice(sb):
    c = client(sb)
    s = new_session(c)
    expired = c.v1.checkout.sessions.expire(s.id)
    assert (expired.status, expired.url) == ("expired", None)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.checkout.sessions.expire(s.id)
    assert exc.value.http_status == 400
    assert [e.type for e in c.v1.events.list().data] == ["checkout.session.expired"]
    r = httpx.post(f"{sb.url}/_sandbox/stripe/checkout/sessions/{s.id}/pay", json={})
    assert r.status_code == 400 and r.json()["error"]["code"] == "checkout_session_not_open"


def test_hosted_page_pays_and_redirects_to_success_url(sb):
    c = client(sb)
    s = new_session(c)
    page = httpx.get(s.url)
    assert page.status_code == 200 and "$20.00" in page.text
    done = httpx.post(s.url, data={"action": "pay", "email": "x@example.com"})
    assert done.status_code == 303
    assert done.headers["location"] == f"https://shop.example/thanks?session_id={s.id}"
    paid = c.v1.checkout.sessions.retrieve(s.id)
    assert paid.payment_status == "paid" and paid.customer_details.email == "x@example.com"


# ----- requests, errors, idempotency and isolation ----------------------------------------------


def test_form_encoding_and_validation_errors(sb):
    c = client(sb)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.checkout.sessions.create(params={"mode": "payment", "success_url": "https://x.example/ok"})
    assert (exc.value.code, exc.value.param) == ("parameter_missing", "line_items")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        new_session(c, bogus="1")
    assert (exc.value.code, exc.value.param) == ("parameter_unknown", "bogus")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        new_session(c, amount=-5)
    assert exc.value.param == "line_items[0][price_data][unit_amount]"
    # `[]` arrays and `metadata[..]` sent by hand, as another client library might.
    body = ("mode=payment&success_url=https://x.example/ok&line_items[0][price_data][currency]=eur"
            "&line_items[0][price_data][unit_amount]=999&line_items[0][price_data][product_data][name]=Tea"
            "&line_items[0][quantity]=3&metadata[order_id]=o-9&expand[]=line_items")
    r = httpx.post(f"{sb.url}/stripe/v1/checkout/sessions", content=body,
                   headers={"Authorization": f"Bearer {KEY_A}",
                            "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["amount_total"] == 2997 and data["metadata"] == {"order_id": "o-9"}
    assert data["line_items"]["data"][0]["quantity"] == 3 and r.headers["request-id"].startswith("req_")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.checkout.sessions.retrieve("cs_test_missing")
    assert (exc.value.http_status, exc.value.code) == (404, "resource_missing")


def test_bad_keys_get_401(sb):
    for key in ("sk_live_real_key_1234", "pk_test_publishable", "nonsense"):
        with pytest.raises(stripe.AuthenticationError) as exc:
            client(sb, key).v1.checkout.sessions.list()
        assert exc.value.http_status == 401 and "Invalid API Key provided" in exc.value.user_message
    r = httpx.get(f"{sb.url}/stripe/v1/events")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in r.json()["error"]["message"]


def test_idempotency_key_replays_and_conflicts(sb):
    c = client(sb)
    params = {"mode": "payment", "success_url": "https://x.example/ok",
              "line_items": [{"price_data": {"currency": "usd", "unit_amount": 700,
                                             "product_data": {"name": "Plan"}}, "quantity": 1}]}
    first = c.v1.checkout.sessions.create(params=params, options={"idempotency_key": "order-42"})
    second = c.v1.checkout.sessions.create(params=params, options={"idempotency_key": "order-42"})
    assert first.id == second.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(c.v1.checkout.sessions.list().data) == 1
    with pytest.raises(stripe.IdempotencyError) as exc:
        c.v1.checkout.sessions.create(params={**params, "metadata": {"x": "y"}},
                                      options={"idempotency_key": "order-42"})
    assert exc.value.http_status == 400 and "same parameters" in exc.value.user_message
    # Keys are scoped per account: the same key on another account is a new request.
    other = client(sb, KEY_B).v1.checkout.sessions.create(params=params, options={"idempotency_key": "order-42"})
    assert other.id != first.id


def test_idempotent_error_is_replayed_too(sb):
    c = client(sb)
    s = new_session(c)
    pi = control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={}).json()["payment_intent"]["id"]
    opts = {"idempotency_key": "refund-too-much"}
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            c.v1.refunds.create(params={"payment_intent": pi, "amount": 5000}, options=opts)
        assert exc.value.code == "amount_too_large"
    assert exc.value.headers["Idempotent-Replayed"] == "true"


def test_partial_refunds_and_over_refund_refused(sb, receiver):
    c = client(sb)
    endpoint(c, receiver.url, ["charge.refunded", "refund.created"])
    s = new_session(c, amount=3000)
    pi = control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={}).json()["payment_intent"]
    r1 = c.v1.refunds.create(params={"payment_intent": pi["id"], "amount": 1000, "reason": "requested_by_customer",
                                     "metadata": {"ticket": "T-1"}})
    assert r1.id.startswith("re_") and (r1.amount, r1.status, r1.charge) == (1000, "succeeded",
                                                                             pi["latest_charge"]["id"])
    assert r1.metadata.to_dict() == {"ticket": "T-1"} and r1.payment_intent == pi["id"]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.refunds.create(params={"payment_intent": pi["id"], "amount": 2001})
    assert (exc.value.http_status, exc.value.param, exc.value.code) == (400, "amount", "amount_too_large")
    assert "($20.00)" in exc.value.user_message
    r2 = c.v1.refunds.create(params={"charge": pi["latest_charge"]["id"]})  # the rest
    assert r2.amount == 2000
    charge = c.v1.charges.retrieve(pi["latest_charge"]["id"], params={"expand": ["refunds"]})
    assert (charge.amount_refunded, charge.refunded) == (3000, True)
    assert {r.id for r in charge.refunds.data} == {r1.id, r2.id}
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.refunds.create(params={"payment_intent": pi["id"], "amount": 1})
    assert exc.value.code == "charge_already_refunded"
    assert c.v1.refunds.retrieve(r1.id).amount == 1000
    flush(sb)
    refunded = [e for e in receiver.events() if e["type"] == "charge.refunded"]
    assert [e["data"]["object"]["amount_refunded"] for e in refunded] == [1000, 3000]
    assert refunded[1]["data"]["previous_attributes"] == {"amount_refunded": 1000, "refunded": False}
    assert receiver.types().count("refund.created") == 2
    assert refunded[0]["request"]["idempotency_key"]  # the SDK sends one on every POST


def test_accounts_are_isolated(sb, receiver):
    a, b = client(sb, KEY_A), client(sb, KEY_B)
    endpoint(b, receiver.url)
    s = new_session(a)
    control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        b.v1.checkout.sessions.retrieve(s.id)
    assert exc.value.http_status == 404
    assert b.v1.checkout.sessions.list().data == [] and b.v1.events.list().data == []
    assert len(a.v1.events.list().data) == 4
    flush(sb)
    assert receiver.deliveries == []  # B's endpoint never hears about A's events


# ----- delivery switches ---------------------------------------------------------------------------


def test_duplicates_switch_delivers_each_event_n_times(sb, receiver):
    c = client(sb)
    we = endpoint(c, receiver.url, ["checkout.session.completed"])
    control(sb, "PUT", f"/accounts/{KEY_A}/delivery", json={"duplicates": 3})
    s = new_session(c)
    control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={})
    flush(sb)
    events = [stripe.Webhook.construct_event(d["raw"], d["headers"]["Stripe-Signature"], we.secret)
              for d in receiver.deliveries]
    assert len(events) == 3 and len({e.id for e in events}) == 1


def test_concurrent_switch_delivers_duplicates_in_parallel(sb, receiver):
    c = client(sb)
    endpoint(c, receiver.url, ["checkout.session.completed"])
    receiver.delay_s = 0.3
    control(sb, "PUT", "/delivery", json={"duplicates": 3, "concurrent": True})
    control(sb, "POST", f"/checkout/sessions/{new_session(c).id}/pay", json={})
    flush(sb)
    assert len(receiver.deliveries) == 3 and receiver.max_active >= 2


def test_one_delivery_at_a_time_per_endpoint_by_default(sb, receiver):
    c = client(sb)
    endpoint(c, receiver.url, ["checkout.session.completed"])
    receiver.delay_s = 0.1
    control(sb, "PUT", "/delivery", json={"duplicates": 3})
    control(sb, "POST", f"/checkout/sessions/{new_session(c).id}/pay", json={})
    flush(sb)
    assert len(receiver.deliveries) == 3 and receiver.max_active == 1


def test_reverse_order_switch_delivers_completed_first(sb, receiver):
    c = client(sb)
    endpoint(c, receiver.url)
    control(sb, "PUT", "/delivery", json={"order": "reverse", "batch_size": 4})
    s = new_session(c)
    control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={})
    flush(sb)
    assert receiver.types() == ["checkout.session.completed", "payment_intent.succeeded", "charge.succeeded",
                                "payment_intent.created"]


def test_shuffle_switch_is_seeded_and_flush_releases_partial_batches(sb, receiver):
    c = client(sb)
    endpoint(c, receiver.url)
    control(sb, "PUT", "/delivery", json={"order": "shuffle", "seed": 3, "hold_ms": 60_000})
    for n in range(3):
        control(sb, "POST", f"/checkout/sessions/{new_session(c, order_id=f'o{n}').id}/pay", json={})
    time.sleep(0.3)
    assert receiver.deliveries == []  # held: the batch is neither full nor old enough
    flush(sb)
    emitted = [e.id for e in reversed(c.v1.events.list(params={"limit": 100}).data)]
    received = [e["id"] for e in receiver.events()]
    assert sorted(received) == sorted(emitted) and received != emitted


def test_dropped_deliveries_are_retried_with_fresh_signatures(sb, receiver):
    c = client(sb)
    we = endpoint(c, receiver.url, ["checkout.session.completed"])
    control(sb, "PUT", "/delivery", json={"fail_deliveries": 2, "retry_schedule_s": FAST_RETRIES})
    s = new_session(c)
    control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={})
    flush(sb)
    attempts = control(sb, "GET", "/deliveries", params={"endpoint": we.id}).json()["data"]
    assert [(a["attempt"], a["dropped"], a["succeeded"]) for a in attempts] == [
        (1, True, False), (2, True, False), (3, False, True)]
    assert len(receiver.deliveries) == 1


def test_failing_endpoint_exhausts_retries_and_shows_as_undelivered(sb, receiver):
    c = client(sb)
    we = endpoint(c, receiver.url, ["checkout.session.completed"])
    control(sb, "PUT", "/delivery", json={"retry_schedule_s": FAST_RETRIES})
    receiver.statuses = [500] * 10
    s = new_session(c)
    control(sb, "POST", f"/checkout/sessions/{s.id}/pay", json={})
    flush(sb)
    assert len(receiver.deliveries) == 4  # 1 + len(retry schedule)
    signatures = {d["headers"]["Stripe-Signature"] for d in receiver.deliveries}
    assert all(s.startswith("t=") and ",v1=" in s for s in signatures)
    undelivered = c.v1.events.list(params={"delivery_success": False})
    assert [e.type for e in undelivered.data] == ["checkout.session.completed"]
    assert undelivered.data[0].pending_webhooks == 1
    # The receiver recovers; a resend clears the backlog.
    receiver.statuses = []
    control(sb, "POST", f"/events/{undelivered.data[0].id}/resend", json={"endpoint": we.id})
    flush(sb)
    assert c.v1.events.list(params={"delivery_success": False}).data == []
    assert c.v1.events.retrieve(undelivered.data[0].id).pending_webhooks == 0


def test_pause_holds_deliveries_until_unpaused(sb, receiver):
    c = client(sb)
    endpoint(c, receiver.url, ["checkout.session.completed"])
    control(sb, "PUT", "/delivery", json={"pause": True})
    control(sb, "POST", f"/checkout/sessions/{new_session(c).id}/pay", json={})
    result = control(sb, "POST", "/flush", json={"timeout_s": 2}).json()
    assert (result["settled"], result["reason"], result["queued_paused"]) == (False, "paused", 1)
    assert receiver.deliveries == []
    control(sb, "PUT", "/delivery", json={"pause": False, "delay_ms": 50})
    flush(sb)
    assert receiver.types() == ["checkout.session.completed"]


def test_sign_helper_supports_stale_timestamps(sb):
    secret = "whsec_test_secret"
    payload = {"id": "evt_test_1", "object": "event", "type": "checkout.session.completed",
               "data": {"object": {"id": "cs_test_1", "object": "checkout.session"}}}
    fresh = control(sb, "POST", "/sign", json={"payload": payload, "secret": secret}).json()
    event = stripe.Webhook.construct_event(fresh["body"], fresh["stripe_signature"], secret)
    assert event.id == "evt_test_1"
    stale = control(sb, "POST", "/sign", json={"payload": payload, "secret": secret,
                                               "timestamp": int(time.time()) - 301}).json()
    assert stale["stripe_signature"].startswith(f"t={stale['timestamp']},v1=")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(stale["body"], stale["stripe_signature"], secret)
