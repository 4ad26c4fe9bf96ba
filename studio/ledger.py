"""The one place money on a studio invoice changes: payments and refunds, and the balance they leave.

Every change locks the invoice row first (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the
single writer, taken by a no-op write), inserts one ``studio_payments`` row, then recomputes
``amount_paid``, ``amount_refunded`` and ``balance_due`` (total − paid + refunded) from *all* of the
invoice's rows, never by adding to the stored figures: two racing writers serialise on the lock,
and a figure once wrong is put right by the next change. The status follows the money
(``partially_paid``, ``paid`` with ``paid_at``, and back again after a refund).

A Stripe row is idempotent by (tenant, kind, processor id): the PaymentIntent of a payment, the
refund of a refund. The same PaymentIntent recorded again (a webhook re-delivered, the success
redirect racing the webhook) returns the first row and changes nothing; so does a manual payment
recorded again with the same method and reference. Staff's manual payments (bank transfer, cash,
…) may never exceed the balance; Stripe's money has already moved, so it
is recorded whatever the balance (an overpayment leaves a negative balance: credit owed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from studio.activity import Actor, log_activity
from warehouse.tables.studio import studio_invoices, studio_payments
from warehouse.types import now_utc

PAYMENT, REFUND = "payment", "refund"
STRIPE = "STRIPE"
MANUAL_METHODS = ("BANK_TRANSFER", "CASH", "CARD", "OTHER")
METHODS = (STRIPE, *MANUAL_METHODS)
# Statuses an invoice takes a payment in; a draft is not yet the client's debt, a void one no longer is.
PAYABLE = ("issued", "partially_paid", "overdue")
UNMOVED = ("draft", "void")  # money recorded on these leaves their status alone
CENT = Decimal("0.01")


class LedgerError(Exception):
    """A payment refused; ``code`` names why (the API's problem type), the message says it plainly."""

    code = "payment-refused"
    status = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvoiceNotFound(LedgerError):
    code, status = "invoice-not-found", 404


class NotPayable(LedgerError):
    code, status = "invoice-not-payable", 409


class Overpayment(LedgerError):
    code, status = "payment-exceeds-balance", 422


class CurrencyMismatch(LedgerError):
    code, status = "currency-mismatch", 422


class InvalidAmount(LedgerError):
    code, status = "invalid-amount", 422


class ReferenceReused(LedgerError):
    """A manual payment's method and reference name one already recorded, but for another amount:
    not a retry of it (that would be answered with it), so neither recorded nor silently dropped."""
    code, status = "payment-reference-reused", 409


@dataclass(frozen=True)
class Recorded:
    payment: dict[str, Any]
    invoice: dict[str, Any]  # after the change
    created: bool  # False: this processor id was already recorded, nothing changed


def money(amount: Decimal, currency: str) -> str:
    return f"{amount.quantize(CENT)} {currency}"


def lock_invoice(conn: sa.Connection, tenant_id: str, invoice_id: int) -> dict[str, Any] | None:
    """Hold the invoice's row for the rest of the transaction, and read it; None when there is none."""
    where = (studio_invoices.c.tenant_id == tenant_id, studio_invoices.c.id == invoice_id)
    if conn.dialect.name == "postgresql":
        row = conn.execute(sa.select(studio_invoices).where(*where).with_for_update()).mappings().one_or_none()
        return dict(row) if row else None
    if conn.execute(sa.update(studio_invoices).where(*where).values(status=studio_invoices.c.status)).rowcount != 1:
        return None
    return dict(conn.execute(sa.select(studio_invoices).where(*where)).mappings().one())


def find(conn: sa.Connection, tenant_id: str, kind: str, processor_id: str) -> dict[str, Any] | None:
    p = studio_payments.c
    row = conn.execute(sa.select(studio_payments).where(p.tenant_id == tenant_id, p.kind == kind,
                                                        p.processor_id == processor_id)).mappings().one_or_none()
    return dict(row) if row else None


def payments_of(conn: sa.Connection, tenant_id: str, invoice_id: int) -> list[dict[str, Any]]:
    p = studio_payments.c
    return [dict(r) for r in conn.execute(sa.select(studio_payments).where(
        p.tenant_id == tenant_id, p.invoice_id == invoice_id).order_by(p.received_at, p.id)).mappings()]


def _check_amount(amount: Decimal) -> Decimal:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidAmount("The amount must be a decimal number.")
    if amount <= 0:
        raise InvalidAmount("The amount must be more than zero.")
    if amount != amount.quantize(CENT):
        raise InvalidAmount("The amount has more than two decimal places.")
    return amount


def record(conn: sa.Connection, tenant_id: str, invoice_id: int, *, kind: str, method: str, amount: Decimal,
           currency: str, actor_kind: str, processor_id: str | None = None, reference: str | None = None,
           note: str | None = None, received_at: dt.datetime | None = None, actor_id: str | None = None,
           money_moved: bool = False) -> Recorded:
    """Record a payment or refund on the invoice and recompute its balance and status.

    ``money_moved``: the money has already changed hands (Stripe), so neither the balance nor the
    invoice's status may refuse it. Otherwise a payment must fit the balance of a payable invoice
    and a refund what was paid. Runs in the caller's transaction; locks the invoice first.
    """
    if kind not in (PAYMENT, REFUND) or method not in METHODS:
        raise ValueError(f"unknown kind {kind!r} or method {method!r}")
    invoice = lock_invoice(conn, tenant_id, invoice_id)
    if invoice is None:
        raise InvoiceNotFound("No such invoice.")
    if processor_id is not None:
        existing = find(conn, tenant_id, kind, processor_id)
        if existing is not None:
            if existing["invoice_id"] != invoice_id:
                raise LedgerError(f"This {kind} is already recorded on another invoice.")
            return Recorded(existing, invoice, created=False)
    elif reference and not money_moved:
        # A manual payment is known by its reference (the bank's, a receipt number): recorded once.
        p = studio_payments.c
        existing = conn.execute(sa.select(studio_payments).where(
            p.tenant_id == tenant_id, p.invoice_id == invoice_id, p.kind == kind, p.method == method,
            p.reference == reference)).mappings().first()
        if existing is not None:
            if Decimal(amount) != existing["amount"]:
                raise ReferenceReused(
                    f"{kind.capitalize()} {existing['id']} on this invoice has method {method} and reference "
                    f"{reference!r} but {money(existing['amount'], existing['currency'])}, not "
                    f"{money(Decimal(amount), existing['currency'])}; give this one its own reference.")
            return Recorded(dict(existing), invoice, created=False)
    amount = _check_amount(amount)
    currency = currency.upper()
    if currency != invoice["currency"]:
        raise CurrencyMismatch(f"The invoice is in {invoice['currency']}; a {kind} in {currency} cannot be "
                               f"recorded on it.")
    if not money_moved:
        if kind == PAYMENT and invoice["status"] not in PAYABLE:
            raise NotPayable(f"Invoice {invoice['document_number']} is {invoice['status']}: it takes no payment.")
        if kind == PAYMENT and amount > invoice["balance_due"]:
            raise Overpayment(f"A payment of {money(amount, currency)} is more than the balance due of "
                              f"{money(invoice['balance_due'], currency)} on invoice {invoice['document_number']}.")
        if kind == REFUND and amount > invoice["amount_paid"] - invoice["amount_refunded"]:
            raise Overpayment(f"A refund of {money(amount, currency)} is more than the "
                              f"{money(invoice['amount_paid'] - invoice['amount_refunded'], currency)} paid.")
    row = {"tenant_id": tenant_id, "invoice_id": invoice_id, "kind": kind, "method": method, "amount": amount,
           "currency": currency, "processor_id": processor_id, "reference": reference, "note": note,
           "received_at": received_at or now_utc(), "recorded_by": actor_id}
    payment_id = _insert(conn, row)
    if payment_id is None:  # recorded by a racer that did not go through this invoice's lock
        return Recorded(find(conn, tenant_id, kind, processor_id), invoice, created=False)
    after = recompute(conn, tenant_id, invoice)
    detail = {"payment_id": payment_id, "method": method, "amount": str(amount), "currency": currency,
              "reference": reference, "balance_due": str(after["balance_due"])}
    actor = Actor(actor_kind, actor_id)
    log_activity(conn, tenant_id, "invoice", invoice_id, f"{kind}_recorded", actor, **detail)
    if after["status"] != invoice["status"]:
        log_activity(conn, tenant_id, "invoice", invoice_id, after["status"], actor,
                     **{"from": invoice["status"]}, payment_id=payment_id)
    if after["balance_due"] < 0:
        log_activity(conn, tenant_id, "invoice", invoice_id, "overpaid", actor, credit=str(-after["balance_due"]),
                     payment_id=payment_id)
    return Recorded({**row, "id": payment_id}, after, created=True)


def _insert(conn: sa.Connection, row: dict[str, Any]) -> int | None:
    """Insert; with a processor id, ``ON CONFLICT DO NOTHING`` on (tenant, kind, processor id)."""
    if row["processor_id"] is None:
        return conn.execute(sa.insert(studio_payments).values(**row).returning(studio_payments.c.id)).scalar_one()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (dialect.insert(studio_payments).values(**row)
            .on_conflict_do_nothing(index_elements=["tenant_id", "kind", "processor_id"])
            .returning(studio_payments.c.id))
    return conn.execute(stmt).scalar_one_or_none()


def status_for(invoice: dict[str, Any], paid: Decimal, refunded: Decimal, today: dt.date) -> str:
    """What the money says the status is (a draft or void invoice keeps its own)."""
    if invoice["status"] in UNMOVED:
        return invoice["status"]
    if invoice["total"] - paid + refunded <= 0 and paid > 0:
        return "paid"
    if paid - refunded > 0:
        return "partially_paid"
    due = invoice.get("due_date")
    return "overdue" if due is not None and due < today else "issued"


def recompute(conn: sa.Connection, tenant_id: str, invoice: dict[str, Any]) -> dict[str, Any]:
    """Set the invoice's paid, refunded, balance and status from its rows (the row is already locked)."""
    rows = payments_of(conn, tenant_id, invoice["id"])
    # Summed here, as Decimals: SQLite's SUM of NUMERIC is a double.
    paid = sum((r["amount"] for r in rows if r["kind"] == PAYMENT), Decimal(0))
    refunded = sum((r["amount"] for r in rows if r["kind"] == REFUND), Decimal(0))
    now = now_utc()
    status = status_for(invoice, paid, refunded, now.date())
    values: dict[str, Any] = {"amount_paid": paid, "amount_refunded": refunded,
                              "balance_due": invoice["total"] - paid + refunded, "status": status,
                              # the PDF prints the balance: another revision, so it is never served stale
                              "revision": invoice["revision"] + 1, "updated_at": now}
    if status == "paid":
        values["paid_at"] = invoice["paid_at"] or now
    elif invoice["status"] == "paid":
        values["paid_at"] = None  # a refund reopened it
    conn.execute(sa.update(studio_invoices).where(studio_invoices.c.tenant_id == tenant_id,
                                                  studio_invoices.c.id == invoice["id"]).values(**values))
    return {**invoice, **values}
