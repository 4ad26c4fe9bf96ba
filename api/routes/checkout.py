"""Checkout: a pending order and the Stripe Checkout Session to pay it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from api import metrics
from api.deps import ServicesDep, StorefrontDep, checkout_rate_limit
from api.problems import Problem, problem_responses
from api.schemas import CheckoutRequest, CheckoutResponse

router = APIRouter(prefix="/shops/{tenant}", tags=["checkout"])
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="the same key (with the same body) returns the same order instead of a second one",
    openapi_examples={"cart": {"summary": "one key per cart", "value": "cart-7f3a9c"}})]
_HEADERS = {"Location": {"description": "the order's link (`order_url`)", "schema": {"type": "string"}}}
RESPONSES = {
    201: {"description": "A new pending order and its Checkout Session.", "headers": _HEADERS},
    200: {"model": CheckoutResponse, "headers": {**_HEADERS, "Idempotent-Replayed": {
              "description": "`true`", "schema": {"type": "string"}}},
          "description": "A replay: this Idempotency-Key already made an order with this body; that order, "
                         "unchanged (`replayed: true`)."},
    **problem_responses(
        400, (404, "No such shop."), (409, "The package is out of stock, or the shop cannot take payments."), 413,
        (422, "The body is not valid, names a package the shop does not sell or too many eSIMs, reuses an "
              "Idempotency-Key with another body, or Stripe refused the checkout."),
        (429, "Too many checkouts from this client."), (502, "Stripe could not be reached.")),
}


@router.post("/checkout", response_model=CheckoutResponse, status_code=201, responses=RESPONSES,
             dependencies=[Depends(checkout_rate_limit)])
def checkout(body: CheckoutRequest, storefront: StorefrontDep, services: ServicesDep, response: Response,
             idempotency_key: IdempotencyKey = None) -> CheckoutResponse:
    """Create a pending order and its Checkout Session; the same Idempotency-Key returns the same pair."""
    try:
        result = services.checkout.create(storefront, body.package_id, body.quantity, body.email, idempotency_key)
    except Problem as exc:
        metrics.CHECKOUTS.labels(exc.kind).inc()
        raise
    order = result.order
    url = services.checkout.order_url(storefront.tenant_id, order["order_id"])
    if not result.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = url
    metrics.CHECKOUTS.labels("created" if result.created else "replayed").inc()
    return CheckoutResponse(order_id=order["order_id"], status=order["status"], checkout_url=order["checkout_url"],
                            order_url=url, token=result.token, amount_total=order["amount_total"],
                            currency=order["currency"], replayed=not result.created)
