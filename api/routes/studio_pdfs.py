"""The studio's quote and invoice PDFs.

* Staff (``/studios/{tenant}/…``): download any document's PDF, drafts included (``studio.view``),
  and email it to the client (``studio.manage``).
* The client portal (``/studios/{tenant}/portal/…``, ``studio.portal``): a client signed in with the
  ``customer`` role downloads their own documents' PDFs, scoped by their studio client id
  (``client_of``); drafts are never shown and another client's document is a 404.

The PDF is always the document's current one (``studio.pdf.cache``); its ETag is its fingerprint,
so a client's cached copy is revalidated and never shown stale. An invoice with a balance prints
the client's invoice page link (``studio.links``, the same link the API checks), so a client
without an account pays from the PDF or the email.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import STUDIO_ONLY, ServicesDep
from api.problems import Problem, problem_responses
from api.routes.studio_client import client_of
from api.routes.studio_staff import staff
from api.staff import STAFF_RESPONSES, require
from people.auth import Access
from resources.http import ProviderError
from studio import invoices, quotes
from studio.db import writing
from studio.pdf.cache import DocumentPdfs
from studio.pdf.sending import SendRefused, send_document
from studio.pdf.view import INVOICE, QUOTE

router = APIRouter(tags=["studio: PDFs"], dependencies=STUDIO_ONLY)
STAFF, PORTAL = "/studios/{tenant}", "/studios/{tenant}/portal"
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
PDF_RESPONSES = {**STAFF_RESPONSES,
                 200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
                       "description": "the PDF"},
                 304: {"description": "unchanged since the ETag sent in If-None-Match"}}
Viewer = Annotated[Access, Depends(require("studio.view"))]
Manager = Annotated[Access, Depends(require("studio.manage"))]
Portal = Annotated[Access, Depends(require("studio.portal"))]


def get_pdfs(request: Request) -> DocumentPdfs:
    """One ``DocumentPdfs`` per app, on the app's storage (``app.state.storage``), printing the
    invoice page links of the app's ``InvoiceLinks`` (``app.state.studio_payments``)."""
    state = request.app.state
    pdfs = getattr(state, "studio_pdfs", None)
    if pdfs is None:
        services = state.services
        pdfs = state.studio_pdfs = DocumentPdfs(services.engine, state.storage, services.settings.home / "pdf-cache",
                                                payment_url=state.studio_payments.links.page_url)
    return pdfs


PdfsDep = Annotated[DocumentPdfs, Depends(get_pdfs)]


def _pdf(kind: str, doc_id: int, tenant_id: str, pdfs: DocumentPdfs, download: bool,
         if_none_match: str | None, client_id: int | None = None) -> Response:
    pdf = pdfs.get(tenant_id, kind, doc_id, client_id=client_id)
    if pdf is None:
        raise Problem(404, f"{kind}-not-found", f"There is no {kind} {doc_id} here.")
    etag = f'"{pdf.fingerprint}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache",
               "Content-Disposition": f'{"attachment" if download else "inline"}; filename="{pdf.filename}"'}
    if if_none_match and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(pdf.data, media_type="application/pdf", headers=headers)


Download = Annotated[bool, Query(description="as an attachment (save) rather than inline (view)")]
IfNoneMatch = Annotated[str | None, Header(max_length=1024)]


@router.get(STAFF + "/quotes/{quote_id}/pdf", response_class=Response, responses=PDF_RESPONSES)
def quote_pdf(quote_id: Id, access: Viewer, pdfs: PdfsDep, download: Download = False,
              if_none_match: IfNoneMatch = None) -> Response:
    """The quote as ``quote-{number}.pdf`` (a draft too: the studio previews it)."""
    return _pdf(QUOTE, quote_id, access.tenant_id, pdfs, download, if_none_match)


@router.get(STAFF + "/invoices/{invoice_id}/pdf", response_class=Response, responses=PDF_RESPONSES)
def invoice_pdf(invoice_id: Id, access: Viewer, pdfs: PdfsDep, download: Download = False,
                if_none_match: IfNoneMatch = None) -> Response:
    """The invoice as ``invoice-{number}.pdf``, with the payment link while a balance is due."""
    return _pdf(INVOICE, invoice_id, access.tenant_id, pdfs, download, if_none_match)


@router.get(PORTAL + "/quotes/{quote_id}/pdf", response_class=Response, responses=PDF_RESPONSES)
def my_quote_pdf(quote_id: Id, access: Portal, pdfs: PdfsDep, download: Download = False,
                 if_none_match: IfNoneMatch = None) -> Response:
    """My quote as ``quote-{number}.pdf`` (a draft, or another client's quote: 404)."""
    return _pdf(QUOTE, quote_id, access.tenant_id, pdfs, download, if_none_match, client_of(access))


@router.get(PORTAL + "/invoices/{invoice_id}/pdf", response_class=Response, responses=PDF_RESPONSES)
def my_invoice_pdf(invoice_id: Id, access: Portal, pdfs: PdfsDep, download: Download = False,
                   if_none_match: IfNoneMatch = None) -> Response:
    """My invoice as ``invoice-{number}.pdf``, with its payment link while a balance is due."""
    return _pdf(INVOICE, invoice_id, access.tenant_id, pdfs, download, if_none_match, client_of(access))


class EmailRequest(BaseModel):
    to: str | None = Field(None, max_length=320, pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$",
                           description="another address than the client's")
    message: str | None = Field(None, max_length=2000, description="a note added to the email")


class EmailAnswer(BaseModel):
    email_id: str
    to: str
    filename: str
    already_sent: bool = Field(description="true: this was sent before (same Idempotency-Key, or the same PDF, "
                                           "address and message); nothing was sent now")


TRANSITIONS = {QUOTE: quotes.send_quote, INVOICE: invoices.send_invoice}


def _email(kind: str, doc_id: int, body: EmailRequest, access: Access, pdfs: DocumentPdfs, services,
           idempotency_key: str | None) -> EmailAnswer:
    """Refuse first (no email connection: 409; no address: 422; no such document: 404) with nothing
    changed; then send a draft through its lifecycle (dated, valid-until or due date set) so its PDF
    is the one the client should get; then email that PDF. An email that fails after a draft's
    transition (502) leaves the document sent: the retry, no longer a draft, only emails."""
    tenant_id = access.tenant_id
    storefront = services.storefronts.get(tenant_id)
    connection = storefront.connection("resend") if storefront else None
    if connection is None:
        raise Problem(409, "no-email-connection", "This studio has no email (Resend) connection to send from.")
    found = pdfs.view(tenant_id, kind, doc_id)
    if found is None:
        raise Problem(404, f"{kind}-not-found", f"There is no {kind} {doc_id} here.")
    view, _ = found
    if not (body.to or view.client.email or "").strip():
        raise Problem(422, "no-address", "The client has no email address; give one (to).")
    if view.status == "draft":
        with writing(services.engine) as conn:
            TRANSITIONS[kind](conn, tenant_id, doc_id, staff(access))
    send = services.email_clients.get(connection).send
    try:
        sent = send_document(pdfs, send, tenant_id, kind, doc_id, actor=staff(access), to=body.to,
                             message=body.message, idempotency_key=idempotency_key)
    except SendRefused as exc:
        raise Problem(422, "no-address", str(exc)) from None
    except ProviderError as exc:
        if exc.status == 409:
            raise Problem(409, "idempotency-key-reused", "This Idempotency-Key was used for another email.") from None
        raise Problem(502, "email-failed", "The email could not be sent; try again.") from None
    if sent is None:
        raise Problem(404, f"{kind}-not-found", f"There is no {kind} {doc_id} here.")
    return EmailAnswer(email_id=sent.email_id, to=sent.to, filename=sent.filename, already_sent=sent.already)


EMAIL_RESPONSES = {**STAFF_RESPONSES, **problem_responses(409, 502)}
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=128)]


@router.post(STAFF + "/quotes/{quote_id}/email", response_model=EmailAnswer, responses=EMAIL_RESPONSES)
def email_quote(quote_id: Id, body: EmailRequest, access: Manager, pdfs: PdfsDep, services: ServicesDep,
                idempotency_key: IdempotencyKey = None) -> EmailAnswer:
    """Email the quote's PDF to the client and mark it sent (a draft is sent first: dated, valid
    for the studio's validity period). ``POST …/send`` only marks it sent, for a quote delivered
    by other means. The same PDF, address and message go out once."""
    return _email(QUOTE, quote_id, body, access, pdfs, services, idempotency_key)


@router.post(STAFF + "/invoices/{invoice_id}/email", response_model=EmailAnswer, responses=EMAIL_RESPONSES)
def email_invoice(invoice_id: Id, body: EmailRequest, access: Manager, pdfs: PdfsDep, services: ServicesDep,
                  idempotency_key: IdempotencyKey = None) -> EmailAnswer:
    """Email the invoice's PDF to the client, with its invoice page link while a balance is due (a
    client without an account pays there), and mark it sent (a draft is issued first). ``POST
    …/send`` only marks it sent, for an invoice delivered by other means. The same email goes out once."""
    return _email(INVOICE, invoice_id, body, access, pdfs, services, idempotency_key)
