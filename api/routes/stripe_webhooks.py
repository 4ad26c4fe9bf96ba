"""Stripe's webhook for one shop: verify the raw body, record the event once, answer at once.

Provisioning is not done here: a payment enqueues a durable job in the event's transaction and
wakes this process's worker, so Stripe gets its 2xx in milliseconds whatever the providers do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from api import metrics
from api.deps import RawBody, ServicesDep, StorefrontDep
from api.problems import Problem, problem_responses
from api.schemas import WebhookAck
from resources.stripe import (
    EventMalformed, SignatureRejected, SignatureStale, parse_event, verify_signature, webhook_secrets,
)

router = APIRouter(prefix="/shops/{tenant}", tags=["stripe webhooks"])


@router.post("/webhooks/stripe", response_model=WebhookAck, responses=problem_responses(
    (400, "The signature is missing, wrong or stale, or the body is not a Stripe event."),
    (404, "No such shop, or it has no Stripe account connected."), 413,
    (422, "The Stripe-Signature header is too long.")))
def stripe_webhook(storefront: StorefrontDep, services: ServicesDep, body: RawBody,
                   stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature", max_length=2048)] = None,
                   ) -> WebhookAck:
    """Accept one signed Stripe event for this shop (unknown event types are acknowledged and ignored)."""
    connection = storefront.connection("stripe")
    if connection is None:
        raise Problem(404, "shop-cannot-take-payments", "This shop has no Stripe account connected.")
    try:
        verify_signature(body, stripe_signature, webhook_secrets(connection), services.settings.webhook_tolerance_s)
    except SignatureStale as exc:
        metrics.WEBHOOKS.labels("stale_signature").inc()
        raise Problem(400, "stale-signature", str(exc)) from None
    except SignatureRejected as exc:
        metrics.WEBHOOKS.labels("bad_signature").inc()
        raise Problem(400, "invalid-signature", str(exc)) from None
    try:
        event = parse_event(body)
    except EventMalformed as exc:
        metrics.WEBHOOKS.labels("malformed").inc()
        raise Problem(400, "malformed-event", str(exc)) from None
    received = services.webhooks.receive(storefront.tenant_id, event)
    metrics.WEBHOOKS.labels(received.outcome).inc()
    if received.paid:
        services.wake_provisioning()
    return WebhookAck(outcome=received.outcome)
