"""A studio client's invoice page behind its unguessable link, its Pay button, and Stripe's return.

No sign-in: the link's token (``studio.links``) is the client's key, as the eSIM order link is the
customer's. An unknown studio, an unknown or draft invoice and a wrong or missing token all get
the same 404 page, so the page never tells whether an invoice exists.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
import stripe
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from api import invoice_page
from api.deps import ServicesDep, TenantSlug
from api.problems import problem_responses
from resources.stripe import account_for
from studio import ledger
from warehouse.tables.studio import studio_business, studio_clients, studio_invoice_items, studio_invoices

# No STUDIO_ONLY here: a tenant that is no studio has no invoice, so its pages are this page's
# own 404 (HTML, for the browser the link was opened in), like a wrong token.
router = APIRouter(prefix="/studios/{tenant}/public/invoices/{invoice_id}", tags=["studio: client invoice page"])
InvoiceId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Token = Annotated[str | None, Query(max_length=128, description="the link's token")]
NOT_FOUND = "No such invoice. Open it with the link you were sent."
HTML = {200: {"content": {"text/html": {}}, "description": "The invoice as a page."},
        404: {"content": {"text/html": {}}, "description": "No such studio or invoice, or not this link."},
        **problem_responses((422, "Not a link this API makes (an invoice id that is not a number, say)."))}


def _studio(request: Request) -> Any:
    return request.app.state.studio_payments


def _open(services: ServicesDep, request: Request, tenant: str, invoice_id: int, token: str | None):
    """(storefront, invoice) when the link is right; None otherwise (whatever was wrong)."""
    if not _studio(request).links.check(tenant, invoice_id, token):
        return None
    storefront = services.storefronts.get(tenant)
    if storefront is None:
        return None
    i = studio_invoices.c
    with services.engine.connect() as conn:
        invoice = conn.execute(sa.select(studio_invoices).where(i.tenant_id == tenant, i.id == invoice_id)
                               ).mappings().one_or_none()
    if invoice is None or invoice["status"] == "draft":  # a draft is not the client's yet
        return None
    return storefront, dict(invoice)


@router.get("", response_class=Response, responses=HTML)
def invoice_view(tenant: TenantSlug, invoice_id: InvoiceId, services: ServicesDep, request: Request,
                 token: Token = None,
                 session_id: Annotated[str | None, Query(pattern=r"^cs_[A-Za-z0-9_]{8,200}$",
                                                         description="set by Stripe's success redirect")] = None,
                 ) -> Response:
    """The invoice, its lines and totals, and a Pay button while a balance is due."""
    opened = _open(services, request, tenant, invoice_id, token)
    if opened is None:
        return invoice_page.error(404, NOT_FOUND)
    storefront, invoice = opened
    connection = storefront.connection("stripe")
    if session_id is not None:
        # Stripe's success redirect: settle from Stripe's own word on the session (the webhook may
        # not have come yet), then show the page at its own link, without the session in it.
        if connection is not None:
            _confirm(request, tenant, invoice_id, session_id, connection)
        return RedirectResponse(_studio(request).links.page_url(tenant, invoice_id), status_code=303,
                                headers={"Cache-Control": "no-store"})
    return _render(services, request, storefront, invoice)


def _confirm(request: Request, tenant: str, invoice_id: int, session_id: str, connection) -> None:
    try:
        session = account_for(connection).retrieve_session(session_id)
        _studio(request).events.confirm(tenant, invoice_id, session)
    except (stripe.StripeError, ValueError):
        pass  # Stripe away, or not this invoice's session: the page shows what is known; the webhook follows


def _render(services: ServicesDep, request: Request, storefront, invoice: dict, notice: str = "") -> Response:
    tenant, invoice_id = storefront.tenant_id, invoice["id"]
    it, c, b = studio_invoice_items.c, studio_clients.c, studio_business.c
    with services.engine.connect() as conn:
        items = [dict(r) for r in conn.execute(sa.select(studio_invoice_items).where(
            it.tenant_id == tenant, it.invoice_id == invoice_id).order_by(it.position, it.id)).mappings()]
        client = conn.execute(sa.select(c.name, c.company).where(c.tenant_id == tenant, c.id == invoice["client_id"])
                              ).one_or_none()
        business = conn.execute(sa.select(b.name).where(b.tenant_id == tenant)).scalar_one_or_none()
    client_name = (f"{client.name} ({client.company})" if client.company else client.name) if client else ""
    connection = storefront.connection("stripe")
    links = _studio(request).links
    return invoice_page.render(invoice, items, business or storefront.name, client_name,
                               links.pay_url(tenant, invoice_id), connection.base_url if connection else None, notice)


@router.post("/pay", response_class=Response, status_code=303, responses={
    303: {"description": "To Stripe Checkout for the balance (or back to the page when nothing is due)."},
    **HTML, 502: {"content": {"text/html": {}}, "description": "Stripe could not be reached."}})
def pay(tenant: TenantSlug, invoice_id: InvoiceId, services: ServicesDep, request: Request,
        token: Token = None) -> Response:
    """The page's Pay button: to Stripe Checkout for the balance due (the same session while it is open)."""
    opened = _open(services, request, tenant, invoice_id, token)
    if opened is None:
        return invoice_page.error(404, NOT_FOUND)
    storefront, invoice = opened
    try:
        link = _studio(request).checkout.link(tenant, invoice_id, storefront.connection("stripe"))
    except ledger.NotPayable:  # paid meanwhile (or voided): the page says so
        return RedirectResponse(_studio(request).links.page_url(tenant, invoice_id), status_code=303)
    except ledger.LedgerError as exc:
        return _render(services, request, storefront, invoice, notice=exc.detail) if exc.status < 500 \
            else invoice_page.error(exc.status, exc.detail)
    return RedirectResponse(link.url, status_code=303, headers={"Cache-Control": "no-store"})
