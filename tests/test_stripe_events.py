"""Stripe events as other senders shape them: expanded objects, and sessions that are not the order's.

Signed events go through the real webhook route (the ``client`` of ``test_api_http``, a shop with
its own webhook secret); nothing of ours is stubbed.
"""

import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from commerce.webhooks import WebhookService
from tests.test_api_http import client, make_storefront, pending_order, signed  # noqa: F401  (client is a fixture)
from warehouse.tables.orders import orders, payments, webhook_events

PI = {"id": "pi_exp_1", "object": "payment_intent", "amount": 399, "amount_received": 399, "currency": "usd",
      "status": "succeeded"}
CHARGE = {"id": "ch_exp_1", "object": "charge", "amount": 399, "amount_captured": 399, "currency": "usd",
          "paid": True}


def event(event_id: str, event_type: str, obj: dict) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "created": 1,
                       "data": {"object": obj}}).encode()


def session(tenant_id: str, order_id: str, session_id: str, payment_intent) -> dict:
    return {"id": session_id, "object": "checkout.session", "amount_total": 399, "currency": "usd",
            "status": "complete", "payment_status": "paid", "payment_intent": payment_intent,
            "client_reference_id": order_id, "metadata": {"order_id": order_id, "tenant_id": tenant_id}}


def post(client, tenant_id: str, body: bytes) -> dict:  # noqa: F811
    response = client.post(f"/shops/{tenant_id}/webhooks/stripe", content=body, headers=signed(body))
    assert response.status_code == 200, response.text
    return response.json()


def order_of(engine, tenant_id: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(orders).where(orders.c.tenant_id == tenant_id)).mappings().one())


def recorded(engine, tenant_id: str) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(webhook_events).where(webhook_events.c.tenant_id == tenant_id)).mappings()
        return {r["event_id"]: (r["outcome"], r["order_id"]) for r in rows}


def test_expanded_objects_are_read_for_their_ids(client, engine, tenant_id):  # noqa: F811
    make_storefront(engine, tenant_id)
    order_id = pending_order(engine, tenant_id)
    metadata = {"order_id": order_id, "tenant_id": tenant_id}
    expanded_pi = {**PI, "latest_charge": CHARGE, "metadata": metadata}
    assert post(client, tenant_id, event("evt_x1", "checkout.session.completed",
                                         session(tenant_id, order_id, "cs_exp_1", expanded_pi)))["outcome"] == "applied"
    assert order_of(engine, tenant_id)["stripe_payment_intent_id"] == "pi_exp_1"
    # latest_charge as an object (as another Stripe-compatible server sends it) was a 500, retried for days
    assert post(client, tenant_id, event("evt_x2", "payment_intent.succeeded", expanded_pi))["outcome"] == "unchanged"
    # a refund whose payment_intent (and customer) come expanded still finds its order by that intent
    refunded = {**CHARGE, "amount_refunded": 399, "refunded": True, "payment_intent": PI,
                "customer": {"id": "cus_1", "object": "customer"}}
    assert post(client, tenant_id, event("evt_x3", "charge.refunded", refunded))["outcome"] == "applied"
    with engine.connect() as conn:
        payment = conn.execute(sa.select(payments).where(payments.c.tenant_id == tenant_id)).mappings().one()
    assert (payment["payment_intent_id"], payment["charge_id"], payment["amount_refunded"]) == \
        ("pi_exp_1", "ch_exp_1", Decimal("3.99"))
    assert order_of(engine, tenant_id)["status"] == "refunded"
    assert recorded(engine, tenant_id) == {"evt_x1": ("applied", order_id), "evt_x2": ("unchanged", order_id),
                                           "evt_x3": ("applied", order_id)}


def test_a_session_that_is_not_the_orders_is_ignored_for_it(client, engine, tenant_id):  # noqa: F811
    make_storefront(engine, tenant_id)
    order_id = pending_order(engine, tenant_id)
    with engine.begin() as conn:  # as checkout leaves it: the session Stripe created for this order
        conn.execute(sa.update(orders).where(orders.c.tenant_id == tenant_id)
                     .values(stripe_session_id="cs_own_session_1"))
    foreign = session(tenant_id, order_id, "cs_someone_elses_1", "pi_other_1")
    assert post(client, tenant_id, event("evt_f1", "checkout.session.completed", foreign))["outcome"] == \
        "foreign_session"
    order = order_of(engine, tenant_id)
    assert (order["status"], order["stripe_session_id"], order["stripe_payment_intent_id"]) == \
        ("pending", "cs_own_session_1", None)
    # the success redirect re-fetches whatever session the browser names: the same rule holds there
    with pytest.raises(ValueError, match="not order"):
        WebhookService(engine).fulfil(tenant_id, order_id, foreign)
    assert order_of(engine, tenant_id)["stripe_session_id"] == "cs_own_session_1"
    own = session(tenant_id, order_id, "cs_own_session_1", "pi_own_1")
    assert post(client, tenant_id, event("evt_f2", "checkout.session.completed", own))["outcome"] == "applied"
    order = order_of(engine, tenant_id)
    assert (order["status"], order["stripe_session_id"], order["stripe_payment_intent_id"]) == \
        ("paid", "cs_own_session_1", "pi_own_1")
    assert recorded(engine, tenant_id) == {"evt_f1": ("foreign_session", order_id), "evt_f2": ("applied", order_id)}
