"""Stripe events for studio invoices through the real webhook route, signed with the studio's secret:
payments, refunds (partial, several, before their payment), duplicates, any order, concurrency,
and the shop's events on the same endpoint left to the shop."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api_storefront import settings_for
from tests.studio_pay_world import WHSEC, invoice_row, make_invoice, make_studio
from tests.test_api_http import pending_order, signed
from warehouse.tables.orders import orders, webhook_events
from warehouse.tables.studio import studio_activity_logs, studio_invoices, studio_payments

D = Decimal


@pytest.fixture
def client(warehouse_url, engine):
    with TestClient(create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine),
                    raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def studio(engine, tenant_id):
    return make_studio(engine, tenant_id)


def event(event_id: str, event_type: str, obj: dict) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "created": 1700000000,
                       "data": {"object": obj}}).encode()


def meta(tenant_id: str, invoice_id: int) -> dict:
    return {"invoiceId": str(invoice_id), "invoiceNumber": "INV-0001", "tenant_id": tenant_id}


def completed(tenant_id: str, invoice_id: int, cents: int, session_id: str = "cs_test_studio_1",
              intent: str = "pi_studio_1") -> dict:
    return {"id": session_id, "object": "checkout.session", "status": "complete", "payment_status": "paid",
            "amount_total": cents, "currency": "aud", "payment_intent": intent, "metadata": meta(tenant_id, invoice_id),
            "success_url": f"http://api/studios/{tenant_id}/public/invoices/{invoice_id}?token=SECRET&session_id=x"}


def refunded(tenant_id: str, invoice_id: int, captured: int, refunded_total: int, intent: str = "pi_studio_1",
             **extra) -> dict:
    return {"id": "ch_studio_1", "object": "charge", "amount": captured, "amount_captured": captured,
            "amount_refunded": refunded_total, "refunded": refunded_total == captured, "currency": "aud",
            "payment_intent": intent, "metadata": meta(tenant_id, invoice_id), **extra}


def post(client, tenant_id: str, body: bytes, path: str = "studios") -> str:
    answer = client.post(f"/{path}/{tenant_id}/webhooks/stripe", content=body, headers=signed(body, WHSEC))
    assert answer.status_code == 200, answer.text
    return answer.json()["outcome"]


def payments(engine, tenant_id: str) -> list[tuple]:
    p = studio_payments.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(p.kind, p.method, p.amount, p.processor_id, p.reference)
                                               .where(p.tenant_id == tenant_id).order_by(p.id))]


def recorded(engine, tenant_id: str) -> dict[str, tuple]:
    w = webhook_events.c
    with engine.connect() as conn:
        return {r.event_id: (r.outcome, r.order_id) for r in
                conn.execute(sa.select(w.event_id, w.outcome, w.order_id).where(w.tenant_id == tenant_id))}


def test_a_completed_checkout_pays_the_invoice_once(client, engine, studio):
    invoice_id = make_invoice(engine, studio)
    with engine.begin() as conn:  # as checkout leaves it: the open session stored on the invoice
        conn.execute(sa.update(studio_invoices).where(studio_invoices.c.id == invoice_id).values(
            stripe_checkout_session_id="cs_test_studio_1", stripe_checkout_url="http://x/c/pay/cs_test_studio_1",
            stripe_checkout_amount=D("110.00")))
    body = event("evt_s1", "checkout.session.completed", completed(studio.tenant_id, invoice_id, 11000))
    assert post(client, studio.tenant_id, body) == "applied"
    assert post(client, studio.tenant_id, body) == "duplicate"
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["status"], row["amount_paid"], row["balance_due"]) == ("paid", D("110.00"), D("0"))
    assert (row["stripe_checkout_session_id"], row["stripe_checkout_url"], row["stripe_checkout_amount"]) == \
        (None, None, None)
    assert payments(engine, studio.tenant_id) == [("payment", "STRIPE", D("110.00"), "pi_studio_1",
                                                   "cs_test_studio_1")]
    assert recorded(engine, studio.tenant_id) == {"evt_s1": ("applied", None)}
    with engine.connect() as conn:
        stored = conn.execute(sa.select(webhook_events.c.payload).where(
            webhook_events.c.tenant_id == studio.tenant_id)).scalar_one()
        actions = conn.execute(sa.select(studio_activity_logs.c.action, studio_activity_logs.c.actor_kind).where(
            studio_activity_logs.c.tenant_id == studio.tenant_id).order_by(studio_activity_logs.c.id)).all()
    assert "SECRET" not in json.dumps(stored)  # the invoice link's token is not kept with the event
    assert [tuple(a) for a in actions] == [("payment_recorded", "stripe"), ("paid", "stripe")]
    # another event for the same payment (the success redirect's confirmation, a re-send) changes nothing
    assert post(client, studio.tenant_id, event("evt_s2", "checkout.session.completed",
                                                completed(studio.tenant_id, invoice_id, 11000))) == "unchanged"
    assert len(payments(engine, studio.tenant_id)) == 1


def test_partial_and_several_refunds_restore_the_balance(client, engine, studio):
    invoice_id = make_invoice(engine, studio)
    post(client, studio.tenant_id, event("evt_p", "checkout.session.completed",
                                         completed(studio.tenant_id, invoice_id, 11000)))
    assert post(client, studio.tenant_id, event("evt_r1", "charge.refunded",
                                                refunded(studio.tenant_id, invoice_id, 11000, 2000))) == "applied"
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["status"], row["amount_refunded"], row["balance_due"]) == ("partially_paid", D("20.00"), D("20.00"))
    # the second refund's event comes twice, and the first one's again: only the new money counts
    second = event("evt_r2", "charge.refunded", refunded(studio.tenant_id, invoice_id, 11000, 11000))
    assert post(client, studio.tenant_id, second) == "applied"
    assert post(client, studio.tenant_id, second) == "duplicate"
    assert post(client, studio.tenant_id, event("evt_r1b", "charge.refunded",
                                                refunded(studio.tenant_id, invoice_id, 11000, 2000))) == "unchanged"
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["status"], row["amount_refunded"], row["balance_due"]) == ("issued", D("110.00"), D("110.00"))
    assert payments(engine, studio.tenant_id)[1:] == [
        ("refund", "STRIPE", D("20.00"), "ch_studio_1:refunded:2000", "pi_studio_1"),
        ("refund", "STRIPE", D("90.00"), "ch_studio_1:refunded:11000", "pi_studio_1")]


def test_a_charge_listing_its_refunds_records_each_by_its_id(client, engine, studio):
    invoice_id = make_invoice(engine, studio)
    post(client, studio.tenant_id, event("evt_p", "checkout.session.completed",
                                         completed(studio.tenant_id, invoice_id, 11000)))
    listed = {"object": "list", "data": [{"id": "re_b", "amount": 3000, "status": "succeeded", "created": 2},
                                         {"id": "re_a", "amount": 1000, "status": "succeeded", "created": 1}]}
    body = event("evt_r", "charge.refunded", refunded(studio.tenant_id, invoice_id, 11000, 4000, refunds=listed))
    assert post(client, studio.tenant_id, body) == "applied"
    assert [p[2:4] for p in payments(engine, studio.tenant_id)[1:]] == [(D("10.00"), "re_a"), (D("30.00"), "re_b")]
    assert invoice_row(engine, studio.tenant_id, invoice_id)["balance_due"] == D("40.00")


def test_a_refund_that_overtakes_its_payment(client, engine, studio):
    invoice_id = make_invoice(engine, studio)
    assert post(client, studio.tenant_id, event("evt_r", "charge.refunded",
                                                refunded(studio.tenant_id, invoice_id, 11000, 5000))) == "applied"
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["amount_paid"], row["amount_refunded"], row["balance_due"]) == (D("110.00"), D("50.00"), D("50.00"))
    assert post(client, studio.tenant_id, event("evt_p", "checkout.session.completed",
                                                completed(studio.tenant_id, invoice_id, 11000))) == "unchanged"
    assert payments(engine, studio.tenant_id) == [
        ("payment", "STRIPE", D("110.00"), "pi_studio_1", "cs_test_studio_1"),  # the session filled in late
        ("refund", "STRIPE", D("50.00"), "ch_studio_1:refunded:5000", "pi_studio_1")]
    assert invoice_row(engine, studio.tenant_id, invoice_id)["balance_due"] == D("50.00")


def test_events_the_studio_does_not_own_go_to_the_shop_on_either_path(client, engine, studio):
    """One Stripe account, one record per event: a shop order's events on the studio's endpoint still
    reach the shop, and a studio event on the shop's endpoint still reaches the studio."""
    order_id = pending_order(engine, studio.tenant_id)
    shop_session = {"id": "cs_shop_1", "object": "checkout.session", "amount_total": 399, "currency": "usd",
                    "status": "complete", "payment_status": "paid", "payment_intent": "pi_shop_1",
                    "client_reference_id": order_id, "metadata": {"order_id": order_id, "tenant_id": studio.tenant_id}}
    assert post(client, studio.tenant_id, event("evt_o", "checkout.session.completed", shop_session)) == "applied"
    with engine.connect() as conn:
        assert conn.execute(sa.select(orders.c.status).where(orders.c.tenant_id == studio.tenant_id)).scalar_one() \
            == "paid"
    invoice_id = make_invoice(engine, studio)
    assert post(client, studio.tenant_id, event("evt_i", "checkout.session.completed",
                                                completed(studio.tenant_id, invoice_id, 11000)), "shops") == "applied"
    # a refund of the shop's charge, without our metadata, is the shop's; one of ours found by its intent is ours
    assert post(client, studio.tenant_id, event("evt_or", "charge.refunded", {
        "id": "ch_shop_1", "object": "charge", "amount_captured": 399, "amount_refunded": 399, "refunded": True,
        "currency": "usd", "payment_intent": "pi_shop_1", "metadata": {}})) == "applied"
    assert post(client, studio.tenant_id, event("evt_ir", "charge.refunded", {
        **refunded(studio.tenant_id, invoice_id, 11000, 1000), "metadata": {}})) == "applied"
    assert recorded(engine, studio.tenant_id) == {"evt_o": ("applied", order_id), "evt_i": ("applied", None),
                                                  "evt_or": ("applied", order_id), "evt_ir": ("applied", None)}
    assert invoice_row(engine, studio.tenant_id, invoice_id)["balance_due"] == D("10.00")


def test_events_naming_another_tenant_or_no_invoice_change_nothing(client, engine, studio):
    invoice_id = make_invoice(engine, studio)
    foreign = completed(studio.tenant_id, invoice_id, 11000)
    foreign["metadata"] = {**foreign["metadata"], "tenant_id": "someone-else"}
    assert post(client, studio.tenant_id, event("evt_f", "checkout.session.completed", foreign)) == "foreign_tenant"
    assert post(client, studio.tenant_id, event("evt_n", "checkout.session.completed",
                                                completed(studio.tenant_id, 10**12, 11000))) == "no_invoice"
    usd = {**completed(studio.tenant_id, invoice_id, 11000), "currency": "usd"}
    assert post(client, studio.tenant_id, event("evt_c", "checkout.session.completed", usd)) == "currency_mismatch"
    assert post(client, studio.tenant_id, event("evt_x", "payment_intent.created", {
        "id": "pi_x", "object": "payment_intent", "metadata": meta(studio.tenant_id, invoice_id)})) == "ignored"
    assert payments(engine, studio.tenant_id) == []
    assert invoice_row(engine, studio.tenant_id, invoice_id)["status"] == "issued"


def test_a_bad_signature_changes_nothing(client, engine, studio):
    invoice_id = make_invoice(engine, studio)
    body = event("evt_s", "checkout.session.completed", completed(studio.tenant_id, invoice_id, 11000))
    answer = client.post(f"/studios/{studio.tenant_id}/webhooks/stripe", content=body,
                         headers=signed(body, "whsec_wrong"))
    assert answer.status_code == 400 and answer.json()["type"].endswith("/invalid-signature")
    tampered = body.replace(b"11000", b"1")
    answer = client.post(f"/studios/{studio.tenant_id}/webhooks/stripe", content=tampered,
                         headers=signed(body, WHSEC))
    assert answer.status_code == 400
    assert payments(engine, studio.tenant_id) == [] and recorded(engine, studio.tenant_id) == {}


def test_concurrent_deliveries_record_each_payment_and_refund_once(client, engine, studio):
    """Each of five events delivered four times at once, in shuffled order: one payment, the refunds
    once each, every event recorded once."""
    invoice_id = make_invoice(engine, studio)
    bodies = [event("evt_c1", "checkout.session.completed", completed(studio.tenant_id, invoice_id, 11000)),
              event("evt_c2", "checkout.session.async_payment_succeeded",
                    completed(studio.tenant_id, invoice_id, 11000)),
              event("evt_c3", "charge.refunded", refunded(studio.tenant_id, invoice_id, 11000, 1000)),
              event("evt_c4", "charge.refunded", refunded(studio.tenant_id, invoice_id, 11000, 3000)),
              event("evt_c5", "charge.refunded", refunded(studio.tenant_id, invoice_id, 11000, 2500))]
    work = [b for b in bodies for _ in range(4)]
    work = work[::-1][::2] + work[::2]  # interleaved, refunds first for half of them
    outcomes: list[str] = []
    barrier = threading.Barrier(len(work))

    def deliver(body: bytes) -> None:
        barrier.wait()
        outcomes.append(post(client, studio.tenant_id, body))

    threads = [threading.Thread(target=deliver, args=(b,)) for b in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(outcomes) == 20 and outcomes.count("duplicate") == 15
    assert set(recorded(engine, studio.tenant_id)) == {f"evt_c{n}" for n in range(1, 6)}
    rows = payments(engine, studio.tenant_id)
    assert [r[0] for r in rows].count("payment") == 1
    assert sum(r[2] for r in rows if r[0] == "refund") == D("30.00")
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["amount_paid"], row["amount_refunded"], row["balance_due"], row["status"]) == \
        (D("110.00"), D("30.00"), D("30.00"), "partially_paid")
