"""The studio's staff routes (seed 002): business details, clients, quotes and invoices: create,
read, list, edit drafts, send, accept or decline on the client's word, convert, issue, void;
messages with the client, and each document's activity log.

Reads need ``studio.view``, changes ``studio.manage``, on the ``{tenant}`` in the path; every query
is scoped to that tenant. ``POST …/send`` marks the document sent and logs it, for a document
delivered by other means; ``POST …/email`` (``api.routes.studio_pdfs``) emails its PDF and marks it
sent, running the same ``send_quote``/``send_invoice`` first for a draft."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from api.deps import EngineDep, STUDIO_ONLY
from api.problems import problem_responses
from api.staff import STAFF_RESPONSES, ReadConn, require
from api.studio_schemas import (
    ActivityView, BusinessIn, BusinessView, ClientIn, ClientPage, ClientPatch, ClientView, Converted, InvoiceIn,
    InvoicePage, InvoicePatch, InvoiceStatus, InvoiceView, MessageIn, MessageView, QuoteIn, QuotePage, QuotePatch,
    QuoteStatus, QuoteView, VoidIn,
)
from people.auth import Access
from studio import activity, business, clients, invoices, messages, quotes
from studio.activity import Actor
from studio.db import writing
from studio.documents import INVOICE, KINDS, QUOTE, list_documents, load
from studio.idempotency import Created, create_once
from warehouse.tables.studio import studio_clients, studio_invoices, studio_quotes

router = APIRouter(prefix="/studios/{tenant}", tags=["studio: staff"])
# Everything but the business details (whose PUT makes a tenant a studio): for studios only.
documents = APIRouter(dependencies=STUDIO_ONLY)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
WRITES = {**STAFF_RESPONSES, **problem_responses((409, "Not in a state that allows this"))}
REPLAY = {200: {"description": "A replay: this Idempotency-Key already made one with this body; that one, "
                             "unchanged (`Idempotent-Replayed: true`)."}}
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="the same key with the same body returns what the first request made (200, "
                "`Idempotent-Replayed: true`) instead of making a second one; with another body: 422")]


Viewer = Annotated[Access, Depends(require("studio.view"))]
Manager = Annotated[Access, Depends(require("studio.manage"))]


def _replayed(response: Response, made: Created) -> Created:
    if not made.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return made


def staff(access: Access) -> Actor:
    return Actor("staff", access.principal.user_id)


# -- business ------------------------------------------------------------------------------

@router.get("/business", response_model=BusinessView, responses=STAFF_RESPONSES)
def get_business(access: Viewer, conn: ReadConn) -> dict:
    """What the studio's documents print (name, address, ABN, bank details) and their defaults."""
    return business.get_business(conn, access.tenant_id)


@router.put("/business", response_model=BusinessView, responses=STAFF_RESPONSES)
def put_business(body: BusinessIn, access: Manager, engine: EngineDep) -> dict:
    """Set the fields given; the others keep their value."""
    with writing(engine) as conn:
        return business.save_business(conn, access.tenant_id, staff(access), **body.model_dump(exclude_unset=True))


# -- clients -------------------------------------------------------------------------------

@documents.get("/clients", response_model=ClientPage, responses=STAFF_RESPONSES)
def list_clients(access: Viewer, conn: ReadConn, limit: Limit = 50, after: Cursor = None,
                 search: Annotated[str | None, Query(max_length=100)] = None,
                 include_archived: bool = False) -> ClientPage:
    found = clients.list_clients(conn, access.tenant_id, include_archived=include_archived, search=search,
                                 limit=limit, after=after)
    return ClientPage(items=found, next_after=found[-1]["id"] if len(found) == limit else None)


@documents.post("/clients", response_model=ClientView, status_code=201, responses={**STAFF_RESPONSES, **REPLAY})
def create_client(body: ClientIn, access: Manager, engine: EngineDep, response: Response,
                  idempotency_key: IdempotencyKey = None) -> dict:
    fields = body.model_dump(exclude_unset=True)

    def create(once: dict) -> int:
        with writing(engine) as conn:
            return clients.create_client(conn, access.tenant_id, staff(access), once=once, **fields)["id"]

    made = _replayed(response, create_once(engine, studio_clients, access.tenant_id, idempotency_key, fields, create))
    with engine.connect() as conn:
        return clients.get_client(conn, access.tenant_id, made.id)


@documents.get("/clients/{client_id}", response_model=ClientView, responses=STAFF_RESPONSES)
def get_client(client_id: Id, access: Viewer, conn: ReadConn) -> dict:
    return clients.get_client(conn, access.tenant_id, client_id)


@documents.patch("/clients/{client_id}", response_model=ClientView, responses=STAFF_RESPONSES)
def update_client(client_id: Id, body: ClientPatch, access: Manager, engine: EngineDep) -> dict:
    with writing(engine) as conn:
        return clients.update_client(conn, access.tenant_id, client_id, staff(access),
                                     **body.model_dump(exclude_unset=True))


@documents.delete("/clients/{client_id}", response_model=ClientView, responses=STAFF_RESPONSES)
def archive_client(client_id: Id, access: Manager, engine: EngineDep) -> dict:
    """Archive the client: hidden from lists, no new documents; their documents stay."""
    with writing(engine) as conn:
        return clients.archive_client(conn, access.tenant_id, client_id, staff(access))


# -- quotes --------------------------------------------------------------------------------

@documents.get("/quotes", response_model=QuotePage, responses=STAFF_RESPONSES)
def list_quotes(access: Viewer, conn: ReadConn, status: QuoteStatus | None = None,
                client_id: Cursor = None, limit: Limit = 50, before: Cursor = None) -> QuotePage:
    """Newest first; ``status`` as shown (``expired``: sent and past its valid-until date)."""
    found = list_documents(conn, QUOTE, access.tenant_id, status=status, client_id=client_id, limit=limit,
                           before=before)
    return QuotePage(items=found, next_before=found[-1]["id"] if len(found) == limit else None)


@documents.post("/quotes", response_model=QuoteView, status_code=201, responses={**WRITES, **REPLAY})
def create_quote(body: QuoteIn, access: Manager, engine: EngineDep, response: Response,
                 idempotency_key: IdempotencyKey = None) -> dict:
    """A draft with the studio's next quote number; lines priced by the one rounding rule."""
    def create(once: dict) -> int:
        with writing(engine) as conn:
            return quotes.create_quote(conn, access.tenant_id, body.client_id, _items(body.items), staff(access),
                                       notes=body.notes, valid_until=body.valid_until, once=once)

    made = _replayed(response, create_once(engine, studio_quotes, access.tenant_id, idempotency_key,
                                           body.model_dump(mode="json"), create))
    with engine.connect() as conn:  # after the commit: the next creation need not wait for this read
        return quotes.get_quote(conn, access.tenant_id, made.id)


@documents.get("/quotes/{quote_id}", response_model=QuoteView, responses=STAFF_RESPONSES)
def get_quote(quote_id: Id, access: Viewer, conn: ReadConn) -> dict:
    return quotes.get_quote(conn, access.tenant_id, quote_id)


@documents.patch("/quotes/{quote_id}", response_model=QuoteView, responses=WRITES)
def update_quote(quote_id: Id, body: QuotePatch, access: Manager, engine: EngineDep) -> dict:
    """Change a draft (``items`` replaces every line)."""
    fields = body.model_dump(exclude_unset=True, exclude={"items"})
    with writing(engine) as conn:
        return quotes.update_quote(conn, access.tenant_id, quote_id, staff(access),
                                   _items(body.items) if body.items is not None else None, **fields)


@documents.post("/quotes/{quote_id}/send", response_model=QuoteView, responses=WRITES)
def send_quote(quote_id: Id, access: Manager, engine: EngineDep) -> dict:
    """Mark the quote sent (a draft: dated today, valid for the studio's validity period), for a
    quote delivered by other means: nothing is emailed (``POST …/email`` emails its PDF and marks it sent)."""
    with writing(engine) as conn:
        return quotes.send_quote(conn, access.tenant_id, quote_id, staff(access))


@documents.post("/quotes/{quote_id}/accept", response_model=QuoteView, responses=WRITES)
def accept_quote(quote_id: Id, access: Manager, engine: EngineDep) -> dict:
    """Record the client's acceptance (given by phone, say) of a sent quote that has not expired."""
    with writing(engine) as conn:
        return quotes.accept_quote(conn, access.tenant_id, quote_id, staff(access))


@documents.post("/quotes/{quote_id}/decline", response_model=QuoteView, responses=WRITES)
def decline_quote(quote_id: Id, access: Manager, engine: EngineDep) -> dict:
    with writing(engine) as conn:
        return quotes.decline_quote(conn, access.tenant_id, quote_id, staff(access))


@documents.post("/quotes/{quote_id}/convert", response_model=Converted, status_code=201,
             responses={**WRITES, 200: {"model": Converted, "description": "Converted before: that same invoice"}})
def convert_quote(quote_id: Id, access: Manager, engine: EngineDep, response: Response) -> Converted:
    """The accepted quote's invoice: a draft with its lines, linked both ways (201). Converting
    again returns that same invoice (200)."""
    with writing(engine) as conn:
        invoice, created = quotes.convert_quote(conn, access.tenant_id, quote_id, staff(access))
    if not created:
        response.status_code = 200
    return Converted(created=created, invoice=invoice)


# -- invoices ------------------------------------------------------------------------------

@documents.get("/invoices", response_model=InvoicePage, responses=STAFF_RESPONSES)
def list_invoices(access: Viewer, conn: ReadConn, status: InvoiceStatus | None = None,
                  client_id: Cursor = None, limit: Limit = 50, before: Cursor = None) -> InvoicePage:
    """Newest first; ``status`` as shown (``overdue``: issued or partially paid, past its due date)."""
    found = list_documents(conn, INVOICE, access.tenant_id, status=status, client_id=client_id, limit=limit,
                           before=before)
    return InvoicePage(items=found, next_before=found[-1]["id"] if len(found) == limit else None)


@documents.post("/invoices", response_model=InvoiceView, status_code=201, responses={**WRITES, **REPLAY})
def create_invoice(body: InvoiceIn, access: Manager, engine: EngineDep, response: Response,
                   idempotency_key: IdempotencyKey = None) -> dict:
    """A draft with the studio's next invoice number."""
    def create(once: dict) -> int:
        with writing(engine) as conn:
            return invoices.create_invoice(conn, access.tenant_id, body.client_id, _items(body.items),
                                           staff(access), notes=body.notes, due_date=body.due_date, once=once)

    made = _replayed(response, create_once(engine, studio_invoices, access.tenant_id, idempotency_key,
                                           body.model_dump(mode="json"), create))
    with engine.connect() as conn:  # after the commit: the next creation need not wait for this read
        return invoices.get_invoice(conn, access.tenant_id, made.id)


@documents.get("/invoices/{invoice_id}", response_model=InvoiceView, responses=STAFF_RESPONSES)
def get_invoice(invoice_id: Id, access: Viewer, conn: ReadConn) -> dict:
    return invoices.get_invoice(conn, access.tenant_id, invoice_id)


@documents.patch("/invoices/{invoice_id}", response_model=InvoiceView, responses=WRITES)
def update_invoice(invoice_id: Id, body: InvoicePatch, access: Manager, engine: EngineDep) -> dict:
    """Change a draft (``items`` replaces every line)."""
    fields = body.model_dump(exclude_unset=True, exclude={"items"})
    with writing(engine) as conn:
        return invoices.update_invoice(conn, access.tenant_id, invoice_id, staff(access),
                                       _items(body.items) if body.items is not None else None, **fields)


@documents.post("/invoices/{invoice_id}/issue", response_model=InvoiceView, responses=WRITES)
def issue_invoice(invoice_id: Id, access: Manager, engine: EngineDep) -> dict:
    """Draft → issued: dated today, due after the studio's payment terms, the whole total due."""
    with writing(engine) as conn:
        return invoices.issue_invoice(conn, access.tenant_id, invoice_id, staff(access))


@documents.post("/invoices/{invoice_id}/send", response_model=InvoiceView, responses=WRITES)
def send_invoice(invoice_id: Id, access: Manager, engine: EngineDep) -> dict:
    """Mark the invoice sent (a draft is issued first), for an invoice delivered by other means:
    nothing is emailed (``POST …/email`` emails its PDF and marks it sent)."""
    with writing(engine) as conn:
        return invoices.send_invoice(conn, access.tenant_id, invoice_id, staff(access))


@documents.post("/invoices/{invoice_id}/void", response_model=InvoiceView, responses=WRITES)
def void_invoice(invoice_id: Id, body: VoidIn, access: Manager, engine: EngineDep) -> dict:
    """Void a draft or an issued invoice that has taken no money (a paid one: never)."""
    with writing(engine) as conn:
        return invoices.void_invoice(conn, access.tenant_id, invoice_id, staff(access), body.reason)


# -- messages and activity ------------------------------------------------------------------

Kind = Annotated[str, Path(pattern="^(quotes|invoices)$", description="quotes or invoices")]


@documents.get("/{kind}/{document_id}/messages", response_model=list[MessageView], responses=STAFF_RESPONSES)
def list_messages(kind: Kind, document_id: Id, access: Viewer, conn: ReadConn) -> list[dict]:
    """The thread with the client on this quote or invoice, oldest first."""
    return messages.messages_of(conn, access.tenant_id, kind[:-1], document_id)


@documents.post("/{kind}/{document_id}/messages", response_model=MessageView, status_code=201,
             responses=STAFF_RESPONSES)
def post_message(kind: Kind, document_id: Id, body: MessageIn, access: Manager, engine: EngineDep) -> dict:
    with writing(engine) as conn:
        return messages.post_message(conn, access.tenant_id, kind[:-1], document_id, staff(access), body.body)


@documents.get("/{kind}/{document_id}/activity", response_model=list[ActivityView], responses=STAFF_RESPONSES)
def document_activity(kind: Kind, document_id: Id, access: Viewer, conn: ReadConn) -> list[dict]:
    """Every change to this quote or invoice: who, when, what; oldest first."""
    load(conn, KINDS[kind[:-1]], access.tenant_id, document_id)
    return activity.activity_of(conn, access.tenant_id, kind[:-1], document_id)


def _items(items) -> list[dict]:
    return [i.model_dump() for i in items]


router.include_router(documents)
