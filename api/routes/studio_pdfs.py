"""The studio's quote and invoice PDFs: staff download them (``studio.view``) and email them to the
client (``studio.manage``); a client signed in to the portal (role ``customer``, linked to their
``studio_clients`` row by ``user_id``) downloads their own, drafts excepted, through the same URLs.

The PDF is always the document's current one (``studio.pdf.cache``); its ETag is its fingerprint,
so a client's cached copy is revalidated and never shown stale.
"""

from __future__ import annotations

import importlib.util
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import ServicesDep
from api.problems import Problem, problem_responses
from api.staff import STAFF_RESPONSES, require
from people.auth import Access
from resources.http import ProviderError
from studio.pdf.cache import DocumentPdfs
from studio.pdf.sending import SendRefused, send_document
from studio.pdf.view import INVOICE, QUOTE

router = APIRouter(prefix="/tenants/{tenant}/studio", tags=["studio: PDFs"])
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
PDF_RESPONSES = {**STAFF_RESPONSES,
                 200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
                       "description": "the PDF"},
                 304: {"description": "unchanged since the ETag sent in If-None-Match"}}


def _payment_url(request: Request):
    """The link printed on an invoice with a balance: the client's invoice page (``studio.links``)."""
    if importlib.util.find_spec("studio.links") is None:  # not on this branch yet: no link printed
        return None
    from studio.links import invoice_page_url

    return partial(invoice_page_url, request.app.state.services.settings.public_url)


def get_pdfs(request: Request) -> DocumentPdfs:
    """One ``DocumentPdfs`` per app, on the app's storage (``app.state.storage``; without one, PDFs
    are kept in ``STOREHOUSE_HOME/pdf-cache`` alone and logos are not printed)."""
    state = request.app.state
    pdfs = getattr(state, "studio_pdfs", None)
    if pdfs is None:
        storage = getattr(state, "storage", None)
        services = state.services
        pdfs = state.studio_pdfs = DocumentPdfs(services.engine, storage, services.settings.home / "pdf-cache",
                                                payment_url=_payment_url(request))
    return pdfs


PdfsDep = Annotated[DocumentPdfs, Depends(get_pdfs)]


def _pdf(kind: str, doc_id: int, access: Access, pdfs: DocumentPdfs, download: bool,
         if_none_match: str | None) -> Response:
    own = access.principal.user_id if access.role == "customer" else None
    pdf = pdfs.get(access.tenant_id, kind, doc_id, client_user_id=own)
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


@router.get("/quotes/{quote_id}/pdf", response_class=Response, responses=PDF_RESPONSES)
def quote_pdf(quote_id: Id, access: Annotated[Access, Depends(require("studio.view"))], pdfs: PdfsDep,
              download: Download = False, if_none_match: IfNoneMatch = None) -> Response:
    """The quote as ``quote-{number}.pdf``."""
    return _pdf(QUOTE, quote_id, access, pdfs, download, if_none_match)


@router.get("/invoices/{invoice_id}/pdf", response_class=Response, responses=PDF_RESPONSES)
def invoice_pdf(invoice_id: Id, access: Annotated[Access, Depends(require("studio.view"))], pdfs: PdfsDep,
                download: Download = False, if_none_match: IfNoneMatch = None) -> Response:
    """The invoice as ``invoice-{number}.pdf``, with the payment link while a balance is due."""
    return _pdf(INVOICE, invoice_id, access, pdfs, download, if_none_match)


class SendRequest(BaseModel):
    to: str | None = Field(None, max_length=320, pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$",
                           description="another address than the client's")
    message: str | None = Field(None, max_length=2000, description="a note added to the email")


class SendAnswer(BaseModel):
    email_id: str
    to: str
    filename: str
    already_sent: bool = Field(description="true: this was sent before (same Idempotency-Key, or the same PDF, "
                                           "address and message); nothing was sent now")


def _send(kind: str, doc_id: int, body: SendRequest, access: Access, pdfs: DocumentPdfs, services,
          idempotency_key: str | None) -> SendAnswer:
    storefront = services.storefronts.get(access.tenant_id)
    connection = storefront.connection("resend") if storefront else None
    if connection is None:
        raise Problem(409, "no-email-connection", "This studio has no email (Resend) connection to send from.")
    send = services.email_clients.get(connection).send
    try:
        sent = send_document(pdfs, send, access.tenant_id, kind, doc_id, actor_id=access.principal.user_id,
                             to=body.to, message=body.message, idempotency_key=idempotency_key)
    except SendRefused as exc:
        raise Problem(422, "no-address", str(exc)) from None
    except ProviderError as exc:
        if exc.status == 409:
            raise Problem(409, "idempotency-key-reused", "This Idempotency-Key was used for another email.") from None
        raise Problem(502, "email-failed", "The email could not be sent; try again.") from None
    if sent is None:
        raise Problem(404, f"{kind}-not-found", f"There is no {kind} {doc_id} here.")
    return SendAnswer(email_id=sent.email_id, to=sent.to, filename=sent.filename, already_sent=sent.already)


SEND_RESPONSES = {**STAFF_RESPONSES, **problem_responses(409, 502)}
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=128)]


@router.post("/quotes/{quote_id}/send", response_model=SendAnswer, responses=SEND_RESPONSES)
def send_quote(quote_id: Id, body: SendRequest, access: Annotated[Access, Depends(require("studio.manage"))],
               pdfs: PdfsDep, services: ServicesDep, idempotency_key: IdempotencyKey = None) -> SendAnswer:
    """Email the quote's PDF to the client; the same PDF, address and message go out once."""
    return _send(QUOTE, quote_id, body, access, pdfs, services, idempotency_key)


@router.post("/invoices/{invoice_id}/send", response_model=SendAnswer, responses=SEND_RESPONSES)
def send_invoice(invoice_id: Id, body: SendRequest, access: Annotated[Access, Depends(require("studio.manage"))],
                 pdfs: PdfsDep, services: ServicesDep, idempotency_key: IdempotencyKey = None) -> SendAnswer:
    """Email the invoice's PDF (with its payment link) to the client; the same email goes out once."""
    return _send(INVOICE, invoice_id, body, access, pdfs, services, idempotency_key)
