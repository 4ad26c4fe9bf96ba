"""Orders to a POS, each in the provider's own format, through the tenant's own client.

Each format is its POS module's ``order_request`` (named in its ``PROVIDER``); this module sends
them all the same way.

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

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from resources.http import CallPolicy, ConnectionFailed, ProviderError, RateLimited
from resources.pos import POS_PROVIDERS, PortausClient, PosClient

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


# From the POS descriptors (each module's ``order_request`` and ``self_deduplicating``): a POS that
# takes orders says so in its own module.
FORMATS: dict[str, Callable[..., Any]] = {p.system: p.order_format for p in POS_PROVIDERS if p.order_format}
SELF_DEDUPLICATING = frozenset(p.system for p in POS_PROVIDERS if p.self_deduplicating)


def never_reached(error: BaseException) -> bool:
    """True when the provider cannot have acted on the request (refused, or never connected)."""
    if isinstance(error, RateLimited):
        return True
    return isinstance(error, ConnectionFailed) and isinstance(error.__cause__, (httpx.ConnectError, httpx.ConnectTimeout))


def submit_order(client: PosClient, draft: OrderDraft, policy: CallPolicy | None = None) -> Confirmation:
    """Send ``draft`` in the provider's format; raises ``ProviderError`` (``Unconfirmed`` when unsure)."""
    build = FORMATS.get(client.system)
    if build is None:
        raise ValueError(f"orders cannot be sent to {client.system!r}")
    body, send, read = build(client, draft)  # a draft the format cannot express fails here, before sending
    try:
        if client.system in SELF_DEDUPLICATING:
            response = _in_doubt_if_lost(client, draft, send)
        else:
            response = _send_once(client, send, draft, policy)
        provider_order_id, status = read(response)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # The POS answered 2xx with a body we cannot read: it may well have taken the order.
        raise Unconfirmed(client.system, f"order {draft.order_ref} was sent and answered, but the answer could "
                          f"not be read ({type(exc).__name__})") from exc
    return Confirmation(str(provider_order_id), status, body, response)


def _send_once(client: PosClient, send: Callable[[], Any], draft: OrderDraft, policy: CallPolicy | None) -> Any:
    """Retried only while the POS provably never saw the order; no answer after sending is ``Unconfirmed``."""
    original = client.session.policy
    policy = policy or original
    client.session.policy = original.with_overrides(attempts=1)  # this client is ours alone: retries decided here
    try:
        return _in_doubt_if_lost(client, draft, Retrying(
            stop=stop_after_attempt(policy.attempts), wait=policy.wait, retry=retry_if_exception(never_reached),
            reraise=True).wraps(send))
    finally:
        client.session.policy = original


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
