"""Quotes: draft → sent → accepted / declined (``expired`` once ``valid_until`` has passed: see
``studio.documents``); an accepted quote converts to an invoice, its lines copied and each linked
to the other (``studio_quotes.invoice_id``, ``studio_invoices.quote_id``).

Each function runs inside the caller's write transaction (``studio.db.writing``) and returns the
quote as it is now (``studio.documents.read``), but ``create_quote``, which returns its id."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from studio.activity import Actor, log_activity
from studio.business import get_business
from studio.documents import INVOICE, QUOTE, create_document, effective_status, items_of, load, read, today, \
    transition, update_draft
from studio.errors import StudioError, bad_state
from warehouse.types import now_utc


def create_quote(conn: sa.Connection, tenant_id: str, client_id: int, items: list[dict[str, Any]], actor: Actor,
                 *, notes: str | None = None, valid_until: dt.date | None = None,
                 once: dict[str, str] | None = None) -> int:
    """A draft with the studio's next quote number; its id. Read it back (``get_quote``) after the
    commit: creations of quotes wait for this transaction's end (``studio.numbers``)."""
    return create_document(conn, QUOTE, tenant_id, client_id, items, actor, notes=notes, valid_until=valid_until,
                           once=once)


def get_quote(conn: sa.Connection, tenant_id: str, quote_id: int, client_id: int | None = None) -> dict[str, Any]:
    """The quote with its lines; ``client_id``: only if it is that client's and not a draft."""
    return read(conn, QUOTE, tenant_id, quote_id, client_id)


def update_quote(conn: sa.Connection, tenant_id: str, quote_id: int, actor: Actor,
                 items: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """Change a draft (``client_id``, ``notes``, ``valid_until``, lines)."""
    update_draft(conn, QUOTE, tenant_id, quote_id, actor, items, **fields)
    return read(conn, QUOTE, tenant_id, quote_id)


def send_quote(conn: sa.Connection, tenant_id: str, quote_id: int, actor: Actor) -> dict[str, Any]:
    """Mark the quote sent (a draft: dated today, valid for the studio's ``quote_valid_days``
    unless it names its own date; a sent quote: sent again). Emailing it is ``studio``'s PDF side."""
    row = load(conn, QUOTE, tenant_id, quote_id, lock=True)
    shown = effective_status(QUOTE, row)
    if shown not in ("draft", "sent"):
        raise bad_state("quote", shown, "sent", ("draft", "sent"))
    if row["total"] <= 0:  # as an invoice for nothing cannot be issued: its accepted quote's invoice could not be
        raise StudioError(409, "quote-empty", "A quote for nothing cannot be sent: add a priced line first.")
    values: dict[str, Any] = {"status": "sent", "sent_at": now_utc()}
    if row["status"] == "draft":
        issued = row["issue_date"] or today()
        values["issue_date"] = issued
        if row["valid_until"] is None:
            values["valid_until"] = issued + dt.timedelta(days=get_business(conn, tenant_id)["quote_valid_days"])
        elif row["valid_until"] < today():
            raise StudioError(409, "quote-expired", "This quote's valid-until date has passed: change it first.")
    transition(conn, QUOTE, tenant_id, quote_id, actor, "sent", **values)
    return read(conn, QUOTE, tenant_id, quote_id)


def _answer(conn: sa.Connection, tenant_id: str, quote_id: int, actor: Actor, client_id: int | None,
            status: str, verb: str) -> dict[str, Any]:
    row = load(conn, QUOTE, tenant_id, quote_id, client_id=client_id, lock=True)
    shown = effective_status(QUOTE, row)
    if shown == status:  # the same answer again: nothing changes
        return read(conn, QUOTE, tenant_id, quote_id)
    if shown == "expired":
        raise StudioError(409, "quote-expired", f"This quote expired on {row['valid_until']}: it can no longer be "
                          f"{verb}.", status_now=shown)
    if shown != "sent":
        raise bad_state("quote", shown, verb, ("sent",))
    transition(conn, QUOTE, tenant_id, quote_id, actor, status, status=status,
               **{f"{status}_at": now_utc()})
    return read(conn, QUOTE, tenant_id, quote_id)


def accept_quote(conn: sa.Connection, tenant_id: str, quote_id: int, actor: Actor,
                 client_id: int | None = None) -> dict[str, Any]:
    """The client (or staff on their word) accepts a sent quote before it expires (again: no change)."""
    return _answer(conn, tenant_id, quote_id, actor, client_id, "accepted", "accepted")


def decline_quote(conn: sa.Connection, tenant_id: str, quote_id: int, actor: Actor,
                  client_id: int | None = None) -> dict[str, Any]:
    return _answer(conn, tenant_id, quote_id, actor, client_id, "declined", "declined")


def convert_quote(conn: sa.Connection, tenant_id: str, quote_id: int, actor: Actor) -> tuple[dict[str, Any], bool]:
    """The accepted quote's invoice (a draft, its lines copied, linked both ways), and whether it
    was made now: converting again returns the same invoice."""
    from studio.invoices import get_invoice

    row = load(conn, QUOTE, tenant_id, quote_id, lock=True)
    if row["invoice_id"] is not None:
        return get_invoice(conn, tenant_id, row["invoice_id"]), False
    shown = effective_status(QUOTE, row)
    if shown != "accepted":
        raise bad_state("quote", shown, "converted", ("accepted",))
    items = [{k: i[k] for k in ("description", "quantity", "unit_price", "discount_percent", "tax_rate")}
             for i in items_of(conn, QUOTE, tenant_id, quote_id)]
    invoice_id = create_document(conn, INVOICE, tenant_id, row["client_id"], items, actor, quote_id=quote_id,
                                 notes=row["notes"])
    transition(conn, QUOTE, tenant_id, quote_id, actor, "converted", invoice_id=invoice_id)
    log_activity(conn, tenant_id, "invoice", invoice_id, "converted_from_quote", actor, quote_id=quote_id,
                 quote_number=row["document_number"])
    return get_invoice(conn, tenant_id, invoice_id), True
