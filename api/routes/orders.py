"""A customer's order, behind its secret token: status, eSIMs, QR codes, and the Stripe return."""

from __future__ import annotations

import base64
from typing import Annotated

import sqlalchemy as sa
import stripe
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from api import order_page
from api.deps import OrderToken, ServicesDep, StorefrontDep
from api.problems import Problem, problem_responses
from api.schemas import EsimView, OrderView
from commerce import orders as states
from resources.stripe import account_for
from warehouse.tables.orders import order_esims

router = APIRouter(prefix="/shops/{tenant}/orders/{order_id}", tags=["orders"])
OrderId = Annotated[str, Path(pattern=r"^ord_[0-9a-f]{24}$")]
NO_STORE = {"Cache-Control": "no-store"}
PRIVATE = problem_responses((401, "No token: open the order with the link you were sent."),
                            (404, "No such shop, or no such order for this token."), 422)


def _authorised(services: ServicesDep, tenant_id: str, order_id: str, token: str | None) -> dict:
    if not token:
        raise Problem(401, "order-token-required", "This order is private: open it with the link you were sent.")
    with services.engine.connect() as conn:
        order = states.load(conn, tenant_id, order_id) if services.tokens.check(tenant_id, order_id, token) else None
    if order is None:  # a wrong token and an unknown order look alike
        raise Problem(404, "order-not-found", "No such order.")
    return order


@router.get("", response_model=OrderView, responses={
    200: {"content": {"text/html": {}}, "description": "The order; a browser (`Accept: text/html`) gets it as a "
          "page that follows the order until its eSIM is ready, then shows the QR code and how to install it."},
    **PRIVATE})
def get_order(storefront: StorefrontDep, order_id: OrderId, token: OrderToken, services: ServicesDep, request: Request,
              response: Response) -> OrderView | Response:
    """Status and, once provisioned, each eSIM's ICCID, activation code and QR code."""
    if order_page.wants_html(request.headers.get("accept")):
        try:
            view = _view(services, storefront.tenant_id, order_id, token)
        except Problem as exc:
            return order_page.error(exc.status, exc.detail)
        return order_page.render(view, storefront.name)
    response.headers.update(NO_STORE)
    response.headers["Vary"] = "Accept"
    return _view(services, storefront.tenant_id, order_id, token)


def _view(services: ServicesDep, tenant_id: str, order_id: str, token: str | None) -> OrderView:
    order = _authorised(services, tenant_id, order_id, token)
    e = order_esims.c
    with services.engine.connect() as conn:
        esims = conn.execute(sa.select(order_esims).where(e.tenant_id == tenant_id, e.order_id == order_id)
                             .order_by(e.unit)).mappings().all()
    base = f"{services.settings.public_url}/shops/{tenant_id}/orders/{order_id}/esims"
    return OrderView(
        **{k: order[k] for k in ("order_id", "status", "package_name", "quantity", "amount_total", "amount_refunded",
                                 "currency", "created_at", "paid_at", "failure_reason")},
        esims=[EsimView(unit=x["unit"], iccid=x["iccid"], activation_code=x["activation_code"],
                        qr_png_url=f"{base}/{x['unit']}/qr.png?token={token}",
                        qr_png_base64=base64.b64encode(x["qr_png"]).decode("ascii")) for x in esims],
    )


@router.get("/esims/{unit}/qr.png", responses={200: {"content": {"image/png": {}}}, **PRIVATE})
def esim_qr(storefront: StorefrontDep, order_id: OrderId, unit: Annotated[int, Path(ge=1, le=100)], token: OrderToken,
            services: ServicesDep) -> Response:
    """The QR code a phone scans to install this eSIM."""
    _authorised(services, storefront.tenant_id, order_id, token)
    e = order_esims.c
    with services.engine.connect() as conn:
        png = conn.execute(sa.select(e.qr_png).where(e.tenant_id == storefront.tenant_id, e.order_id == order_id,
                                                     e.unit == unit)).scalar_one_or_none()
    if png is None:
        raise Problem(404, "esim-not-ready", "This eSIM is not provisioned (yet).")
    return Response(png, media_type="image/png", headers=NO_STORE)


@router.get("/return", status_code=303, response_class=RedirectResponse, responses={
    303: {"description": "To the order's page (`Location`); no body.", "headers": {"Location": {
        "description": "The order's own link, with its token.", "schema": {"type": "string"}}}},
    **PRIVATE, **problem_responses(
    (404, "No such shop or order, or Stripe does not know this session."), (502, "Stripe could not be reached."))})
def stripe_return(storefront: StorefrontDep, order_id: OrderId, token: OrderToken, services: ServicesDep, request: Request,
                  session_id: Annotated[str, Query(pattern=r"^cs_[A-Za-z0-9_]{8,200}$")]) -> Response:
    """Where Stripe sends the customer after paying: confirm with Stripe, then show the order."""
    try:
        target = _confirm_payment(storefront, order_id, token, services, session_id)
    except Problem as exc:
        if order_page.wants_html(request.headers.get("accept")):  # a customer's browser: a page, not JSON
            return order_page.error(exc.status, exc.detail)
        raise
    return RedirectResponse(target, status_code=303, headers=NO_STORE)


def _confirm_payment(storefront: StorefrontDep, order_id: str, token: str | None, services: ServicesDep, session_id: str) -> str:
    """Settle the order from Stripe's own word on the session; the URL of the order's page."""
    _authorised(services, storefront.tenant_id, order_id, token)
    connection = storefront.connection("stripe")
    if connection is None:
        raise Problem(404, "shop-cannot-take-payments", "This shop has no Stripe account connected.")
    try:
        session = account_for(connection).retrieve_session(session_id)
    except stripe.InvalidRequestError:
        raise Problem(404, "session-not-found", "Stripe does not know this checkout session.") from None
    except stripe.StripeError:
        raise Problem(502, "payment-provider-unavailable", "Stripe could not be reached; reload the page.") from None
    try:
        paid = services.webhooks.fulfil(storefront.tenant_id, order_id, session)
    except ValueError:
        raise Problem(404, "session-not-found", "This checkout session belongs to another order.") from None
    if paid:
        services.wake_provisioning()
    page = str(connection.options.get("order_page_url") or "")  # the shop's own order page, if it has one
    return page.replace("{order_id}", order_id).replace("{token}", token or "") if page \
        else services.checkout.order_url(storefront.tenant_id, order_id)
