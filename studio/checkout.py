"""Pay an invoice's balance through Stripe Checkout, with the seed's session (one line
"Invoice {number}", the client's name, metadata ``invoiceId`` and ``invoiceNumber``, the amount in
minor units), on the studio's own Stripe account (its ``stripe`` connection, as a shop's).

The session is stored on the invoice (id, URL, amount, expiry) and handed out again while it is
still open at Stripe and the balance it charges is still the balance due; otherwise a new one is
made. Stripe is never called inside a transaction: the session is created with an idempotency
key derived from everything that decides it (the invoice, the session it replaces, how many
payments the invoice has, the parameters), so two clicks at once get the very same session from
Stripe, and the write that stores it is a compare-and-set under the invoice's lock. A session
replaced because the balance moved is expired at Stripe, so an old tab cannot pay the old amount.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
import stripe

from resources.stripe import StripeAccount, account_for, to_minor
from studio import ledger
from studio.links import InvoiceLinks
from studio.stripe_events import CLEARED, StudioStripeEvents
from warehouse.tables.studio import studio_clients, studio_invoices, studio_payments
from warehouse.tenants import TenantConnection
from warehouse.types import now_utc

log = logging.getLogger("storehouse.studio.checkout")
# A stored session this close to its expiry is not handed out: the client needs time to pay.
MIN_LIFE = dt.timedelta(minutes=10)
ATTEMPTS = 3  # the balance moved while a session was being made: make one for the new balance


class CheckoutUnavailable(ledger.LedgerError):
    code, status = "payment-provider-unavailable", 502


class NoStripe(ledger.LedgerError):
    code, status = "studio-cannot-take-payments", 409


@dataclass(frozen=True)
class CheckoutLink:
    invoice_id: int
    session_id: str
    url: str
    amount: Decimal
    currency: str
    expires_at: dt.datetime
    reused: bool


def session_params(invoice: dict[str, Any], client_name: str | None, links: InvoiceLinks) -> dict[str, Any]:
    """The seed's ``checkout.sessions.create`` body for the invoice's balance, plus our tenant."""
    tenant_id, invoice_id = invoice["tenant_id"], invoice["id"]
    page = links.page_url(tenant_id, invoice_id)
    metadata = {"invoiceId": str(invoice_id), "invoiceNumber": invoice["document_number"], "tenant_id": tenant_id}
    product: dict[str, Any] = {"name": f"Invoice {invoice['document_number']}"}
    if client_name:
        product["description"] = client_name
    return {
        "mode": "payment",
        "payment_method_types": ["card"],
        "line_items": [{"price_data": {"currency": invoice["currency"].lower(), "product_data": product,
                                       "unit_amount": to_minor(invoice["balance_due"], invoice["currency"])},
                        "quantity": 1}],
        "metadata": metadata,
        # The PaymentIntent (hence its charge, hence charge.refunded) carries the invoice too.
        "payment_intent_data": {"metadata": metadata, "description": f"Invoice {invoice['document_number']}"},
        "success_url": f"{page}&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": page,
    }


def _usable(invoice: dict[str, Any], now: dt.datetime) -> bool:
    return bool(invoice["stripe_checkout_session_id"] and invoice["stripe_checkout_url"]
                and invoice["stripe_checkout_amount"] == invoice["balance_due"]
                and invoice["stripe_checkout_expires_at"] and invoice["stripe_checkout_expires_at"] > now + MIN_LIFE)


class StudioCheckout:
    def __init__(self, engine: sa.Engine, links: InvoiceLinks, events: StudioStripeEvents) -> None:
        self.engine, self.links, self.events = engine, links, events

    def link(self, tenant_id: str, invoice_id: int, connection: TenantConnection | None) -> CheckoutLink:
        """The Checkout Session that pays the invoice's balance now: the stored one, or a new one."""
        if connection is None:
            raise NoStripe("This studio has no Stripe account connected.")
        try:
            account = account_for(connection)
        except ValueError:
            raise NoStripe("This studio's Stripe connection is incomplete.") from None
        for _ in range(ATTEMPTS):
            invoice, client_name, payments = self._read(tenant_id, invoice_id)
            if invoice["status"] not in ledger.PAYABLE or invoice["balance_due"] <= 0:
                raise ledger.NotPayable(f"Invoice {invoice['document_number']} has nothing to pay "
                                        f"({invoice['status']}).")
            previous, state = invoice["stripe_checkout_session_id"], None
            if _usable(invoice, now_utc()):
                state = self._still_open(account, tenant_id, invoice)
                if state == "open":
                    return _link(invoice, reused=True)
                if state == "paid":
                    continue  # applied just now: read the invoice again (it has nothing left to pay, or less)
            params = session_params(invoice, client_name, self.links)
            session = self._create(account, invoice, params, previous, payments)
            stored = self._store(tenant_id, invoice_id, previous, invoice["balance_due"], session)
            if stored is not None:
                if previous and previous != session["id"] and state != "gone":
                    self.expire(account, previous)
                return _link(stored, reused=False)
            if session["id"] != self._read(tenant_id, invoice_id)[0]["stripe_checkout_session_id"]:
                self.expire(account, session["id"])  # the balance moved under us: this one charges the old one
        raise CheckoutUnavailable("The invoice kept changing while its payment link was made; try again.")

    def _read(self, tenant_id: str, invoice_id: int) -> tuple[dict[str, Any], str | None, int]:
        i, c, p = studio_invoices.c, studio_clients.c, studio_payments.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(studio_invoices, c.name.label("client_name"))
                               .join(studio_clients, sa.and_(c.id == i.client_id, c.tenant_id == i.tenant_id))
                               .where(i.tenant_id == tenant_id, i.id == invoice_id)).mappings().one_or_none()
            if row is None:
                raise ledger.InvoiceNotFound("No such invoice.")
            payments = conn.execute(sa.select(sa.func.count()).select_from(studio_payments).where(
                p.tenant_id == tenant_id, p.invoice_id == invoice_id)).scalar_one()
        invoice = dict(row)
        return invoice, invoice.pop("client_name"), payments

    def _still_open(self, account: StripeAccount, tenant_id: str, invoice: dict[str, Any]) -> str:
        """``open``, ``paid`` (and applied here) or ``gone``; Stripe unreachable: trust the stored one."""
        try:
            session = account.retrieve_session(invoice["stripe_checkout_session_id"])
        except stripe.StripeError as exc:
            log.warning("checkout session of invoice %s/%s not checked: %s", tenant_id, invoice["id"],
                        type(exc).__name__)
            return "open"
        if session.get("status") == "open":
            return "open"
        if session.get("status") == "complete" and session.get("payment_status") == "paid":
            self.events.confirm(tenant_id, invoice["id"], session)  # its webhook has not come yet
            return "paid"
        return "gone"

    @staticmethod
    def _create(account: StripeAccount, invoice: dict[str, Any], params: dict[str, Any], previous: str | None,
                payments: int) -> dict[str, Any]:
        decided_by = orjson.dumps([invoice["tenant_id"], invoice["id"], previous, payments, params],
                                  option=orjson.OPT_SORT_KEYS)
        key = "studio-checkout:" + hashlib.sha256(decided_by).hexdigest()
        try:
            return account.create_checkout_session(params, key)
        except stripe.InvalidRequestError as exc:
            raise ledger.LedgerError(f"Stripe refused this payment: {exc.user_message or exc.code}") from None
        except stripe.StripeError as exc:
            log.warning("checkout session of invoice %s/%s not created: %s", invoice["tenant_id"], invoice["id"],
                        type(exc).__name__)
            raise CheckoutUnavailable("Stripe could not be reached; try again in a moment.") from None

    def _store(self, tenant_id: str, invoice_id: int, previous: str | None, balance: Decimal,
               session: dict[str, Any]) -> dict[str, Any] | None:
        """Store the session if the invoice still has the session and balance it was made for."""
        with self.engine.begin() as conn:
            invoice = ledger.lock_invoice(conn, tenant_id, invoice_id)
            if invoice is None or invoice["balance_due"] != balance:
                return None
            if invoice["stripe_checkout_session_id"] == session["id"]:
                return invoice  # a concurrent click stored this very session
            if invoice["stripe_checkout_session_id"] != previous:
                return None
            values = {"stripe_checkout_session_id": session["id"], "stripe_checkout_url": session.get("url"),
                      "stripe_checkout_amount": balance, "updated_at": now_utc(),
                      "stripe_checkout_expires_at": dt.datetime.fromtimestamp(int(session["expires_at"]),
                                                                              dt.timezone.utc)}
            conn.execute(sa.update(studio_invoices).where(studio_invoices.c.tenant_id == tenant_id,
                                                          studio_invoices.c.id == invoice_id).values(**values))
            return {**invoice, **values}

    def retire(self, tenant_id: str, invoice_id: int, connection: TenantConnection | None) -> bool:
        """After the balance moved outside Stripe (a manual payment): expire the stored session,
        which charges the old balance, and forget it. True when there was one to retire."""
        i = studio_invoices.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(i.stripe_checkout_session_id, i.stripe_checkout_amount, i.balance_due)
                               .where(i.tenant_id == tenant_id, i.id == invoice_id)).one_or_none()
        if row is None or row.stripe_checkout_session_id is None or row.stripe_checkout_amount == row.balance_due:
            return False
        if connection is not None:
            try:
                self.expire(account_for(connection), row.stripe_checkout_session_id)
            except ValueError:
                pass  # an incomplete connection made no session we could expire
        with self.engine.begin() as conn:
            conn.execute(sa.update(studio_invoices).where(
                i.tenant_id == tenant_id, i.id == invoice_id,
                i.stripe_checkout_session_id == row.stripe_checkout_session_id).values(**CLEARED))
        return True

    @staticmethod
    def expire(account: StripeAccount, session_id: str) -> None:
        """Best effort: a session that no longer matches the balance should not take money."""
        try:
            account.client.v1.checkout.sessions.expire(session_id)
        except stripe.StripeError as exc:  # already complete or expired, or Stripe away: nothing to undo
            log.info("checkout session %s not expired: %s", session_id[:80], type(exc).__name__)


def _link(invoice: dict[str, Any], *, reused: bool) -> CheckoutLink:
    return CheckoutLink(invoice["id"], invoice["stripe_checkout_session_id"], invoice["stripe_checkout_url"],
                        invoice["stripe_checkout_amount"], invoice["currency"],
                        invoice["stripe_checkout_expires_at"], reused)
