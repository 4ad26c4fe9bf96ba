"""Stripe events → studio invoice payments, exactly once per event, in any order.

The shop's machinery, reused: the signature is checked on the raw body by the same route
(``resources.stripe.verify_signature``), and each event is recorded once in ``webhook_events``
(primary key tenant + event id, ``order_id`` null) in the same transaction as its effect, so a
re-delivery, even one racing the first, conflicts on that key and changes nothing.

Which events are the studio's: those whose object carries the metadata our Checkout Sessions set
(``invoiceId``, on the session and on its PaymentIntent, hence on the charge), and a refund of a
PaymentIntent the studio has recorded. ``receive`` answers None for any other event, which the
caller then hands to the shop: one endpoint, one secret, one record per event.

- ``checkout.session.completed`` (or ``async_payment_succeeded``) with ``payment_status=paid``:
  a payment (method STRIPE, processor id = the PaymentIntent, reference = the session, amount =
  ``amount_total``); the invoice's session fields cleared when they name this session.
- ``charge.refunded``: refunds up to the charge's cumulative ``amount_refunded`` (one row per
  refund the charge lists, else one row for the difference, its id the charge and that total,
  so the same total seen twice records nothing). A refund that overtakes the payment's own event
  records the payment first, from the charge.

``confirm`` is the success redirect's path to the same state, from the session re-fetched from
Stripe (the browser's word proves nothing), safe to run any number of times beside the webhook.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from commerce.orders import insert_ignore
from commerce.webhooks import stored_payload
from resources.stripe import from_minor, id_of
from studio import ledger
from studio.activity import STRIPE, log_activity
from warehouse.tables.orders import webhook_events
from warehouse.tables.studio import studio_invoices, studio_payments

log = logging.getLogger("storehouse.studio.stripe_events")
PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
CLEARED = {"stripe_checkout_session_id": None, "stripe_checkout_url": None, "stripe_checkout_amount": None,
           "stripe_checkout_expires_at": None}


@dataclass(frozen=True)
class Received:
    outcome: str  # applied, unchanged, duplicate, ignored, no_invoice, foreign_tenant, currency_mismatch
    invoice_id: int | None


def invoice_id_of(obj: dict[str, Any]) -> int | None:
    """The invoice our metadata names (``invoiceId``, a positive integer), else None."""
    value = (obj.get("metadata") or {}).get("invoiceId")
    if isinstance(value, str) and value.isdigit() and 0 < len(value) <= 18:
        return int(value)
    return None


def _by_intent(conn: sa.Connection, tenant_id: str, intent: str | None) -> int | None:
    if not intent:
        return None
    p = studio_payments.c
    return conn.execute(sa.select(p.invoice_id).where(p.tenant_id == tenant_id, p.kind == ledger.PAYMENT,
                                                      p.processor_id == intent)).scalar_one_or_none()


class _Duplicate(Exception):
    pass


class StudioStripeEvents:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def receive(self, tenant_id: str, event: dict[str, Any], engine: Any = None) -> Received | None:
        """Apply and record a studio event in one transaction; None when the event is not the studio's.
        ``engine``: where else to run it (``warehouse.db.LoopTransactions``, on the event loop)."""
        event_type, obj = event["type"], event["data"]["object"]
        created = event.get("created")
        engine = engine or self.engine
        named = invoice_id_of(obj)
        if named is None and event_type == "charge.refunded":  # a charge made without our metadata
            with engine.connect() as conn:
                named = _by_intent(conn, tenant_id, id_of(obj.get("payment_intent")))
        if named is None:
            return None  # the shop's
        try:
            with engine.begin() as conn:
                if (obj.get("metadata") or {}).get("tenant_id") not in (None, tenant_id):
                    outcome, invoice_id = "foreign_tenant", None
                else:
                    # The invoice row is locked first, always: every writer of its money takes it in that order.
                    invoice_id = named if ledger.lock_invoice(conn, tenant_id, named) else None
                    outcome = "no_invoice" if invoice_id is None else self._apply(conn, tenant_id, invoice_id,
                                                                                  event_type, obj)
                if not insert_ignore(conn, webhook_events, {
                    "tenant_id": tenant_id, "event_id": event["id"][:255], "type": event_type[:100],
                    "outcome": outcome, "order_id": None, "payload": stored_payload(event),
                    "stripe_created": dt.datetime.fromtimestamp(created, dt.timezone.utc)
                    if isinstance(created, int) else None,
                }):
                    raise _Duplicate()
        except _Duplicate:
            return Received("duplicate", None)
        return Received(outcome, invoice_id)

    def confirm(self, tenant_id: str, invoice_id: int, session: dict[str, Any]) -> bool:
        """Apply a session just re-fetched from Stripe; True when it is paid (now or before)."""
        metadata = session.get("metadata") or {}
        if invoice_id_of(session) != invoice_id or metadata.get("tenant_id") not in (None, tenant_id):
            raise ValueError("the session does not belong to this invoice")
        with self.engine.begin() as conn:
            if ledger.lock_invoice(conn, tenant_id, invoice_id) is None:
                raise ValueError("no such invoice")
            outcome = self._apply(conn, tenant_id, invoice_id, "checkout.session.completed", session)
        return outcome in ("applied", "unchanged") and session.get("payment_status") == "paid"

    def _apply(self, conn: sa.Connection, tenant_id: str, invoice_id: int, event_type: str,
               obj: dict[str, Any]) -> str:
        try:
            if event_type in PAID_EVENTS:
                return _session_paid(conn, tenant_id, invoice_id, obj)
            if event_type == "charge.refunded":
                return _refunded(conn, tenant_id, invoice_id, obj)
        except ledger.CurrencyMismatch as exc:
            # Never ours to refuse silently: the money moved. Staff see it in the invoice's activity.
            log.error("studio %s invoice %s: %s", tenant_id, invoice_id, exc.detail)
            log_activity(conn, tenant_id, "invoice", invoice_id, "stripe_currency_mismatch", STRIPE,
                         event_type=event_type, object=str(obj.get("id"))[:255], detail=exc.detail)
            return "currency_mismatch"
        return "ignored"


def _session_paid(conn: sa.Connection, tenant_id: str, invoice_id: int, session: dict[str, Any]) -> str:
    if session.get("status") != "complete" or session.get("payment_status") != "paid":
        return "unchanged"  # a bank debit still settling: its async_payment_succeeded follows
    intent, session_id = id_of(session.get("payment_intent")), str(session.get("id") or "")[:255]
    currency = str(session.get("currency") or "")
    recorded = ledger.record(
        conn, tenant_id, invoice_id, kind=ledger.PAYMENT, method=ledger.STRIPE,
        amount=from_minor(int(session.get("amount_total") or 0), currency), currency=currency,
        processor_id=intent or session_id, reference=session_id, actor_kind="stripe", money_moved=True)
    p, i = studio_payments.c, studio_invoices.c
    if not recorded.created and recorded.payment["reference"] is None:
        # the payment was first recorded from its refund's charge, which does not name the session
        conn.execute(sa.update(studio_payments).where(p.id == recorded.payment["id"]).values(reference=session_id))
    cleared = conn.execute(sa.update(studio_invoices).where(
        i.tenant_id == tenant_id, i.id == invoice_id, i.stripe_checkout_session_id == session_id).values(**CLEARED))
    return "applied" if recorded.created or cleared.rowcount else "unchanged"


def _refunded(conn: sa.Connection, tenant_id: str, invoice_id: int, charge: dict[str, Any]) -> str:
    currency = str(charge.get("currency") or "")
    intent = id_of(charge.get("payment_intent")) or str(charge.get("id") or "")
    payment = ledger.record(
        conn, tenant_id, invoice_id, kind=ledger.PAYMENT, method=ledger.STRIPE,
        amount=from_minor(int(charge.get("amount_captured") or charge.get("amount") or 0), currency),
        currency=currency, processor_id=intent, actor_kind="stripe", money_moved=True)
    p = studio_payments.c
    done = conn.execute(sa.select(p.processor_id, p.amount).where(
        p.tenant_id == tenant_id, p.kind == ledger.REFUND, p.reference == intent)).all()
    owed = from_minor(int(charge.get("amount_refunded") or 0), currency) - sum((r.amount for r in done), Decimal(0))
    known = {r.processor_id for r in done}
    changed = payment.created
    listed = (charge.get("refunds") or {}).get("data") if isinstance(charge.get("refunds"), dict) else None
    for refund in sorted(listed or [], key=lambda r: (r.get("created") or 0, str(r.get("id")))):
        if owed <= 0:
            break
        if not isinstance(refund, dict) or refund.get("status") not in ("succeeded", "pending") \
                or refund.get("id") in known:
            continue
        amount = min(from_minor(int(refund.get("amount") or 0), currency), owed)
        if amount > 0:
            changed |= _refund(conn, tenant_id, invoice_id, str(refund["id"])[:255], amount, currency, intent)
            owed -= amount
    if owed > 0:  # the charge lists no refunds (Stripe's default): the difference, named by its total
        total = int(charge.get("amount_refunded") or 0)
        changed |= _refund(conn, tenant_id, invoice_id, f"{charge.get('id')}:refunded:{total}"[:255], owed,
                           currency, intent)
    return "applied" if changed else "unchanged"


def _refund(conn: sa.Connection, tenant_id: str, invoice_id: int, refund_id: str, amount: Decimal, currency: str,
            intent: str) -> bool:
    return ledger.record(conn, tenant_id, invoice_id, kind=ledger.REFUND, method=ledger.STRIPE, amount=amount,
                         currency=currency, processor_id=refund_id, reference=intent, actor_kind="stripe",
                         money_moved=True).created
