"""POS webhooks: ``POST /shops/{tenant}/webhooks/pos/{provider}``, the URL registered with each POS.

The shop in the path picks the tenant, so the secret or URL token checked is that tenant's own
(``commerce.pos_webhooks``). A delivery is answered 200 once recorded (a re-delivery too, so the
provider stops retrying); 403 when the connection cannot authenticate deliveries at all (no
webhook secret, or no URL token issued), 401 when the signature, shared secret or URL token is
wrong, 400 when it is not a JSON event or names another account, 429 past the rate limit (per
shop and client, like checkout). Refusals write nothing; every outcome is counted in
``storehouse_pos_webhooks_total``. A shop without that POS connected is 404.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from api import metrics
from api.deps import EngineDep, RawBody, rate_limit, storefront_dep
from api.problems import Problem, problem_responses
from commerce.pos_webhooks import WEBHOOKS, receive

router = APIRouter(prefix="/shops/{tenant}", tags=["pos webhooks"])
*_FIRST, _LAST = WEBHOOKS  # the systems that send webhooks, for the description
Provider = Annotated[str, Path(description=f"{', '.join(_FIRST)} or {_LAST}", max_length=16,
                               openapi_examples={"demo": {"summary": "the demo dispensary's POS", "value": "treez"}})]
StorefrontDep = storefront_dep("mile-high-treez", "the demo's dispensary on Treez")
UrlToken = Annotated[str | None, Query(alias="token", max_length=128,
                                       description="the connection's webhook token (POS systems that do not sign)")]


class PosWebhookAck(BaseModel):
    """The answer to an accepted delivery."""

    event_id: str = Field(description="the provider's event id, or sha256 of the body when it sends none")
    duplicate: bool = Field(description="true when this event was already recorded")
    refresh: bool = Field(description="true when the event changes stock, so an inventory refresh follows")


def pos_webhook_rate_limit(request: Request, storefront: StorefrontDep, provider: Provider) -> None:
    """Before the body is read: a flood is refused as cheaply as it can be."""
    try:
        rate_limit(request.app.state.pos_webhook_limiter, request, storefront, "webhook deliveries")
    except Problem:
        count(storefront.tenant_id, provider, "rate-limited")
        raise


def count(tenant_id: str, provider: str, outcome: str) -> None:
    metrics.POS_WEBHOOKS.labels(tenant_id, provider if provider in WEBHOOKS else "other", outcome).inc()


@router.post("/webhooks/pos/{provider}", response_model=PosWebhookAck,
             responses=problem_responses(400, 401, 403, 404, 413, 422, 429),
             dependencies=[Depends(pos_webhook_rate_limit)])
def pos_webhook(provider: Provider, storefront: StorefrontDep, engine: EngineDep, body: RawBody, request: Request,
                token: UrlToken = None) -> PosWebhookAck:
    """Authenticate, record once and acknowledge one POS webhook delivery."""
    connection = storefront.connection(provider) if provider in WEBHOOKS else None
    if connection is None:
        count(storefront.tenant_id, provider, "not-connected")
        raise Problem(404, "unknown-webhook", f"This shop has no {provider[:16]!r} POS connected.")
    outcome = receive(engine, provider, connection, body, request.headers, token)
    count(storefront.tenant_id, provider, outcome.kind)
    if outcome.status != 200:
        raise Problem(outcome.status, outcome.kind, outcome.detail or "webhook refused", event_id=outcome.event_id)
    return PosWebhookAck(event_id=outcome.event_id, duplicate=outcome.duplicate, refresh=outcome.refresh)
