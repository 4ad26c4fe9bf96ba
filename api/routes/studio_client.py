"""The studio's client portal: a client signed in with the ``customer`` role (``studio.portal``)
reads their own quotes and invoices, accepts or declines their quotes, and writes to the studio
on them. Their grant's ``customer_id`` is their ``studio_clients.id``: every query is scoped to it
and to the tenant, drafts are never shown, and another client's document is a 404, the same as
one that does not exist. A caller holding ``studio.portal`` without being a client of this studio
(a super admin) sees an empty portal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import EngineDep, STUDIO_ONLY
from api.problems import problem_responses
from api.staff import STAFF_RESPONSES, ReadConn, require
from api.studio_schemas import InvoicePage, InvoiceView, MessageIn, MessageView, QuotePage, QuoteView
from people.auth import Access
from studio import invoices, messages, quotes
from studio.activity import Actor
from studio.db import writing
from studio.documents import INVOICE, QUOTE, list_documents

router = APIRouter(prefix="/studios/{tenant}/portal", tags=["studio: client portal"], dependencies=STUDIO_ONLY)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
Portal = Annotated[Access, Depends(require("studio.portal"))]
WRITES = {**STAFF_RESPONSES, **problem_responses((409, "Not in a state that allows this"))}
NOBODY = 0  # no client has id 0: a caller who is no client of this studio matches nothing


def client_of(access: Access) -> int:
    """The caller's client id in this studio (``NOBODY`` when they are not one)."""
    found = access.customer_id
    if found is not None and found.isascii() and found.isdigit() and 0 < int(found) < 2**63:
        return int(found)
    return NOBODY


def as_client(access: Access) -> Actor:
    return Actor("client", access.principal.user_id)


@router.get("/quotes", response_model=QuotePage, responses=STAFF_RESPONSES)
def my_quotes(access: Portal, conn: ReadConn, limit: Limit = 50, before: Cursor = None) -> QuotePage:
    """My quotes, newest first: those the studio sent me, and the drafts I made by a quick order
    (drafts the studio makes are its own until sent)."""
    found = list_documents(conn, QUOTE, access.tenant_id, for_client=client_of(access), limit=limit, before=before)
    return QuotePage(items=found, next_before=found[-1]["id"] if len(found) == limit else None)


@router.get("/quotes/{quote_id}", response_model=QuoteView, responses=STAFF_RESPONSES)
def my_quote(quote_id: Id, access: Portal, conn: ReadConn) -> dict:
    return quotes.get_quote(conn, access.tenant_id, quote_id, client_of(access))


@router.post("/quotes/{quote_id}/accept", response_model=QuoteView, responses=WRITES)
def accept(quote_id: Id, access: Portal, engine: EngineDep) -> dict:
    """Accept a sent quote before its valid-until date (accepting again changes nothing)."""
    with writing(engine) as conn:
        return quotes.accept_quote(conn, access.tenant_id, quote_id, as_client(access), client_of(access))


@router.post("/quotes/{quote_id}/decline", response_model=QuoteView, responses=WRITES)
def decline(quote_id: Id, access: Portal, engine: EngineDep) -> dict:
    with writing(engine) as conn:
        return quotes.decline_quote(conn, access.tenant_id, quote_id, as_client(access), client_of(access))


@router.get("/invoices", response_model=InvoicePage, responses=STAFF_RESPONSES)
def my_invoices(access: Portal, conn: ReadConn, limit: Limit = 50, before: Cursor = None) -> InvoicePage:
    """My invoices, newest first, with what is still due."""
    found = list_documents(conn, INVOICE, access.tenant_id, for_client=client_of(access), limit=limit, before=before)
    return InvoicePage(items=found, next_before=found[-1]["id"] if len(found) == limit else None)


@router.get("/invoices/{invoice_id}", response_model=InvoiceView, responses=STAFF_RESPONSES)
def my_invoice(invoice_id: Id, access: Portal, conn: ReadConn) -> dict:
    return invoices.get_invoice(conn, access.tenant_id, invoice_id, client_of(access))


Kind = Annotated[str, Path(pattern="^(quotes|invoices)$", description="quotes or invoices")]


@router.get("/{kind}/{document_id}/messages", response_model=list[MessageView], responses=STAFF_RESPONSES)
def my_messages(kind: Kind, document_id: Id, access: Portal, conn: ReadConn) -> list[dict]:
    """The thread with the studio on my quote or invoice, oldest first."""
    return messages.messages_of(conn, access.tenant_id, kind[:-1], document_id, client_of(access))


@router.post("/{kind}/{document_id}/messages", response_model=MessageView, status_code=201,
             responses=STAFF_RESPONSES)
def write_message(kind: Kind, document_id: Id, body: MessageIn, access: Portal, engine: EngineDep) -> dict:
    with writing(engine) as conn:
        return messages.post_message(conn, access.tenant_id, kind[:-1], document_id, as_client(access), body.body,
                                     client_of(access))
