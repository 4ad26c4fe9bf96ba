"""A faithful fake of the slice of Stripe's v1 API Storehouse uses, driven by the official SDK.

Point the SDK at it with ``stripe.StripeClient(key, base_addresses={"api": f"{url}/stripe"})``.
Every ``sk_test_...`` key is its own Stripe account with isolated data. Requests are
form-encoded with nested keys (``metadata[order_id]``, ``line_items[0][price_data][unit_amount]``,
``expand[]``/``expand[0]``); answers are Stripe-shaped objects, list objects and error JSON.

Modelled: Checkout Sessions (payment mode), PaymentIntents, Charges, Refunds, Events, webhook
endpoints, Idempotency-Key replay, ``expand``. The customer's side of Checkout (paying, being
declined, async bank debits settling) is driven through the hosted page at ``session.url`` or the
control routes under ``/_sandbox/stripe``. Webhook delivery lives in ``sandbox.stripe_webhooks``.

Layout: this module has the provider's routes and the hosted Checkout page; ``sandbox.stripe_http``
errors, form decoding, authentication and idempotency; ``sandbox.stripe_objects`` the state;
``sandbox.stripe_checkout`` Checkout Sessions and payments; ``sandbox.stripe_control`` the control
routes; ``sandbox.stripe_webhooks`` webhook delivery.
"""

from __future__ import annotations

import html
import json
from typing import Any, Callable
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sandbox.stripe_checkout import _DECLINES
from sandbox.stripe_control import control
from sandbox.stripe_http import (
    StripeError, _authenticate, _bool, _check_keys, _created_ok, _id, _invalid, _json, _list, _mask_key, _money,
    _no_such, _params, _replay, _Saved, _str)
from sandbox.stripe_objects import STORE, _Account, _Ctx, _type_matches

__all__ = ["NAME", "control", "reset", "router"]

NAME = "stripe"


def reset() -> None:
    """Forget every account, object, event, endpoint, queued delivery and switch."""
    STORE.reset()


# ----- HTTP plumbing -----------------------------------------------------------------------------


async def _call(request: Request, op: Callable[[_Ctx, dict], Any], status: int = 200) -> Response:
    """Authenticate, decode, apply Idempotency-Key, run ``op`` under the lock, expand, answer."""
    request_id = _id("req_", 14)
    headers = {"Request-Id": request_id}
    try:
        key = _authenticate(request)
        params = await _params(request)
        idem = request.headers.get("idempotency-key") if request.method == "POST" else None
        if idem is not None and len(idem) > 255:
            raise _invalid("Idempotency-Key", "Idempotency keys can be at most 255 characters long.")
        path = request.url.path[len(NAME) + 1:]
        fingerprint = json.dumps(params, sort_keys=True)
        with STORE.lock:
            acct = STORE.account(key, request.headers.get("stripe-version"))
            headers["Stripe-Version"] = request.headers.get("stripe-version") or acct.api_version
            on_behalf = request.headers.get("stripe-account")
            if on_behalf and on_behalf != acct.id:
                raise StripeError(403, f"The provided key '{_mask_key(key)}' does not have access to account "
                                       f"'{on_behalf}' (or that account does not exist). Application access may "
                                       f"have been revoked.", type="invalid_request_error",
                                  code="account_invalid")
            if idem is not None and idem in acct.idempotency:
                return _replay(acct.idempotency[idem], idem, path, fingerprint, headers)
            ctx = _Ctx(acct, request_id, idem, f"{str(request.base_url).rstrip('/')}/{NAME}")
            try:
                STORE.sweep_expired(acct)
                result = op(ctx, params)
                body = STORE.expand(acct, result, [_str(e, "expand") for e in _list(params.get("expand", []),
                                                                                         "expand")])
            except StripeError as exc:
                if idem is not None and exc.store:
                    acct.idempotency[idem] = _Saved(path, fingerprint, exc.status, exc.body(request_id),
                                                    request_id)
                raise
            if idem is not None:
                acct.idempotency[idem] = _Saved(path, fingerprint, status, body, request_id)
        return _json(status, body, headers)
    except StripeError as exc:
        # Stripe links failed requests to its request log, but not unauthenticated ones.
        return _json(exc.status, exc.body(request_id if exc.status != 401 else None), {**headers, **exc.headers})


def _events_filters(acct: _Account) -> dict[str, Callable]:
    def delivery(event: dict, value: Any) -> bool:
        return bool(acct.pending.get(event["id"])) != _bool(value, "delivery_success")

    return {
        "type": lambda e, v: _type_matches(e["type"], _str(v, "type")),
        "types": lambda e, v: any(_type_matches(e["type"], _str(t, "types")) for t in _list(v, "types")),
        "delivery_success": delivery,
        "created": lambda e, v: _created_ok(e["created"], v),
    }


def _eq(field_name: str) -> Callable[[dict, Any], bool]:
    return lambda o, v: o.get(field_name) == _str(v, field_name)


_CREATED = {"created": lambda o, v: _created_ok(o["created"], v)}


# ----- the provider's routes ---------------------------------------------------------------------

router = APIRouter()


@router.get("/v1/account")
async def retrieve_account(request: Request) -> Response:
    return await _call(request, lambda c, p: {
        "id": c.acct.id, "object": "account", "business_profile": {"name": "Storehouse sandbox"},
        "charges_enabled": True, "country": "US", "default_currency": "usd", "details_submitted": True,
        "email": None, "payouts_enabled": True, "type": "standard"})


@router.post("/v1/checkout/sessions")
async def create_checkout_session(request: Request) -> Response:
    return await _call(request, STORE.create_session)


@router.get("/v1/checkout/sessions")
async def list_checkout_sessions(request: Request) -> Response:
    filters = {"payment_intent": _eq("payment_intent"), "status": _eq("status"),
               "customer_details": lambda o, v: isinstance(v, dict)
               and (o["customer_details"] or {}).get("email") == v.get("email"),
               **_CREATED}
    return await _call(request, lambda c, p: STORE.list_objects(
        c, c.acct.of_type("checkout.session"), p, "/v1/checkout/sessions", filters))


@router.get("/v1/checkout/sessions/{session_id}")
async def retrieve_checkout_session(request: Request, session_id: str) -> Response:
    return await _call(request, lambda c, p: STORE.get(c.acct, session_id, "checkout.session", "session"))


@router.get("/v1/checkout/sessions/{session_id}/line_items")
async def list_checkout_session_line_items(request: Request, session_id: str) -> Response:
    def op(c: _Ctx, p: dict) -> dict:
        STORE.get(c.acct, session_id, "checkout.session", "session")
        return STORE.list_objects(c, list(c.acct.line_items[session_id]), p,
                                  f"/v1/checkout/sessions/{session_id}/line_items", {})
    return await _call(request, op)


@router.post("/v1/checkout/sessions/{session_id}/expire")
async def expire_checkout_session(request: Request, session_id: str) -> Response:
    def op(c: _Ctx, p: dict) -> dict:
        _check_keys(p, {"expand"})
        return STORE.expire_session(c.acct, STORE.get(c.acct, session_id, "checkout.session", "session"),
                                    c.request)
    return await _call(request, op)


@router.get("/v1/payment_intents")
async def list_payment_intents(request: Request) -> Response:
    return await _call(request, lambda c, p: STORE.list_objects(
        c, c.acct.of_type("payment_intent"), p, "/v1/payment_intents", {**_CREATED, "customer": _eq("customer")}))


@router.get("/v1/payment_intents/{intent_id}")
async def retrieve_payment_intent(request: Request, intent_id: str) -> Response:
    return await _call(request, lambda c, p: STORE.get(c.acct, intent_id, "payment_intent", "intent"))


@router.get("/v1/charges")
async def list_charges(request: Request) -> Response:
    return await _call(request, lambda c, p: STORE.list_objects(
        c, c.acct.of_type("charge"), p, "/v1/charges", {**_CREATED, "payment_intent": _eq("payment_intent")}))


@router.get("/v1/charges/{charge_id}")
async def retrieve_charge(request: Request, charge_id: str) -> Response:
    return await _call(request, lambda c, p: STORE.get(c.acct, charge_id, "charge", "charge"))


@router.post("/v1/refunds")
async def create_refund(request: Request) -> Response:
    return await _call(request, STORE.create_refund)


@router.get("/v1/refunds")
async def list_refunds(request: Request) -> Response:
    return await _call(request, lambda c, p: STORE.list_objects(
        c, c.acct.of_type("refund"), p, "/v1/refunds",
        {**_CREATED, "charge": _eq("charge"), "payment_intent": _eq("payment_intent")}))


@router.get("/v1/refunds/{refund_id}")
async def retrieve_refund(request: Request, refund_id: str) -> Response:
    return await _call(request, lambda c, p: STORE.get(c.acct, refund_id, "refund", "refund"))


@router.get("/v1/events")
async def list_events(request: Request) -> Response:
    def op(c: _Ctx, p: dict) -> dict:
        events = [STORE.render_event(c.acct, e) for e in reversed(c.acct.events.values())]
        return STORE.list_objects(c, events, p, "/v1/events", _events_filters(c.acct))
    return await _call(request, op)


@router.get("/v1/events/{event_id}")
async def retrieve_event(request: Request, event_id: str) -> Response:
    def op(c: _Ctx, p: dict) -> dict:
        event = c.acct.events.get(event_id)
        if event is None:
            raise _no_such("event", event_id)
        return STORE.render_event(c.acct, event)
    return await _call(request, op)


@router.post("/v1/webhook_endpoints")
async def create_webhook_endpoint(request: Request) -> Response:
    return await _call(request, STORE.create_endpoint)


@router.get("/v1/webhook_endpoints")
async def list_webhook_endpoints(request: Request) -> Response:
    return await _call(request, lambda c, p: STORE.list_objects(
        c, list(reversed(c.acct.endpoints.values())), p, "/v1/webhook_endpoints", {}))


@router.get("/v1/webhook_endpoints/{endpoint_id}")
async def retrieve_webhook_endpoint(request: Request, endpoint_id: str) -> Response:
    return await _call(request, lambda c, p: STORE.endpoint(c.acct, endpoint_id))


@router.post("/v1/webhook_endpoints/{endpoint_id}")
async def update_webhook_endpoint(request: Request, endpoint_id: str) -> Response:
    return await _call(request, lambda c, p: STORE.update_endpoint(c, endpoint_id, p))


@router.delete("/v1/webhook_endpoints/{endpoint_id}")
async def delete_webhook_endpoint(request: Request, endpoint_id: str) -> Response:
    return await _call(request, lambda c, p: STORE.delete_endpoint(c, endpoint_id))


# ----- the hosted Checkout page (checkout.stripe.com in real life) ------------------------------

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Checkout (Stripe sandbox)</title></head>
<body style="font-family:sans-serif;max-width:32rem;margin:2rem auto">
<h1>Pay {total}</h1><ul>{items}</ul><p style="color:#b00">{error}</p>{body}</body></html>"""


def _hosted(session_id: str) -> tuple[_Account, dict]:
    with STORE.lock:
        acct, session = STORE.locate(session_id, "checkout.session")
        STORE.sweep_expired(acct)
        return acct, session


@router.get("/c/pay/{session_id}", response_class=HTMLResponse, include_in_schema=False)
def checkout_page(session_id: str, error: str = "") -> HTMLResponse:
    try:
        acct, session = _hosted(session_id)
    except StripeError:
        return HTMLResponse("<h1>Something went wrong</h1><p>This page could not be found.</p>", 404)
    items = "".join(f"<li>{html.escape(i['description'])} × {i['quantity']}: "
                    f"{_money(i['amount_total'], i['currency'])}</li>" for i in acct.line_items[session_id])
    if session["status"] != "open":
        body = f"<p>This Checkout Session is {html.escape(session['status'])}.</p>"
    else:
        options = "".join(f"<option>{code}</option>" for code in _DECLINES)
        body = (f'<form method="post"><input name="email" placeholder="email" '
                f'value="{html.escape(session["customer_email"] or "")}">'
                f'<button name="action" value="pay">Pay with 4242 4242 4242 4242</button>'
                f'<button name="action" value="pay_async">Pay by bank debit</button></form>'
                f'<form method="post"><select name="decline_code">{options}</select>'
                f'<button name="action" value="decline">Pay with a declined card</button></form>'
                + (f'<p><a href="{html.escape(session["cancel_url"])}">Back (cancel)</a></p>'
                   if session["cancel_url"] else ""))
    return HTMLResponse(_PAGE.format(total=_money(session["amount_total"], session["currency"]), items=items,
                                     error=html.escape(error), body=body))


@router.post("/c/pay/{session_id}", include_in_schema=False)
async def checkout_page_submit(request: Request, session_id: str) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    action = form.get("action", "pay")
    try:
        with STORE.lock:
            if action == "decline":
                STORE.decline(session_id, form.get("decline_code", "generic_decline"))
                _, message, _ = _DECLINES.get(form.get("decline_code", ""), _DECLINES["generic_decline"])
                return RedirectResponse(f"/{NAME}/c/pay/{session_id}?error={quote(message)}", status_code=303)
            session = STORE.pay(session_id, form.get("email") or None, None, action == "pay_async")
    except StripeError as exc:
        return HTMLResponse(f"<p>{html.escape(exc.message)}</p>", exc.status)
    if session["success_url"]:
        return RedirectResponse(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id), 303)
    return HTMLResponse("<h1>Thanks for your order</h1>")


# Stripe answers any other path with this 404; registered last so it only catches leftovers.
@router.api_route("/{path:path}", methods=["GET", "POST", "DELETE", "PUT", "PATCH"], include_in_schema=False)
async def unrecognized(request: Request, path: str) -> Response:
    message = (f"Unrecognized request URL ({request.method}: /{path}). Please see https://stripe.com/docs or we "
               f"can help at https://support.stripe.com/.")
    return _json(404, StripeError(404, message).body(), {"Request-Id": _id("req_", 14)})
