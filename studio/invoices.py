"""Invoices: draft → issued → partially_paid → paid, ``overdue`` once the due date has passed
unpaid (see ``studio.documents``), and void (from draft or issued; an invoice that has taken money
is not voided: refund it first).

Payments move an invoice between issued, partially_paid and paid: that is ``studio.ledger``'s
(Stripe and manual payments, refunds, the balance). Here: create, edit drafts, issue, mark sent,
void. Each function runs inside the caller's write transaction (``studio.db.writing``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from studio.activity import Actor
from studio.business import get_business
from studio.documents import INVOICE, create_document, effective_status, load, read, today, transition, update_draft
from studio.errors import StudioError, bad_state
from studio.money import cents
from warehouse.types import now_utc


def create_invoice(conn: sa.Connection, tenant_id: str, client_id: int, items: list[dict[str, Any]], actor: Actor,
                   *, notes: str | None = None, due_date: dt.date | None = None,
                 once: dict[str, str] | None = None) -> int:
    """A draft with the studio's next invoice number; its id. Read it back (``get_invoice``) after
    the commit: creations of invoices wait for this transaction's end (``studio.numbers``)."""
    return create_document(conn, INVOICE, tenant_id, client_id, items, actor, notes=notes, due_date=due_date,
                           once=once)


def get_invoice(conn: sa.Connection, tenant_id: str, invoice_id: int, client_id: int | None = None) -> dict[str, Any]:
    """The invoice with its lines and its status as shown; ``client_id``: only if it is that
    client's and not a draft. 404 (``StudioError``) otherwise."""
    return read(conn, INVOICE, tenant_id, invoice_id, client_id)


def update_invoice(conn: sa.Connection, tenant_id: str, invoice_id: int, actor: Actor,
                   items: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """Change a draft (``client_id``, ``notes``, ``due_date``, lines)."""
    update_draft(conn, INVOICE, tenant_id, invoice_id, actor, items, **fields)
    return read(conn, INVOICE, tenant_id, invoice_id)


def issue_invoice(conn: sa.Connection, tenant_id: str, invoice_id: int, actor: Actor) -> dict[str, Any]:
    """Draft → issued: dated today, due after the studio's payment terms unless it names its own
    due date, the whole total due. Issuing an issued invoice again changes nothing."""
    row = load(conn, INVOICE, tenant_id, invoice_id, lock=True)
    if row["status"] != "draft":
        if row["status"] in ("issued", "partially_paid", "paid"):
            return read(conn, INVOICE, tenant_id, invoice_id)
        raise bad_state("invoice", effective_status(INVOICE, row), "issued", ("draft",))
    if row["total"] <= 0:
        raise StudioError(409, "invoice-empty", "An invoice for nothing cannot be issued: add a priced line first.")
    issued = row["issue_date"] or today()
    due = row["due_date"] or issued + dt.timedelta(days=get_business(conn, tenant_id)["payment_terms_days"])
    transition(conn, INVOICE, tenant_id, invoice_id, actor, "issued", status="issued", issue_date=issued,
               due_date=due, issued_at=now_utc(),
               balance_due=row["total"] - row["amount_paid"] + row["amount_refunded"])
    return read(conn, INVOICE, tenant_id, invoice_id)


def send_invoice(conn: sa.Connection, tenant_id: str, invoice_id: int, actor: Actor) -> dict[str, Any]:
    """Mark the invoice sent (a draft is issued first). Emailing it is the PDF side's."""
    row = load(conn, INVOICE, tenant_id, invoice_id, lock=True)
    if row["status"] in ("paid", "void"):
        raise bad_state("invoice", row["status"], "sent", ("draft", "issued", "partially_paid", "overdue"))
    if row["status"] == "draft":
        issue_invoice(conn, tenant_id, invoice_id, actor)
    transition(conn, INVOICE, tenant_id, invoice_id, actor, "sent", sent_at=now_utc())
    return read(conn, INVOICE, tenant_id, invoice_id)


def void_invoice(conn: sa.Connection, tenant_id: str, invoice_id: int, actor: Actor,
                 reason: str | None = None) -> dict[str, Any]:
    """Draft or issued (overdue too) → void; voiding a void invoice changes nothing. One that has
    taken money (partly or fully paid, not all refunded) is refused as such, whatever its status."""
    row = load(conn, INVOICE, tenant_id, invoice_id, lock=True)
    if row["status"] == "void":
        return read(conn, INVOICE, tenant_id, invoice_id)
    held = row["amount_paid"] - row["amount_refunded"]
    if held > 0:
        raise StudioError(409, "invoice-has-payments",
                          f"Invoice {row['document_number']} has taken {cents(held)} {row['currency']} in payments: "
                          f"an invoice that has taken money cannot be voided.",
                          status_now=effective_status(INVOICE, row), amount_paid=str(cents(held)))
    if row["status"] not in ("draft", "issued"):
        raise bad_state("invoice", effective_status(INVOICE, row), "voided", ("draft", "issued", "overdue"))
    transition(conn, INVOICE, tenant_id, invoice_id, actor, "voided", status="void", voided_at=now_utc(),
               balance_due=0, detail={"reason": reason} if reason else None)
    return read(conn, INVOICE, tenant_id, invoice_id)
