"""Orders to a POS, each in the provider's own format, through the tenant's own client.

The client (``resources.pos``) brings the account's session and auth (Treez and COVA tokens,
Dutchie Basic, Blaze and Flowhub keys, Shopify's token and leaky bucket). Only providers that
deduplicate themselves get the session's retries for every retryable error: Dutchie (the
``ConsumerKey`` header *and* ``idempotencyKey``, both required by its document; a Dutchie
connection without its consumer key sends no order), COVA (``PUT`` by our order id) and Portaus
(one intent per reference). For the others a lost answer may mean the order exists, so only
refusals that prove nothing was created (429, a connection never made) are retried. For every
provider, an order sent whose answer never came (after any retries) is ``Unconfirmed``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from resources.http import ConnectionFailed, ProviderError, RateLimited, RetryPolicy
from resources.pos import PortausClient, PosClient

SELF_DEDUPLICATING = frozenset({"dutchie", "cova", "portaus"})


@dataclass(frozen=True)
class OrderLine:
    product_id: str  # the POS's own product id (``source_id`` in the warehouse)
    quantity: int


@dataclass(frozen=True)
class OrderDraft:
    """A validated order, in our terms; ``tenant_id`` + ``order_ref`` identify it everywhere."""

    tenant_id: str
    order_ref: str
    customer_ref: str
    lines: tuple[OrderLine, ...]
    location_id: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Confirmation:
    provider_order_id: str
    status: str
    request: dict[str, Any]
    response: Any


class Unconfirmed(ProviderError):
    """The order may or may not exist at the provider: sent, but no answer came back."""

    kind = "unconfirmed"


class NotConfigured(ValueError):
    """The connection lacks a setting this provider needs before an order may be sent."""


def cova_order_id(tenant_id: str, order_ref: str) -> str:
    """Our order id at COVA: stable per order, so re-sending replaces instead of duplicating."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"storehouse:{tenant_id}:{order_ref}"))


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{what} must be numeric for this POS, got {value!r}") from None


def _treez(client: PosClient, d: OrderDraft) -> tuple[dict, Callable[[], Any], Callable[[Any], tuple[str, str]]]:
    body = {"type": "PICKUP", "order_source": "ECOMMERCE", "customer_id": d.customer_ref,
            "external_order_number": d.order_ref, "notes": d.note,
            "items": [{"product_id": x.product_id, "quantity": x.quantity} for x in d.lines]}
    return body, lambda: client.authed("POST", "/ticket/detailticket", json=body).json(), \
        lambda r: (r["data"]["ticket_id"], r["data"].get("order_status") or "received")


def _dutchie(client: PosClient, d: OrderDraft):
    body = {"customerId": _int(d.customer_ref, "customer id"), "orderType": "Pickup", "isDelivery": False,
            "idempotencyKey": f"{d.tenant_id}:{d.order_ref}", "notes": d.note,
            "items": [{"productId": _int(x.product_id, "product id"), "quantity": x.quantity} for x in d.lines]}
    if not client.consumer_key:  # without it Dutchie does not deduplicate, and a retried submit is a second order
        raise NotConfigured("this Dutchie connection has no consumer_key (the ConsumerKey Dutchie issues to the "
                            "integrator); orders are not sent without it")
    headers = {"ConsumerKey": client.consumer_key}
    return body, lambda: client.session.request("POST", "/preorder/submit", json=body, headers=headers).json(), \
        dutchie_confirmation


def dutchie_confirmation(answer: Any) -> tuple[str, str]:
    """(order id, status) from a ``/preorder/submit`` 200: the integer its schema gives, or the object
    with ``orderId`` (and ``transactionId``) its description promises. Anything else is unreadable."""
    if isinstance(answer, dict):
        answer = answer["orderId"]
    if isinstance(answer, bool) or not isinstance(answer, int) or answer <= 0:
        raise ValueError(f"not an order id: {type(answer).__name__}")
    return str(answer), "submitted"


def _blaze(client: PosClient, d: OrderDraft):
    body = {"memberId": d.customer_ref, "items": [{"productId": x.product_id, "quantity": x.quantity} for x in d.lines]}
    return body, lambda: client.session.request("POST", "/orders", json=body).json(), \
        lambda r: (str(r["id"]), str(r.get("status") or "placed"))


def _flowhub(client: PosClient, d: OrderDraft):
    if not d.location_id:
        raise ValueError("a Flowhub order needs the location holding the products")
    body = {"locationId": d.location_id, "customerId": d.customer_ref,
            "items": [{"productId": x.product_id, "quantity": x.quantity} for x in d.lines]}
    return body, lambda: client.session.request("POST", "/order-ahead/v0/create", json=body).json(), \
        lambda r: (r["data"]["orderId"], r["data"].get("status") or "pending")


def _cova(client: PosClient, d: OrderDraft):
    if not d.location_id:
        raise ValueError("a COVA order needs the location holding the products")
    order_id = cova_order_id(d.tenant_id, d.order_ref)
    body = {"CompanyId": client.company_id, "IntegratorId": str(client.options.get("integrator_id", "storehouse")),
            "LocationId": _int(d.location_id, "location id"), "CustomerId": d.customer_ref, "ExternalOrderId": d.order_ref,
            "Notes": d.note, "Items": [{"ProductId": x.product_id, "Quantity": x.quantity} for x in d.lines]}
    return body, lambda: client.authed("PUT", f"/covaorderintake/v1/TIPCovaOrder({order_id})", json=body).json(), \
        lambda r: (str(r.get("OrderId") or order_id), str(r.get("Status") or "received"))


def _shopify(client: PosClient, d: OrderDraft):
    order = {"line_items": [{"variant_id": _int(x.product_id, "variant id"), "quantity": x.quantity} for x in d.lines],
             "customer": {"id": _int(d.customer_ref, "customer id")}, "financial_status": "pending",
             # the POS refuses what it cannot fill and moves its own stock (which fires its webhook)
             "inventory_behaviour": "decrement_obeying_policy", "note": d.note, "send_receipt": False,
             "tags": f"storehouse, ref:{d.order_ref}"}

    def send() -> Any:
        client.bucket.before_call()
        response = client.session.request("POST", "/orders.json", json={"order": order})
        client.bucket.observe(response.headers.get("X-Shopify-Shop-Api-Call-Limit"))
        return response.json()

    return {"order": order}, send, lambda r: (str(r["order"]["id"]), str(r["order"].get("financial_status") or "pending"))


FORMATS = {"treez": _treez, "dutchie": _dutchie, "blaze": _blaze, "flowhub": _flowhub, "cova": _cova, "shopify": _shopify}


def never_reached(error: BaseException) -> bool:
    """True when the provider cannot have acted on the request (refused, or never connected)."""
    if isinstance(error, RateLimited):
        return True
    return isinstance(error, ConnectionFailed) and isinstance(error.__cause__, (httpx.ConnectError, httpx.ConnectTimeout))


def submit_order(client: PosClient, draft: OrderDraft, retry: RetryPolicy | None = None) -> Confirmation:
    """Send ``draft`` in the provider's format; raises ``ProviderError`` (``Unconfirmed`` when unsure)."""
    build = FORMATS.get(client.system)
    if build is None:
        raise ValueError(f"orders cannot be sent to {client.system!r}")
    body, send, read = build(client, draft)  # a draft the format cannot express fails here, before sending
    try:
        if client.system in SELF_DEDUPLICATING:
            response = _in_doubt_if_lost(client, draft, send)
        else:
            response = _send_once(client, send, draft, retry)
        provider_order_id, status = read(response)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # The POS answered 2xx with a body we cannot read: it may well have taken the order.
        raise Unconfirmed(client.system, f"order {draft.order_ref} was sent and answered, but the answer could "
                          f"not be read ({type(exc).__name__})") from exc
    return Confirmation(str(provider_order_id), status, body, response)


def _send_once(client: PosClient, send: Callable[[], Any], draft: OrderDraft, retry: RetryPolicy | None) -> Any:
    """Retried only while the POS provably never saw the order; no answer after sending is ``Unconfirmed``."""
    original = client.session.retry
    policy = retry or original
    client.session.retry = RetryPolicy(attempts=1)  # this client is ours alone; its retries are decided here
    try:
        return _in_doubt_if_lost(client, draft, Retrying(
            stop=stop_after_attempt(policy.attempts), wait=policy.wait, retry=retry_if_exception(never_reached),
            reraise=True).wraps(send))
    finally:
        client.session.retry = original


def _in_doubt_if_lost(client: PosClient, draft: OrderDraft, send: Callable[[], Any]) -> Any:
    """``send()``; a failure that may have come after the POS acted (a timeout, a 5xx) is ``Unconfirmed``."""
    try:
        return send()
    except ProviderError as exc:
        if exc.retryable and not never_reached(exc):
            raise Unconfirmed(client.system, f"no answer after sending order {draft.order_ref}: {exc}") from exc
        raise


def create_payment_intent(client: PortausClient, reference: str, amount: Decimal, currency: str,
                          customer: str | None = None, branch: str | None = None) -> dict[str, Any]:
    """One Portaus payment intent per reference (Portaus answers the same intent for a repeat)."""
    cents = int((amount * 100).to_integral_value())
    body = {"amount": cents, "currency": currency.lower(), "reference": reference, "customer": customer, "branch": branch}
    return client.authed("POST", "/api/v1/payments/intents", json={k: v for k, v in body.items() if v is not None}).json()
