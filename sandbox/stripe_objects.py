"""The Stripe fake's state: accounts and their objects, events, webhook endpoints, refunds, lists.

Every ``sk_test_...`` key is its own ``_Account`` with isolated data. ``StripeStore`` holds them
all, records events and hands them to ``sandbox.stripe_webhooks`` for delivery, creates refunds
and webhook endpoints, and renders lists and ``expand``; Checkout (sessions, PaymentIntents,
Charges) comes from ``sandbox.stripe_checkout.CheckoutMixin``. ``STORE`` is the one instance.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from sandbox.stripe_checkout import CheckoutMixin
from sandbox.stripe_http import (
    StripeError, _bool, _check_keys, _id, _int, _invalid, _list, _metadata, _missing, _money, _no_such, _now,
    _Saved, _str)
from sandbox.stripe_webhooks import WebhookDispatcher

# The version the pinned SDK sends; an account adopts the first Stripe-Version it sees.
DEFAULT_API_VERSION = "2026-10-28.endive"


@dataclass
class _Account:
    key: str
    id: str
    api_version: str
    objects: dict[str, dict] = field(default_factory=dict)  # every object by id, in creation order
    line_items: dict[str, list[dict]] = field(default_factory=dict)
    events: dict[str, dict] = field(default_factory=dict)
    pending: dict[str, set[str]] = field(default_factory=dict)  # event -> endpoints not yet delivered
    endpoints: dict[str, dict] = field(default_factory=dict)
    endpoint_secrets: dict[str, str] = field(default_factory=dict)
    idempotency: dict[str, _Saved] = field(default_factory=dict)
    open_sessions: set[str] = field(default_factory=set)
    expiry_queue: list[tuple[int, str]] = field(default_factory=list)  # a heap of (expires_at, session id)
    intent_specs: dict[str, dict] = field(default_factory=dict)  # session -> its future PaymentIntent

    def of_type(self, object_name: str) -> list[dict]:
        """Objects of one type, newest first (Stripe's list order)."""
        return [o for o in reversed(self.objects.values()) if o.get("object") == object_name]


@dataclass
class _Ctx:
    acct: _Account
    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str = ""  # where the fake is mounted, e.g. "http://127.0.0.1:8900/stripe"

    @property
    def request(self) -> dict:
        return {"id": self.request_id, "idempotency_key": self.idempotency_key}


class StripeStore(CheckoutMixin):
    """All accounts' objects and the operations on them; callers hold ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.accounts: dict[str, _Account] = {}
        self.owner: dict[str, str] = {}  # object id -> account key, for control routes
        self.dispatcher = WebhookDispatcher(self._endpoint_target, self._mark_delivered)

    def reset(self) -> None:
        with self.lock:
            self.accounts.clear()
            self.owner.clear()
        self.dispatcher.reset()

    def account(self, key: str, api_version: str | None = None) -> _Account:
        acct = self.accounts.get(key)
        if acct is None:
            acct = self.accounts[key] = _Account(key=key, id=_id("acct_", 16),
                                                 api_version=api_version or DEFAULT_API_VERSION)
        return acct

    def locate(self, object_id: str, object_name: str) -> tuple[_Account, dict]:
        """Find an object from a control route, which carries no API key."""
        key = self.owner.get(object_id)
        obj = self.accounts[key].objects.get(object_id) if key in self.accounts else None
        if obj is None or obj.get("object") != object_name:
            raise _no_such(object_name, object_id)
        return self.accounts[key], obj

    def _add(self, acct: _Account, obj: dict) -> dict:
        acct.objects[obj["id"]] = obj
        self.owner[obj["id"]] = acct.key
        return obj

    def get(self, acct: _Account, object_id: str, object_name: str, param: str = "id") -> dict:
        obj = acct.objects.get(object_id)
        if obj is None or obj.get("object") != object_name:
            raise _no_such(object_name, object_id, param)
        return obj

    # ----- events and webhooks ----------------------------------------------------------------

    def emit(self, acct: _Account, event_type: str, obj: dict, request: dict | None = None,
             previous: dict | None = None) -> dict:
        """Record an event and queue it for every subscribed, enabled endpoint."""
        targets = [e["id"] for e in acct.endpoints.values()
                   if e["status"] == "enabled" and _subscribed(e["enabled_events"], event_type)]
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = previous
        event = {"id": _id("evt_"), "object": "event", "api_version": acct.api_version, "created": _now(),
                 "data": data, "livemode": False, "pending_webhooks": len(targets),
                 "request": request or {"id": None, "idempotency_key": None}, "type": event_type}
        acct.events[event["id"]] = event
        acct.pending[event["id"]] = set(targets)
        self.owner[event["id"]] = acct.key
        self.dispatcher.submit(acct.key, event["id"], event_type, json.dumps(event, indent=2), targets)
        return event

    def _endpoint_target(self, key: str, endpoint_id: str) -> tuple[str, str] | None:
        with self.lock:
            acct = self.accounts.get(key)
            endpoint = acct.endpoints.get(endpoint_id) if acct else None
            if endpoint is None or endpoint["status"] != "enabled":
                return None
            return endpoint["url"], acct.endpoint_secrets[endpoint_id]

    def _mark_delivered(self, key: str, event_id: str, endpoint_id: str) -> None:
        with self.lock:
            acct = self.accounts.get(key)
            if acct and event_id in acct.pending:
                acct.pending[event_id].discard(endpoint_id)

    def render_event(self, acct: _Account, event: dict) -> dict:
        out = copy.deepcopy(event)
        out["pending_webhooks"] = len(acct.pending.get(event["id"], ()))
        return out


    # ----- Refunds ------------------------------------------------------------------------------

    def create_refund(self, ctx: _Ctx, p: dict) -> dict:
        _check_keys(p, {"amount", "charge", "payment_intent", "reason", "metadata", "expand",
                        "instructions_email"},
                    not_modelled={"refund_application_fee", "reverse_transfer", "origin", "currency", "customer"})
        acct = ctx.acct
        amount = _int(p["amount"], "amount", 1) if "amount" in p else None
        reason = p.get("reason")
        if reason is not None and reason not in ("duplicate", "fraudulent", "requested_by_customer"):
            raise _invalid("reason", "Invalid reason: must be one of duplicate, fraudulent, or "
                                     "requested_by_customer")
        metadata = _metadata(p.get("metadata"))
        if "payment_intent" in p:
            pi = self.get(acct, _str(p["payment_intent"], "payment_intent"), "payment_intent", "payment_intent")
            if pi["status"] != "succeeded" or not pi["latest_charge"]:
                raise StripeError(400, f"This PaymentIntent ({pi['id']}) does not have a successful charge to "
                                       f"refund.", code="charge_not_refundable", param="payment_intent")
            charge = acct.objects[pi["latest_charge"]]
            if "charge" in p and p["charge"] != charge["id"]:
                raise _invalid("charge", "The charge does not belong to the PaymentIntent.")
        elif "charge" in p:
            charge = self.get(acct, _str(p["charge"], "charge"), "charge", "charge")
            if charge["status"] != "succeeded":
                raise StripeError(400, f"Charge {charge['id']} has not succeeded and cannot be refunded.",
                                  code="charge_not_refundable", param="charge")
        else:
            raise StripeError(400, "One of the following params should be provided for this request: "
                                   "payment_intent or charge.", code="parameter_missing", store=False)
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeError(400, f"Charge {charge['id']} has already been refunded.",
                              code="charge_already_refunded")
        if amount is None:
            amount = remaining
        elif amount > remaining:
            cur = charge["currency"]
            raise StripeError(400, f"Refund amount ({_money(amount, cur)}) is greater than unrefunded amount on "
                                   f"charge ({_money(remaining, cur)})", code="amount_too_large", param="amount")
        refund = self._add(acct, {
            "id": _id("re_"), "object": "refund", "amount": amount, "balance_transaction": _id("txn_"),
            "charge": charge["id"], "created": _now(), "currency": charge["currency"],
            "destination_details": {"card": {"reference_status": "pending", "reference_type":
                                             "acquirer_reference_number", "type": "refund"}, "type": "card"},
            "metadata": metadata, "payment_intent": charge["payment_intent"], "reason": reason,
            "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
            "transfer_reversal": None})
        previous = {"amount_refunded": charge["amount_refunded"]}
        charge["amount_refunded"] += amount
        if charge["amount_refunded"] == charge["amount_captured"]:
            previous["refunded"] = False
            charge["refunded"] = True
        self.emit(acct, "charge.refunded", charge, ctx.request, previous)
        self.emit(acct, "refund.created", refund, ctx.request)
        return refund

    # ----- webhook endpoints --------------------------------------------------------------------

    def create_endpoint(self, ctx: _Ctx, p: dict) -> dict:
        _check_keys(p, {"url", "enabled_events", "description", "metadata", "api_version", "expand"},
                    not_modelled={"connect"})
        for key in ("url", "enabled_events"):
            if key not in p:
                raise _missing(key)
        endpoint = {"id": _id("we_"), "object": "webhook_endpoint",
                    "api_version": p.get("api_version"), "application": None, "created": _now(),
                    "description": p.get("description"), "enabled_events": [], "livemode": False,
                    "metadata": {}, "status": "enabled", "url": ""}
        self._update_endpoint(endpoint, p)
        secret = "whsec_" + _id("", 32)
        ctx.acct.endpoints[endpoint["id"]] = endpoint
        ctx.acct.endpoint_secrets[endpoint["id"]] = secret
        self.owner[endpoint["id"]] = ctx.acct.key
        return {**endpoint, "secret": secret}

    def update_endpoint(self, ctx: _Ctx, endpoint_id: str, p: dict) -> dict:
        endpoint = self.endpoint(ctx.acct, endpoint_id)
        _check_keys(p, {"url", "enabled_events", "description", "metadata", "disabled", "expand"})
        draft = dict(endpoint)
        self._update_endpoint(draft, p)  # validate everything before changing anything
        endpoint.update(draft)
        return endpoint

    @staticmethod
    def _update_endpoint(endpoint: dict, p: dict) -> None:
        if "url" in p:
            url = _str(p["url"], "url")
            if not re.match(r"https?://[^\s/]+", url):
                raise _invalid("url", f"Invalid URL: {url}. URLs must begin with http:// or https://",
                               code="url_invalid")
            endpoint["url"] = url
        if "enabled_events" in p:
            events = [_str(e, f"enabled_events[{i}]") for i, e in
                      enumerate(_list(p["enabled_events"], "enabled_events"))]
            for i, name in enumerate(events):
                if name != "*" and not re.fullmatch(r"[a-z_]+(\.[a-z_]+)+(\.\*)?", name):
                    raise _invalid(f"enabled_events[{i}]", f"Invalid event type: {name}")
            if not events:
                raise _missing("enabled_events")
            endpoint["enabled_events"] = events
        if "description" in p:
            endpoint["description"] = p["description"] or None
        if "metadata" in p:
            endpoint["metadata"] = _metadata(p["metadata"])
        if "disabled" in p:
            endpoint["status"] = "disabled" if _bool(p["disabled"], "disabled") else "enabled"

    def endpoint(self, acct: _Account, endpoint_id: str) -> dict:
        endpoint = acct.endpoints.get(endpoint_id)
        if endpoint is None:
            raise _no_such("webhook endpoint", endpoint_id)
        return endpoint

    def delete_endpoint(self, ctx: _Ctx, endpoint_id: str) -> dict:
        self.endpoint(ctx.acct, endpoint_id)
        del ctx.acct.endpoints[endpoint_id]
        del ctx.acct.endpoint_secrets[endpoint_id]
        for pending in ctx.acct.pending.values():
            pending.discard(endpoint_id)
        return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}

    # ----- reading: lists and expansion ---------------------------------------------------------

    def list_objects(self, ctx: _Ctx, items: list[dict], p: dict, url: str, filters: dict[str, Callable]) -> dict:
        _check_keys(p, {"limit", "starting_after", "ending_before", "expand", *filters})
        for name, keep in filters.items():
            if name in p:
                items = [o for o in items if keep(o, p[name])]
        limit = _int(p.get("limit", 10), "limit", 1, 100)
        ids = [o["id"] for o in items]
        if "starting_after" in p:
            cursor = _str(p["starting_after"], "starting_after")
            if cursor not in ids:
                raise _no_such("object", cursor, "starting_after")
            start = ids.index(cursor) + 1
            page, has_more = items[start:start + limit], start + limit < len(items)
        elif "ending_before" in p:
            cursor = _str(p["ending_before"], "ending_before")
            if cursor not in ids:
                raise _no_such("object", cursor, "ending_before")
            end = ids.index(cursor)
            page, has_more = items[max(0, end - limit):end], end - limit > 0
        else:
            page, has_more = items[:limit], len(items) > limit
        return {"object": "list", "data": page, "has_more": has_more, "url": url}

    def expand(self, acct: _Account, obj: Any, paths: list[str]) -> Any:
        """Deep-copy ``obj`` for output, replacing ids (and virtual lists) named by ``expand``."""
        out = copy.deepcopy(obj)
        for n, path in enumerate(paths):
            self._expand_path(acct, out, path.split("."), path, f"expand[{n}]")
        return out

    def _expand_path(self, acct: _Account, obj: Any, parts: list[str], path: str, param: str) -> None:
        if not parts or obj is None:
            return
        head, rest = parts[0], parts[1:]
        if isinstance(obj, dict) and obj.get("object") == "list" and head == "data":
            for item in obj["data"]:
                self._expand_path(acct, item, rest, path, param)
            return
        if not isinstance(obj, dict):
            raise _invalid(param, f"This property cannot be expanded ({head}).")
        kind = obj.get("object")
        if kind == "checkout.session" and head == "line_items":
            items = acct.line_items.get(obj["id"], [])
            obj[head] = {"object": "list", "data": copy.deepcopy(items), "has_more": False,
                         "url": f"/v1/checkout/sessions/{obj['id']}/line_items"}
        elif kind == "charge" and head == "refunds":
            refunds = [r for r in acct.of_type("refund") if r["charge"] == obj["id"]]
            obj[head] = {"object": "list", "data": copy.deepcopy(refunds), "has_more": False,
                         "url": f"/v1/charges/{obj['id']}/refunds"}
        elif isinstance(obj.get(head), str):
            target = acct.objects.get(obj[head])
            if target is None:
                raise _invalid(param, f"This property cannot be expanded ({head}). The Storehouse Stripe "
                                      f"sandbox does not model the object {obj[head]!r}.")
            obj[head] = copy.deepcopy(target)
        elif head not in obj:
            raise _invalid(param, f"This property cannot be expanded ({head}).")
        self._expand_path(acct, obj[head], rest, path, param)


def _subscribed(enabled: list[str], event_type: str) -> bool:
    return any(e == "*" or e == event_type or (e.endswith(".*") and event_type.startswith(e[:-1]))
               for e in enabled)


def _type_matches(event_type: str, wanted: str) -> bool:
    return wanted == event_type or (wanted.endswith("*") and event_type.startswith(wanted[:-1]))


STORE = StripeStore()
