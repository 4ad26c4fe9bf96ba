"""Stripe's webhook for one tenant: verify the raw body, record the event once, answer at once.

One tenant, one Stripe account, one record per event: an event carrying a studio invoice
(metadata ``invoiceId``, or a refund of a PaymentIntent the studio recorded) goes to the studio
(``studio.stripe_events``), every other to the shop. Both paths, ``/shops/{tenant}/…`` and
``/studios/{tenant}/…``, are this same dispatcher, so whichever endpoint a tenant registers (or
both), each event is applied by its owner and recorded once in ``webhook_events``.

Provisioning is not done here: a payment enqueues a durable job in the event's transaction and
wakes this process's worker, so Stripe gets its 2xx in milliseconds whatever the providers do.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from api import metrics
from api.deps import STUDIO_ONLY, StudioSlug, TenantSlug, get_storefront
from api.problems import Problem, problem_responses
from api.schemas import WebhookAck
from resources.stripe import (
    EventMalformed, SignatureRejected, SignatureStale, parse_event, verify_signature, webhook_secrets,
)
from warehouse.db import would_wait

router = APIRouter(tags=["stripe webhooks"])
RESPONSES = problem_responses(
    (400, "The signature is missing, wrong or stale, or the body is not a Stripe event."),
    (404, "No such shop, or it has no Stripe account connected."), 413,
    (422, "The Stripe-Signature header is too long."))
Signature = Annotated[str | None, Header(alias="Stripe-Signature", max_length=2048)]


@router.post("/shops/{tenant}/webhooks/stripe", response_model=WebhookAck, responses=RESPONSES)
async def stripe_webhook(tenant: TenantSlug, request: Request, stripe_signature: Signature = None) -> Response:
    """Accept one signed Stripe event for this shop (unknown event types are acknowledged and ignored)."""
    return await _receive(tenant, request, stripe_signature)


@router.post("/studios/{tenant}/webhooks/stripe", response_model=WebhookAck, responses=RESPONSES,
             dependencies=STUDIO_ONLY)
async def studio_stripe_webhook(tenant: StudioSlug, request: Request, stripe_signature: Signature = None) -> Response:
    """Accept one signed Stripe event for this studio (the same dispatcher as the shop's endpoint)."""
    return await _receive(tenant, request, stripe_signature)


async def _receive(tenant: str, request: Request, stripe_signature: str | None) -> Response:
    """Checks on the event loop (microseconds of CPU, no I/O), then the event's one transaction.
    The shop is looked up and the body read here rather than as dependencies: FastAPI's solving
    of each costs more CPU than the check itself, on every delivery."""
    services = request.app.state.services
    storefront = await get_storefront(tenant, services)
    body = await request.body()
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
    received, shop = await _record(request.app.state.studio_payments, services, storefront.tenant_id, event)
    metrics.WEBHOOKS.labels(received.outcome).inc()
    if shop and received.paid:
        services.wake_provisioning()
    return Response(WebhookAck(outcome=received.outcome).model_dump_json().encode(), media_type="application/json")


async def _record(studio_payments, services, tenant_id: str, event: dict) -> tuple[Any, bool]:
    """The event's one transaction: on the event loop when SQLite can take it at once (a thread
    hop costs more CPU than the transaction), else in a thread, where it may wait its turn."""
    if services.loop_transactions is not None:
        try:
            return _apply(studio_payments, services, tenant_id, event, services.loop_transactions)
        except Exception as exc:
            if not would_wait(exc):
                raise
    return await run_in_threadpool(_apply, studio_payments, services, tenant_id, event, services.engine)


def _apply(studio_payments, services, tenant_id: str, event: dict, engine: Any) -> tuple[Any, bool]:
    """The event applied and recorded by its owner, the studio or else the shop; (what happened,
    whether it was the shop's)."""
    studio = studio_payments.events.receive(tenant_id, event, engine)
    if studio is not None:
        return studio, False
    return services.webhooks.receive(tenant_id, event, engine), True
