"""Sandbox-only control routes of the Stripe fake, mounted at ``/_sandbox/stripe``.

The customer's side of Checkout (pay, decline, settle an async debit, expire), webhook delivery
switches, resending events, the delivery log, waiting for deliveries to settle, and signing
arbitrary payloads with an endpoint's secret.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from sandbox.stripe_checkout import _DECLINES
from sandbox.stripe_http import StripeError, _json, _missing, _no_such
from sandbox.stripe_objects import STORE, _subscribed
from sandbox.stripe_webhooks import DeliverySwitches, signature_header

control = APIRouter()


class PayBody(BaseModel):
    email: str | None = Field(None, description="customer email (default: the session's customer_email)")
    name: str | None = None
    async_payment: bool = Field(False, description="bank debit: completes unpaid, settle later")


class DeclineBody(BaseModel):
    decline_code: str = Field("generic_decline", description=", ".join(_DECLINES))


class SettleBody(BaseModel):
    succeeded: bool = True
    failure_code: str = "insufficient_funds"


class ResendBody(BaseModel):
    endpoint: str | None = Field(None, description="a we_ id; default: every enabled subscribed endpoint")


class FlushBody(BaseModel):
    timeout_s: float = Field(10.0, ge=0, le=120)
    api_key: str | None = Field(None, description="only this account's deliveries (default: all)")


class SignBody(BaseModel):
    payload: Any = Field(None, description="JSON to serialise and sign")
    raw: str | None = Field(None, description="exact body to sign (instead of payload)")
    secret: str | None = Field(None, description="whsec_ secret; or give endpoint")
    endpoint: str | None = Field(None, description="we_ id whose secret to use")
    timestamp: int | None = Field(None, description="unix time in the header (default: now)")


def _control_call(fn: Callable[[], Any]) -> Response:
    try:
        with STORE.lock:
            return _json(200, fn())
    except StripeError as exc:
        return _json(exc.status, exc.body())


def _session_out(session: dict) -> dict:
    acct = STORE.accounts[STORE.owner[session["id"]]]
    out = STORE.expand(acct, session, [])
    out["payment_intent"] = STORE.expand(acct, acct.objects[session["payment_intent"]], ["latest_charge"]) \
        if session["payment_intent"] else None
    return out


@control.post("/checkout/sessions/{session_id}/pay")
def control_pay(session_id: str, body: PayBody | None = None) -> Response:
    body = body or PayBody()
    return _control_call(lambda: _session_out(STORE.pay(session_id, body.email, body.name, body.async_payment)))


@control.post("/checkout/sessions/{session_id}/decline")
def control_decline(session_id: str, body: DeclineBody | None = None) -> Response:
    body = body or DeclineBody()
    return _control_call(lambda: _session_out(STORE.decline(session_id, body.decline_code)))


@control.post("/checkout/sessions/{session_id}/settle")
def control_settle(session_id: str, body: SettleBody | None = None) -> Response:
    body = body or SettleBody()
    return _control_call(lambda: _session_out(STORE.settle_async(session_id, body.succeeded, body.failure_code)))


@control.post("/checkout/sessions/{session_id}/expire")
def control_expire(session_id: str) -> Response:
    def run() -> dict:
        acct, session = STORE.locate(session_id, "checkout.session")
        return _session_out(STORE.expire_session(acct, session))
    return _control_call(run)


@control.get("/delivery")
def get_delivery_switches() -> dict:
    return STORE.dispatcher.switches_snapshot()


@control.put("/delivery")
def set_global_delivery_switches(switches: DeliverySwitches) -> dict:
    STORE.dispatcher.set_switches(None, switches)
    return STORE.dispatcher.switches_snapshot()


@control.put("/accounts/{api_key}/delivery")
def set_account_delivery_switches(api_key: str, switches: DeliverySwitches) -> dict:
    STORE.dispatcher.set_switches(api_key, switches)
    return STORE.dispatcher.switches_snapshot()


@control.delete("/delivery")
def clear_delivery_switches(api_key: str | None = None) -> dict:
    STORE.dispatcher.clear_switches(api_key)
    return STORE.dispatcher.switches_snapshot()


@control.post("/events/{event_id}/resend")
def resend_event(event_id: str, body: ResendBody | None = None) -> Response:
    body = body or ResendBody()

    def run() -> dict:
        key = STORE.owner.get(event_id)
        event = STORE.accounts[key].events.get(event_id) if key in STORE.accounts else None
        if event is None:
            raise _no_such("event", event_id)
        acct = STORE.accounts[key]
        if body.endpoint:
            targets = [STORE.endpoint(acct, body.endpoint)["id"]]
        else:
            targets = [e["id"] for e in acct.endpoints.values()
                       if e["status"] == "enabled" and _subscribed(e["enabled_events"], event["type"])]
        acct.pending.setdefault(event_id, set()).update(targets)
        queued = STORE.dispatcher.resend(key, event_id, event["type"], json.dumps(event, indent=2), targets)
        return {"event": event_id, "queued": queued, "endpoints": targets}
    return _control_call(run)


@control.get("/deliveries")
def list_deliveries(api_key: str | None = None, event: str | None = None, endpoint: str | None = None,
                    type: str | None = None) -> dict:
    attempts = STORE.dispatcher.attempts(account=api_key, event_id=event, endpoint_id=endpoint, event_type=type)
    return {"object": "list", "data": attempts, "count": len(attempts)}


@control.post("/flush")
def flush_deliveries(body: FlushBody | None = None) -> dict:
    body = body or FlushBody()
    return STORE.dispatcher.wait_settled(body.api_key, body.timeout_s)


@control.post("/sign")
def sign_payload(body: SignBody) -> Response:
    secret = body.secret
    if secret is None and body.endpoint:
        with STORE.lock:
            key = STORE.owner.get(body.endpoint)
            secret = STORE.accounts[key].endpoint_secrets.get(body.endpoint) if key in STORE.accounts else None
        if secret is None:
            return _json(404, _no_such("webhook endpoint", body.endpoint).body())
    if secret is None:
        return _json(400, _missing("secret").body())
    raw = body.raw if body.raw is not None else json.dumps(body.payload, indent=2)
    header, timestamp = signature_header(secret, raw, body.timestamp)
    return _json(200, {"body": raw, "stripe_signature": header, "timestamp": timestamp})
