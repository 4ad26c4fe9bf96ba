"""POS webhooks: ``POST /shops/{shop}/webhooks/pos/{provider}``, the URL registered with each POS.

The shop in the path picks the tenant, so the secret checked is that tenant's own. A delivery
is answered 200 once recorded (a re-delivery too, so the provider stops retrying), 401 when its
signature or shared secret is wrong, 400 when it is not a JSON event or names another account;
each of those is recorded. A shop without that POS connected is 404 and nothing is kept.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from api.deps import EngineDep, RawBody, ShopDep
from api.problems import Problem, problem_responses
from shop.pos_webhooks import PROVIDERS, receive

router = APIRouter(prefix="/shops/{shop}", tags=["pos webhooks"])
Provider = Annotated[str, Path(description="treez, dutchie, blaze, flowhub, cova or shopify", max_length=16)]


class PosWebhookAck(BaseModel):
    """The answer to an accepted delivery."""

    event_id: str = Field(description="the provider's event id, or sha256 of the body when it sends none")
    duplicate: bool = Field(description="true when this event was already recorded")
    refresh: bool = Field(description="true when the event changes stock, so an inventory refresh follows")


@router.post("/webhooks/pos/{provider}", response_model=PosWebhookAck, responses=problem_responses(400, 401, 404, 413, 422))
def pos_webhook(provider: Provider, shop: ShopDep, engine: EngineDep, body: RawBody, request: Request) -> PosWebhookAck:
    """Verify, record once and acknowledge one POS webhook delivery."""
    connection = shop.connection(provider) if provider in PROVIDERS else None
    if connection is None:
        raise Problem(404, "unknown-webhook", f"This shop has no {provider[:16]!r} POS connected.")
    outcome = receive(engine, provider, connection, body, request.headers)
    if outcome.status != 200:
        raise Problem(outcome.status, outcome.kind, outcome.detail or "webhook refused", event_id=outcome.event_id)
    return PosWebhookAck(event_id=outcome.event_id, duplicate=outcome.duplicate, refresh=outcome.refresh)
