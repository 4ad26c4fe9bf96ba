"""Stripe events → order state, exactly once per event, in any order.

``receive`` applies an event's state change and inserts the event into ``webhook_events``
(primary key tenant + event id) in the same transaction: a re-delivery conflicts on that key and
its whole transaction is rolled back, and a crash loses neither or both. Order-sensitive decisions only ever move an order up its payment
rank (``orders.payment_sources``), so a late ``payment_failed`` cannot undo ``paid`` and a late
``completed`` cannot resurrect a refunded order.

``fulfil(session_id)`` is the success redirect's path to the same state: it re-fetches the
session from Stripe (the browser's word proves nothing) and applies it with the same
compare-and-set, so it is safe to call any number of times, concurrently with the webhook.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from commerce import metrics
from commerce import orders as states
from commerce.orders import enqueue_provisioning, insert_ignore, move, one_of
from resources.stripe import from_minor, id_of, to_minor
from warehouse.tables.orders import payments, webhook_events
from warehouse.types import now_utc, utc_now

log = logging.getLogger("storehouse.commerce.webhooks")
SESSION_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                  "checkout.session.async_payment_failed", "checkout.session.expired")
HANDLED = frozenset({*SESSION_EVENTS, "payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"})
PAYMENT_OUTCOMES = {"payment_intent.succeeded": "succeeded", "payment_intent.payment_failed": "failed"}
PAYMENT_RANK = {"processing": 0, "failed": 1, "succeeded": 2}


@dataclass(frozen=True)
class Received:
    outcome: str  # applied, unchanged, duplicate, ignored, no_order, mismatch, foreign_session
    order_id: str | None
    paid: bool = False


def _order_of(conn: sa.Connection, tenant_id: str, event_type: str, obj: dict[str, Any]) -> str | None:
    """The order id an event object names: its metadata, else its client reference or intent."""
    metadata = obj.get("metadata") or {}
    if metadata.get("tenant_id") not in (None, tenant_id):
        return None
    candidate = metadata.get("order_id") or obj.get("client_reference_id")
    if candidate is None and event_type.startswith(("payment_intent.", "charge.")):
        intent = id_of(obj.get("id") if event_type.startswith("payment_intent.") else obj.get("payment_intent"))
        return states.find_by_intent(conn, tenant_id, intent) if intent else None
    return candidate if isinstance(candidate, str) else None


def record_payment(conn: sa.Connection, tenant_id: str, intent: str, *, status: str, order_id: str | None,
                   amount: Any, currency: str, **fields: Any) -> None:
    """Insert the PaymentIntent's row, or move its status up (processing < failed < succeeded) with
    ``fields``: one statement."""
    row = {"tenant_id": tenant_id, "payment_intent_id": intent, "order_id": order_id, "status": status,
           "amount": amount, "currency": currency.upper(), **fields}
    conn.execute(_raise_payment(conn.dialect.name, status, tuple(fields)), row)


# One upsert per dialect, target status and fields set, built once (see ``commerce.orders``): an
# existing row only moves up, and only its status, ``fields`` and ``updated_at`` change.
_RAISE_PAYMENT: dict[tuple[str, str, tuple[str, ...]], Any] = {}


def _raise_payment(dialect: str, status: str, fields: tuple[str, ...]) -> Any:
    stmt = _RAISE_PAYMENT.get((dialect, status, fields))
    if stmt is None:
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(payments)
        lower = [s for s, rank in PAYMENT_RANK.items() if rank < PAYMENT_RANK[status]]
        stmt = _RAISE_PAYMENT[(dialect, status, fields)] = insert.on_conflict_do_update(
            index_elements=[payments.c.tenant_id, payments.c.payment_intent_id],
            set_={"updated_at": utc_now(), **{name: insert.excluded[name] for name in ("status", *fields)}},
            where=one_of(payments.c.status, lower))
    return stmt


def apply_session(conn: sa.Connection, tenant_id: str, order_id: str, session: dict[str, Any],
                  event_type: str | None = None, order: dict[str, Any] | None = None) -> tuple[bool, bool]:
    """Apply a Checkout Session's state to its order; returns (moved, now paid). A session other
    than the one recorded for the order (``ForeignSession``) changes nothing. ``order`` as already
    read under the lock in this transaction, when the caller has it."""
    if order is None:
        order = states.load(conn, tenant_id, order_id)
    recorded = order["stripe_session_id"]
    if recorded and session.get("id") != recorded:
        raise ForeignSession(f"session {str(session.get('id'))[:80]!r} is not order {order_id}'s {recorded}")
    status, payment_status = session.get("status"), session.get("payment_status")
    if status == "complete" and payment_status in ("paid", "no_payment_required"):
        return mark_paid(conn, tenant_id, order_id, session, order)
    if status == "complete" and event_type == "checkout.session.async_payment_failed":
        return move(conn, tenant_id, order_id, states.PAYMENT_FAILED, states.payment_sources(states.PAYMENT_FAILED)), False
    if status == "complete":
        return move(conn, tenant_id, order_id, states.AWAITING_PAYMENT,
                    states.payment_sources(states.AWAITING_PAYMENT)), False
    if status == "expired":
        return move(conn, tenant_id, order_id, states.EXPIRED, states.payment_sources(states.EXPIRED)), False
    return False, False


def _intent_of(session: dict[str, Any]) -> str | None:
    """The session's PaymentIntent id (the field is an id, or the object when expanded)."""
    return id_of(session.get("payment_intent"))


def mark_paid(conn: sa.Connection, tenant_id: str, order_id: str, session: dict[str, Any],
              order: dict[str, Any] | None = None) -> tuple[bool, bool]:
    """``order`` as already read under the lock in this transaction, when the caller has it."""
    if order is None:
        order = states.load(conn, tenant_id, order_id)
    charged = session.get("amount_total")
    if charged != to_minor(order["amount_total"], order["currency"]) or \
            str(session.get("currency", "")).upper() != order["currency"]:
        log.error("order %s/%s: session %s charged %s %s, order says %s %s; not provisioning", tenant_id,
                  order_id, session.get("id"), charged, session.get("currency"), order["amount_total"], order["currency"])
        raise AmountMismatch(order_id)
    intent = _intent_of(session)
    moved = move(conn, tenant_id, order_id, states.PAID, states.payment_sources(states.PAID), paid_at=now_utc(),
                 stripe_payment_intent_id=intent, stripe_session_id=session.get("id"))
    if moved:
        enqueue_provisioning(conn, tenant_id, order_id)
    if intent:
        record_payment(conn, tenant_id, intent, status="succeeded", order_id=order_id, session_id=session.get("id"),
                       amount=order["amount_total"], currency=order["currency"])
    return moved, moved


class ForeignSession(ValueError):
    """A Checkout Session other than the order's own names it (in its metadata or reference):
    it never moves the order nor replaces the session id it was created with."""


class AmountMismatch(Exception):
    """Stripe charged something other than the order's total: never provision on it."""


def reject_mismatch(conn: sa.Connection, tenant_id: str, order_id: str, session: dict[str, Any]) -> bool:
    """A session that charged the wrong amount: fail the order, refund the charge, tell the shop.

    The money is with the shop but nothing may be provisioned on it, so the order must not sit in
    ``pending`` where nobody looks: it fails with the reason, and the outbox refunds the whole
    charge, apologises to the customer and alerts the shop's Slack.
    """
    intent = _intent_of(session)
    reason = (f"Stripe charged {session.get('amount_total')} {str(session.get('currency', '')).upper()} "
              f"(minor units) for this order; refunded, not provisioned")
    sources = (states.PENDING, states.AWAITING_PAYMENT, states.PAYMENT_FAILED, states.EXPIRED)
    moved = move(conn, tenant_id, order_id, states.FAILED, sources, failure_reason=reason, paid_at=now_utc(),
                 stripe_payment_intent_id=intent, stripe_session_id=session.get("id"))
    if moved:
        states.enqueue_effects(conn, tenant_id, order_id, ["refund", "email_apology", "slack_failed"])
    return moved


# A Checkout Session echoes the redirect URLs we gave Stripe, and those carry the customer's order
# token: stored as they come, anyone reading ``webhook_events`` could open any customer's eSIM.
REDIRECT_FIELDS = ("success_url", "cancel_url", "return_url")


def stored_payload(event: dict[str, Any]) -> dict[str, Any]:
    """The event as ``webhook_events`` keeps it: redirect URLs without their query strings."""
    obj = event["data"]["object"]
    hidden = {k: urlsplit(obj[k])._replace(query="").geturl() for k in REDIRECT_FIELDS if isinstance(obj.get(k), str)}
    if not hidden:
        return event
    return {**event, "data": {**event["data"], "object": {**obj, **hidden}}}


class _Duplicate(Exception):
    """This event id is already recorded for the tenant."""


def _apply(conn: sa.Connection, tenant_id: str, order: dict[str, Any], event_type: str,
           obj: dict[str, Any]) -> tuple[bool, bool]:
    order_id = order["order_id"]
    if event_type in SESSION_EVENTS:
        return apply_session(conn, tenant_id, order_id, obj, event_type, order)
    currency = str(obj.get("currency") or "usd")
    if event_type == "payment_intent.payment_failed":
        error = obj.get("last_payment_error") or {}
        record_payment(conn, tenant_id, obj["id"], status="failed", order_id=order_id,
                       amount=from_minor(int(obj.get("amount") or 0), currency), currency=currency,
                       failure_code=str(error.get("decline_code") or error.get("code") or "")[:64] or None)
        return move(conn, tenant_id, order_id, states.PAYMENT_FAILED, states.payment_sources(states.PAYMENT_FAILED)), False
    if event_type == "payment_intent.succeeded":
        record_payment(conn, tenant_id, obj["id"], status="succeeded", order_id=order_id,
                       amount=from_minor(int(obj.get("amount_received") or obj.get("amount") or 0), currency),
                       currency=currency, charge_id=id_of(obj.get("latest_charge")))
        return False, False
    if event_type == "charge.refunded":
        return _refunded(conn, tenant_id, order_id, obj), False
    return False, False


def _refunded(conn: sa.Connection, tenant_id: str, order_id: str, charge: dict[str, Any]) -> bool:
    currency = str(charge.get("currency") or "usd")
    refunded = from_minor(int(charge.get("amount_refunded") or 0), currency)
    changed = states.raise_refunded(conn, tenant_id, order_id, refunded)
    order = states.load(conn, tenant_id, order_id)
    intent = id_of(charge.get("payment_intent"))
    if intent:
        p = payments.c
        current = conn.execute(sa.select(p.amount_refunded).where(p.tenant_id == tenant_id,
                                                                  p.payment_intent_id == intent)).scalar_one_or_none()
        if current is None:  # the refund overtook the payment's own events
            record_payment(conn, tenant_id, intent, status="succeeded", order_id=order_id,
                           amount=from_minor(int(charge.get("amount_captured") or 0), currency), currency=currency,
                           amount_refunded=refunded, charge_id=charge.get("id"))
        elif refunded > current:
            conn.execute(sa.update(payments).where(p.tenant_id == tenant_id, p.payment_intent_id == intent)
                         .values(amount_refunded=refunded, charge_id=charge.get("id"), updated_at=now_utc()))
    if charge.get("refunded") or refunded >= order["amount_total"]:
        changed |= move(conn, tenant_id, order_id, states.REFUNDED, states.payment_sources(states.REFUNDED))
    return changed


class WebhookService:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def receive(self, tenant_id: str, event: dict[str, Any], engine: Any = None) -> Received:
        """Apply the event and record it, in one transaction; a duplicate is rolled back whole.
        ``engine``: where else to run it (``warehouse.db.LoopTransactions``, on the event loop)."""
        event_type, obj = event["type"], event["data"]["object"]
        created = event.get("created")
        try:
            with (engine or self.engine).begin() as conn:
                named = _order_of(conn, tenant_id, event_type, obj) if event_type in HANDLED else None
                # The order row is locked first, always (that is also the check that it exists):
                # events touching payments and orders in either order would otherwise deadlock
                # one another on PostgreSQL.
                order = states.lock(conn, tenant_id, named) if named else None
                order_id = order["order_id"] if order else None
                paid = False
                if event_type not in HANDLED:
                    outcome = "ignored"
                elif order_id is None:
                    outcome = "no_order"
                else:
                    try:
                        moved, paid = _apply(conn, tenant_id, order, event_type, obj)
                        outcome = "applied" if moved else "unchanged"
                    except AmountMismatch:
                        reject_mismatch(conn, tenant_id, order_id, obj)
                        outcome = "mismatch"
                    except ForeignSession as exc:
                        log.warning("event %s ignored for order %s/%s: %s", str(event["id"])[:80], tenant_id,
                                    order_id, exc)
                        outcome = "foreign_session"
                # Recorded last, so one statement carries the outcome; its primary key is the guard:
                # a duplicate delivery (even one racing this) conflicts here and undoes all of the above.
                if not insert_ignore(conn, webhook_events, {
                    "tenant_id": tenant_id, "event_id": event["id"][:255], "type": event_type[:100],
                    "outcome": outcome, "order_id": order_id, "payload": stored_payload(event),
                    "stripe_created": dt.datetime.fromtimestamp(created, dt.timezone.utc)
                    if isinstance(created, int) else None,
                }):
                    raise _Duplicate()
        except _Duplicate:
            return Received("duplicate", None)
        if order_id is not None and event_type in PAYMENT_OUTCOMES:  # counted once committed: the failure-rate alert's
            metrics.PAYMENTS.labels(PAYMENT_OUTCOMES[event_type]).inc()
        return Received(outcome, order_id, paid)

    def fulfil(self, tenant_id: str, order_id: str, session: dict[str, Any]) -> bool:
        """Apply a session just re-fetched from Stripe; True when it made the order paid."""
        metadata = session.get("metadata") or {}
        if metadata.get("order_id") != order_id or metadata.get("tenant_id") not in (None, tenant_id):
            raise ValueError("the session does not belong to this order")
        with self.engine.begin() as conn:
            order = states.lock(conn, tenant_id, order_id)
            try:
                _, paid = apply_session(conn, tenant_id, order_id, session, order=order)
            except AmountMismatch:
                reject_mismatch(conn, tenant_id, order_id, session)
                return False
        return paid
