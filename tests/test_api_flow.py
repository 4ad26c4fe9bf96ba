"""Whole flows against the sandbox: buy → pay → signed webhook → provisioned → email with QR.

Our API serves on a real port and the Stripe fake delivers to it, signed with the shop's own
secret, with its switches for duplicates, concurrency and shuffled order. Runs on SQLite, and on
PostgreSQL when DATABASE_URL points at one.
"""

import base64
import concurrent.futures as cf

import httpx
import pytest
import sqlalchemy as sa

from resources.dagster_resources import EsimProvidersResource
from tests.api_storefront import (
    CREDENTIALS, ApiThread, attempts, buy, effects_settled, emails_to, fault_calls, first_package, free_port, open_storefront,
    order_row, session_of, settings_for, wait_for, wait_status,
)
from warehouse.tables.orders import (
    order_effects, order_esims, order_refunds, payments, provisioning_jobs, webhook_events,
)
from warehouse.tenants import TenantConnection

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def api(warehouse_url, engine):
    with ApiThread(settings_for(warehouse_url, free_port()), engine) as server:
        yield server


@pytest.fixture
def storefront(sandbox_reset, api, engine, warehouse, tenant_id):
    return open_storefront(engine, warehouse, sandbox_reset.url, api.url, tenant_id)


def rows(engine, table, tenant_id, *where):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(table.c.tenant_id == tenant_id, *where)).mappings()]


def settled(engine, storefront):
    wait_for(lambda: effects_settled(engine, storefront.tenant_id), 20, "emails, notices and refunds")


def test_buy_pay_provisioned_with_email_and_qr(api, storefront, engine):
    package = first_package(api.url, storefront)
    first = buy(api.url, storefront, package["package_id"], key="cart-1")
    retried = buy(api.url, storefront, package["package_id"], key="cart-1")
    assert (retried["order_id"], retried["checkout_url"], retried["token"], retried["replayed"]) == \
        (first["order_id"], first["checkout_url"], first["token"], True)
    session = storefront.stripe().v1.checkout.sessions.retrieve(session_of(engine, storefront.tenant_id, first["order_id"]))
    assert (session.client_reference_id, session.metadata["order_id"], session.amount_total) == \
        (first["order_id"], first["order_id"], round(float(package["price"]) * 100))
    assert httpx.get(first["order_url"]).json()["status"] == "pending"

    storefront.pay(session.id)
    storefront.flush()
    order = wait_status(engine, storefront.tenant_id, first["order_id"], {"provisioned"})
    settled(engine, storefront)
    view = httpx.get(first["order_url"]).json()
    (esim,) = view["esims"]
    assert esim["activation_code"].startswith("LPA:1$") and len(esim["iccid"]) in (19, 20)
    assert base64.b64decode(esim["qr_png_base64"]).startswith(PNG)
    assert httpx.get(esim["qr_png_url"]).content.startswith(PNG)
    (mail,) = emails_to(storefront.sandbox, first["order_id"])
    assert mail["to"] == ["traveller@example.com"] and mail["idempotency_key"] == first["order_id"]
    assert esim["activation_code"] in mail["text"] and mail["attachments"][0]["content_type"] == "image/png"
    assert [a["provider"] for a in attempts(engine, storefront.tenant_id)] == ["esimcard"]
    assert any(first["order_id"] in m and "provisioned" in m for m in storefront.slack_messages())
    intent = storefront.stripe().v1.payment_intents.retrieve(order["stripe_payment_intent_id"])
    assert intent.metadata["order_id"] == first["order_id"]  # payment_intent_data.metadata reached the payment
    (payment,) = rows(engine, payments, storefront.tenant_id)
    assert (payment["order_id"], payment["status"], payment["amount"]) == (first["order_id"], "succeeded",
                                                                           order["amount_total"])
    kinds = {e["type"]: e["outcome"] for e in rows(engine, webhook_events, storefront.tenant_id)}
    assert kinds["checkout.session.completed"] == "applied" and kinds["payment_intent.created"] == "ignored"


def test_same_event_ten_times_concurrently_provisions_once(api, storefront, engine):
    storefront.delivery(duplicates=10, concurrent=True)
    bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
    storefront.pay(session_of(engine, storefront.tenant_id, bought["order_id"]))
    storefront.flush()
    completed = storefront.deliveries("checkout.session.completed")
    assert len(completed) == 10 and all(d["succeeded"] for d in completed)
    wait_status(engine, storefront.tenant_id, bought["order_id"], {"provisioned"})
    settled(engine, storefront)
    outcomes = [e["outcome"] for e in rows(engine, webhook_events, storefront.tenant_id,
                                           webhook_events.c.type == "checkout.session.completed")]
    assert outcomes == ["applied"]  # one row per event id: nine deliveries were duplicates
    purchases = [a for a in attempts(engine, storefront.tenant_id) if a["outcome"] == "succeeded"]
    assert len(purchases) == 1 and len(rows(engine, order_esims, storefront.tenant_id)) == 1
    orders_at_provider = httpx.get(f"{storefront.sandbox}/_sandbox/esimcard/orders").json()["orders"]
    assert len(orders_at_provider) == 1
    assert len(emails_to(storefront.sandbox, bought["order_id"])) == 1
    (email_effect,) = rows(engine, order_effects, storefront.tenant_id, order_effects.c.kind == "email_ready")
    assert (email_effect["state"], email_effect["attempts"]) == ("done", 1)


def test_success_redirect_racing_the_webhook(api, storefront, engine):
    storefront.delivery(pause=True)
    bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
    session_id = session_of(engine, storefront.tenant_id, bought["order_id"])
    storefront.pay(session_id)
    back = f"{api.url}/shops/{storefront.tenant_id}/orders/{bought['order_id']}/return"
    with cf.ThreadPoolExecutor(6) as pool:
        returns = [pool.submit(httpx.get, back, params={"token": bought["token"], "session_id": session_id})
                   for _ in range(5)]
        storefront.delivery(pause=False)
        assert all(r.result().status_code == 303 for r in returns)
    storefront.flush()
    wait_status(engine, storefront.tenant_id, bought["order_id"], {"provisioned"})
    settled(engine, storefront)
    assert len(rows(engine, provisioning_jobs, storefront.tenant_id)) == 1
    assert len([a for a in attempts(engine, storefront.tenant_id) if a["outcome"] == "succeeded"]) == 1
    assert len(emails_to(storefront.sandbox, bought["order_id"])) == 1
    forged = httpx.get(back, params={"token": bought["token"], "session_id": "cs_test_" + "x" * 20})
    assert forged.status_code == 404  # only Stripe's word counts, and Stripe does not know it


def _scenarios(api, storefront, engine) -> dict[str, str]:
    """Seven orders, each driven to a different end; returns order id -> scenario name."""
    package = first_package(api.url, storefront)["package_id"]
    made = {}
    for name in ("paid", "declined", "declined_then_paid", "expired", "paid_then_refunded", "debit_settled",
                 "debit_bounced"):
        bought = buy(api.url, storefront, package, quantity=2 if name == "paid" else 1)
        session_id = session_of(engine, storefront.tenant_id, bought["order_id"])
        if name.startswith("debit"):  # a bank debit: the session completes unpaid, then settles or not
            storefront.pay(session_id, bank_debit=True)
            storefront.settle(session_id, succeeded=name == "debit_settled")
        if name.startswith("declined"):
            storefront.decline(session_id)
        if name in ("paid", "declined_then_paid", "paid_then_refunded"):
            storefront.pay(session_id)
        if name == "expired":
            storefront.expire(session_id)
        if name == "paid_then_refunded":
            intent = storefront.stripe().v1.checkout.sessions.retrieve(session_id).payment_intent
            storefront.stripe().v1.refunds.create(params={"payment_intent": intent})
        made[bought["order_id"]] = name
    return made


def _final(engine, storefront, made) -> dict[str, str]:
    storefront.flush()
    for order_id in made:
        wait_for(lambda: order_row(engine, storefront.tenant_id, order_id)["status"] not in ("paid", "processing"), 20,
                 "orders to settle")
    return {name: order_row(engine, storefront.tenant_id, order_id)["status"] for order_id, name in made.items()}


def test_shuffled_duplicated_events_reach_the_same_final_state(api, storefront, engine):
    in_order = _final(engine, storefront, _scenarios(api, storefront, engine))
    assert in_order == {"paid": "provisioned", "declined": "payment_failed", "declined_then_paid": "provisioned",
                        "expired": "expired", "paid_then_refunded": "refunded", "debit_settled": "provisioned",
                        "debit_bounced": "payment_failed"}
    storefront.delivery(order="shuffle", duplicates=2, concurrent=True, hold_ms=60_000, seed=11)
    shuffled_orders = _scenarios(api, storefront, engine)
    assert _final(engine, storefront, shuffled_orders) == in_order
    created = [e.id for e in storefront.stripe().v1.events.list(params={"limit": 100}).auto_paging_iter()][::-1]
    delivered = list(dict.fromkeys(d["event_id"] for d in storefront.deliveries()))
    assert sorted(delivered) == sorted(created) and delivered != created  # really out of order
    paid = next(o for o, name in shuffled_orders.items() if name == "paid")
    assert len(rows(engine, order_esims, storefront.tenant_id, order_esims.c.order_id == paid)) == 2


def test_primary_down_fails_over_and_open_breaker_is_not_called(api, storefront, engine):
    storefront.control("PUT", "/faults/esimcard", json={"down": True})
    package = first_package(api.url, storefront)["package_id"]
    served = []
    for _ in range(5):
        bought = buy(api.url, storefront, package)
        storefront.pay(session_of(engine, storefront.tenant_id, bought["order_id"]))
        storefront.flush()
        wait_status(engine, storefront.tenant_id, bought["order_id"], {"provisioned"})
        served.append(bought["order_id"])
        if len(served) == 3:
            calls_when_opened = fault_calls(storefront.sandbox, "esimcard")
    esimcard = [(a["outcome"], a["error_class"]) for a in attempts(engine, storefront.tenant_id) if a["provider"] == "esimcard"]
    assert esimcard[:3] == [("failed", "server")] * 3
    assert esimcard[3:] == [("skipped", "circuit_open")] * 2
    assert fault_calls(storefront.sandbox, "esimcard") == calls_when_opened  # open breaker: no call at all
    delivered = rows(engine, order_esims, storefront.tenant_id)
    assert sorted(e["order_id"] for e in delivered) == sorted(served)
    assert {e["provider"] for e in delivered} == {"mobimatter"}


def test_unusable_esim_is_kept_findable_and_the_next_provider_serves(api, storefront, engine):
    storefront.control("PUT", "/esimcard/accounts/demo@esimcard.test/unusable_sims", json={"enabled": True})
    bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
    storefront.pay(session_of(engine, storefront.tenant_id, bought["order_id"]))
    storefront.flush()
    wait_status(engine, storefront.tenant_id, bought["order_id"], {"provisioned"})
    unusable, served = attempts(engine, storefront.tenant_id, bought["order_id"])
    assert (unusable["provider"], unusable["outcome"], unusable["error_class"]) == ("esimcard", "failed",
                                                                                    "malformed_esim")
    assert (served["provider"], served["outcome"]) == ("mobimatter", "succeeded")
    # eSIM Card charged for that sim: the attempt names it, so it can be looked up there again.
    client = EsimProvidersResource().client_for(TenantConnection(
        storefront.tenant_id, "esimcard", f"{storefront.sandbox}/esimcard", CREDENTIALS["esimcard"], {}))
    try:
        sim = client.get_json(f"/my-esims/{unusable['provider_order_id']}")["data"]["sim"]
    finally:
        client.close()
    (sold,) = storefront.control("GET", "/esimcard/orders")["orders"]
    assert sold["iccids"] == [sim["iccid"]]


def test_all_providers_down_refunds_and_fails(api, storefront, engine):
    for provider in ("esimcard", "mobimatter", "airalo"):
        storefront.control("PUT", f"/faults/{provider}", json={"down": True})
    bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
    storefront.pay(session_of(engine, storefront.tenant_id, bought["order_id"]))
    storefront.flush()
    order = wait_status(engine, storefront.tenant_id, bought["order_id"], {"failed"})
    settled(engine, storefront)
    storefront.flush()  # the refund's own charge.refunded event
    order = wait_for(lambda: (o := order_row(engine, storefront.tenant_id, bought["order_id"]))["amount_refunded"]
                     == o["amount_total"] and o, 10, "refund recorded")
    assert order["status"] == "failed" and "no provider" in order["failure_reason"]
    (refund,) = storefront.stripe().v1.refunds.list(params={"payment_intent": order["stripe_payment_intent_id"]}).data
    assert refund.amount == round(float(order["amount_total"]) * 100) and refund.metadata["order_id"] == order["order_id"]
    (mail,) = emails_to(storefront.sandbox, bought["order_id"])
    assert "refunded" in mail["text"] and mail["idempotency_key"] == f"{bought['order_id']}:apology"
    assert any("failed" in m and bought["order_id"] in m for m in storefront.slack_messages())
    assert {a["provider"] for a in attempts(engine, storefront.tenant_id)} == {"esimcard", "mobimatter", "airalo"}
    assert rows(engine, order_esims, storefront.tenant_id) == []


def test_partial_delivery_refunds_only_what_was_not_delivered(api, storefront, engine):
    package = first_package(api.url, storefront)
    provider, package_id = package["package_id"].split(":", 1)
    storefront.control("PUT", f"/{provider}/stock/{package_id}", json={"units": 1})  # one left at the primary
    for other in ("mobimatter", "airalo"):
        storefront.control("PUT", f"/faults/{other}", json={"down": True})
    bought = buy(api.url, storefront, package["package_id"], quantity=2)
    storefront.pay(session_of(engine, storefront.tenant_id, bought["order_id"]))
    storefront.flush()
    order = wait_status(engine, storefront.tenant_id, bought["order_id"], {"partially_provisioned"})
    settled(engine, storefront)
    storefront.flush()
    order = wait_for(lambda: (o := order_row(engine, storefront.tenant_id, bought["order_id"]))["amount_refunded"]
                     == o["unit_price"] and o, 10, "partial refund recorded")
    (refund,) = storefront.stripe().v1.refunds.list(params={"payment_intent": order["stripe_payment_intent_id"]}).data
    assert refund.amount == round(float(order["unit_price"]) * 100)
    assert order["status"] == "partially_provisioned"  # a partial refund does not make it "refunded"
    # recorded once with its time, though both the refund and Stripe's charge.refunded raised it
    (refund_row,) = rows(engine, order_refunds, storefront.tenant_id, order_refunds.c.order_id == bought["order_id"])
    assert refund_row["refunded_total"] == refund_row["amount"] == order["unit_price"]
    ready, apology = sorted(emails_to(storefront.sandbox, bought["order_id"]), key=lambda e: e["idempotency_key"])
    assert len(ready["attachments"]) == 1 and f"{order['unit_price']:.2f} USD" in apology["text"]
    outcomes = [(a["unit"], a["provider"], a["outcome"], a["error_class"]) for a in attempts(engine, storefront.tenant_id)]
    assert outcomes[0] == (1, provider, "succeeded", None)
    assert (2, provider, "failed", "out_of_stock") in outcomes
