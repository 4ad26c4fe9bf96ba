"""A faithful fake of the slice of Stripe's v1 API Storehouse uses, driven by the official SDK.

Point the SDK at it with ``stripe.StripeClient(key, base_addresses={"api": f"{url}/stripe"})``.
Every ``sk_test_...`` key is its own Stripe account with isolated data. Requests are
form-encoded with nested keys (``metadata[order_id]``, ``line_items[0][price_data][unit_amount]``,
``expand[]``/``expand[0]``); answers are Stripe-shaped objects, list objects and error JSON.

Modelled: Checkout Sessions (payment mode), PaymentIntents, Charges, Refunds, Events, webhook
endpoints, Idempotency-Key replay, ``expand``. The customer's side of Checkout (paying, being
declined, async bank debits settling) is driven through the hosted page at ``session.url`` or the
control routes under ``/_sandbox/stripe``. Webhook delivery lives in ``sandbox.stripe_webhooks``.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from sandbox.stripe_webhooks import DeliverySwitches, WebhookDispatcher, signature_header

NAME = "stripe"
# The version the pinned SDK sends; an account adopts the first Stripe-Version it sees.
DEFAULT_API_VERSION = "2026-10-28.endive"

_ALNUM = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"sk_test_[A-Za-z0-9_\-]+")
_ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf",
                 "xof", "xpf"}
_MINIMUM_CHARGE = {"usd": 50, "eur": 50, "cad": 50, "aud": 50, "chf": 50, "gbp": 30, "jpy": 50, "nzd": 50}
_DECLINES = {  # decline_code -> (error code, message, last4 of Stripe's matching test card)
    "generic_decline": ("card_declined", "Your card was declined.", "0002"),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds.", "9995"),
    "lost_card": ("card_declined", "Your card was declined.", "9987"),
    "stolen_card": ("card_declined", "Your card was declined.", "9979"),
    "fraudulent": ("card_declined", "Your card was declined.", "0019"),
    "do_not_honor": ("card_declined", "Your card was declined.", "0002"),
    "expired_card": ("expired_card", "Your card has expired.", "0069"),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect.", "0127"),
    "processing_error": ("processing_error",
                         "An error occurred while processing your card. Try again in a little bit.", "0119"),
}


def _now() -> int:
    return int(time.time())


def _id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def _mask_key(key: str) -> str:
    return key if len(key) <= 12 else f"{key[:8]}{'*' * (len(key) - 12)}{key[-4:]}"


# ----- errors ---------------------------------------------------------------------------------


class StripeError(Exception):
    """An error answered as Stripe's ``{"error": {...}}``.

    ``store`` is False for parameter validation failures: Stripe saves an idempotent result
    only once the endpoint has started executing.
    """

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, store: bool = True,
                 extra: dict | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.code, self.param, self.store = code, param, store
        self.extra, self.headers = extra or {}, headers or {}

    def body(self, request_id: str | None = None) -> dict:
        error: dict[str, Any] = {}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error["message"] = self.message
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        if request_id:
            error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        error["type"] = self.type
        return {"error": error}


def _missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param, store=False)


def _invalid(param: str, message: str, code: str = "parameter_invalid") -> StripeError:
    return StripeError(400, message, code=code, param=param, store=False)


def _unknown(param: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param, store=False)


def _not_modelled(param: str) -> StripeError:
    return StripeError(400, f"The Storehouse Stripe sandbox does not model the parameter `{param}`.",
                       code="parameter_unknown", param=param, store=False)


def _no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


# ----- form decoding and parameter helpers -----------------------------------------------------

_KEY_PARTS = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(pairs: list[tuple[str, str]]) -> dict:
    """Turn ``a[b][0][c]=v`` / ``expand[]=v`` pairs into nested dicts and lists, as Stripe does."""
    root: dict = {}
    for key, value in pairs:
        match = _KEY_PARTS.match(key)
        if not match:
            raise _invalid(key, f"Invalid parameter name: {key}")
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for depth, part in enumerate(parts):
            if part == "":  # `[]` appends to an array
                part = str(sum(1 for k in node if k.isdigit()))
            if depth == len(parts) - 1:
                if isinstance(node.get(part), dict):
                    raise _invalid(key, f"Invalid value for {key}: expected a hash")
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise _invalid(key, f"Invalid hash for {parts[0]}")
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _check_keys(params: dict, allowed: set[str], prefix: str = "", not_modelled: set[str] = frozenset()) -> None:
    for key in params:
        name = f"{prefix}[{key}]" if prefix else key
        if key in not_modelled:
            raise _not_modelled(name)
        if key not in allowed:
            raise _unknown(name)


def _str(value: Any, param: str) -> str:
    if isinstance(value, (dict, list)):
        raise _invalid(param, f"Invalid string: {json.dumps(value)}", code="parameter_invalid_string")
    return str(value)


def _int(value: Any, param: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, (dict, list)) or not re.fullmatch(r"-?\d+", str(value)):
        raise _invalid(param, f"Invalid integer: {value}", code="parameter_invalid_integer")
    number = int(value)
    if minimum is not None and number < minimum:
        raise _invalid(param, f"This value must be greater than or equal to {minimum}.",
                       code="parameter_invalid_integer")
    if maximum is not None and number > maximum:
        raise _invalid(param, f"This value must be less than or equal to {maximum}.",
                       code="parameter_invalid_integer")
    return number


def _bool(value: Any, param: str) -> bool:
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise _invalid(param, f"Invalid boolean: {value}")


def _list(value: Any, param: str) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, dict) or value is None:
        raise _invalid(param, "Invalid array", code="parameter_invalid_array")
    return [value]  # a bare `expand=x` is accepted as a one-element array


def _metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise _invalid(param, "Invalid object")
    out: dict[str, str] = {}
    for key, val in value.items():
        if isinstance(val, (dict, list)):
            raise _invalid(f"{param}[{key}]", f"Invalid value for {param}[{key}]: must be a string")
        if len(key) > 40:
            raise _invalid(param, "Metadata keys can have a maximum length of 40 characters.")
        if len(val) > 500:
            raise _invalid(f"{param}[{key}]", f"Metadata values can have up to 500 characters, but you "
                                              f"passed in a value that is {len(val)} characters.")
        if val != "":  # an empty value means "unset"
            out[key] = val
    if len(out) > 50:
        raise _invalid(param, "You can have up to 50 metadata keys.")
    return out


def _currency(value: Any, param: str) -> str:
    cur = _str(value, param).lower()
    if not re.fullmatch(r"[a-z]{3}", cur):
        raise _invalid(param, f"Invalid currency: {cur}.", code="parameter_invalid_string")
    return cur


def _money(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$", "jpy": "¥"}.get(currency)
    value = f"{amount:d}" if currency in _ZERO_DECIMAL else f"{amount / 100:.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


def _created_ok(created: int, flt: Any) -> bool:
    if flt is None:
        return True
    if not isinstance(flt, dict):
        return created == _int(flt, "created")
    ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    _check_keys(flt, set(ops), "created")
    return all(ops[op](created, _int(v, f"created[{op}]")) for op, v in flt.items())


# ----- state ----------------------------------------------------------------------------------


@dataclass
class _Saved:
    """The stored first response for one idempotency key."""

    path: str
    params: str
    status: int
    body: Any
    request_id: str


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
    intent_specs: dict[str, dict] = field(default_factory=dict)  # session -> its future PaymentIntent

    def of_type(self, object_name: str) -> list[dict]:
        """Objects of one type, newest first (Stripe's list order)."""
        return [o for o in reversed(self.objects.values()) if o.get("object") == object_name]


@dataclass
class _Ctx:
    acct: _Account
    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str = ""

    @property
    def request(self) -> dict:
        return {"id": self.request_id, "idempotency_key": self.idempotency_key}


class StripeStore:
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

    # ----- Checkout Sessions --------------------------------------------------------------------

    _SESSION_PARAMS = {"mode", "line_items", "success_url", "cancel_url", "metadata", "client_reference_id",
                       "customer_email", "payment_intent_data", "expires_at", "expand", "currency", "locale",
                       "submit_type", "payment_method_types", "billing_address_collection",
                       "allow_promotion_codes", "ui_mode"}
    _SESSION_NOT_MODELLED = {"adaptive_pricing", "after_expiration", "automatic_tax", "branding_settings",
                             "consent_collection", "custom_fields", "custom_text", "customer", "customer_creation",
                             "customer_update", "discounts", "excluded_payment_method_types", "invoice_creation",
                             "name_collection", "optional_items", "origin_context", "payment_method_collection",
                             "payment_method_configuration", "payment_method_data", "payment_method_options",
                             "permissions", "phone_number_collection", "redirect_on_completion", "return_url",
                             "saved_payment_method_options", "setup_intent_data", "shipping_address_collection",
                             "shipping_options", "subscription_data", "tax_id_collection", "wallet_options"}

    def create_session(self, ctx: _Ctx, p: dict) -> dict:
        _check_keys(p, self._SESSION_PARAMS, not_modelled=self._SESSION_NOT_MODELLED)
        mode = _str(p.get("mode", "payment"), "mode")
        if mode not in ("payment", "setup", "subscription"):
            raise _invalid("mode", "Invalid mode: must be one of payment, setup, or subscription")
        if mode != "payment":
            raise _invalid("mode", f"The Storehouse Stripe sandbox only models mode=payment, not {mode}.")
        if _str(p.get("ui_mode", "hosted"), "ui_mode") != "hosted":
            raise _invalid("ui_mode", "The Storehouse Stripe sandbox only models ui_mode=hosted.")
        now = _now()
        items, products = self._line_items(ctx.acct, p.get("line_items"), now)
        currency = items[0]["currency"]
        if "currency" in p and _currency(p["currency"], "currency") != currency:
            raise _invalid("currency", "The currency must match the currency of the line items.")
        total = sum(i["amount_total"] for i in items)
        minimum = _MINIMUM_CHARGE.get(currency)
        if minimum and 0 < total < minimum:
            raise _invalid("line_items", f"The Checkout Session's total amount due must add up to at least "
                                         f"{_money(minimum, currency)} {currency}")
        expires_at = now + 24 * 3600
        if "expires_at" in p:
            expires_at = _int(p["expires_at"], "expires_at")
            if expires_at - now > 24 * 3600:
                raise _invalid("expires_at", "The `expires_at` timestamp must be less than 24 hours from "
                                             "Checkout Session creation.")
            if expires_at - now < 30 * 60:
                raise _invalid("expires_at", "The `expires_at` timestamp must be at least 30 minutes from "
                                             "Checkout Session creation.")
        email = p.get("customer_email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", _str(email, "customer_email")):
            raise _invalid("customer_email", f"Invalid email address: {email}", code="email_invalid")
        pid = p.get("payment_intent_data") or {}
        if not isinstance(pid, dict):
            raise _invalid("payment_intent_data", "Invalid object")
        _check_keys(pid, {"metadata", "description", "receipt_email", "capture_method", "statement_descriptor",
                          "statement_descriptor_suffix"}, "payment_intent_data",
                    not_modelled={"application_fee_amount", "on_behalf_of", "setup_future_usage", "shipping",
                                  "transfer_data", "transfer_group"})
        if pid.get("capture_method", "automatic") not in ("automatic", "automatic_async"):
            raise _invalid("payment_intent_data[capture_method]",
                           "The Storehouse Stripe sandbox only models automatic capture.")
        for key in ("success_url", "cancel_url"):
            if key in p and not re.match(r"https?://", _str(p[key], key)):
                raise _invalid(key, "Not a valid URL", code="url_invalid")
        session_id = _id("cs_test_", 58)
        for product in products:
            self._add(ctx.acct, product)
        session = {
            "id": session_id, "object": "checkout.session", "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": _bool(p["allow_promotion_codes"], "allow_promotion_codes")
            if "allow_promotion_codes" in p else None,
            "amount_subtotal": total, "amount_total": total,
            "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
            "billing_address_collection": p.get("billing_address_collection"),
            "cancel_url": p.get("cancel_url"), "client_reference_id": p.get("client_reference_id"),
            "client_secret": None, "consent": None, "consent_collection": None, "created": now,
            "currency": currency, "custom_fields": [],
            "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                            "terms_of_service_acceptance": None},
            "customer": None, "customer_creation": "if_required", "customer_details": None,
            "customer_email": email, "discounts": [], "expires_at": expires_at, "invoice": None,
            "livemode": False, "locale": p.get("locale"), "metadata": _metadata(p.get("metadata")),
            "mode": "payment", "payment_intent": None, "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": [_str(t, "payment_method_types") for t in
                                     _list(p.get("payment_method_types", ["card"]), "payment_method_types")],
            "payment_status": "unpaid", "phone_number_collection": {"enabled": False},
            "recovered_from": None, "setup_intent": None, "shipping_address_collection": None,
            "shipping_cost": None, "shipping_options": [], "status": "open",
            "submit_type": p.get("submit_type"), "subscription": None, "success_url": p.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted", "url": f"{ctx.base_url}/{NAME}/c/pay/{session_id}",
        }
        self._add(ctx.acct, session)
        ctx.acct.line_items[session_id] = items
        ctx.acct.open_sessions.add(session_id)
        ctx.acct.intent_specs[session_id] = {
            "metadata": _metadata(pid.get("metadata"), "payment_intent_data[metadata]"),
            "description": pid.get("description"), "receipt_email": pid.get("receipt_email"),
            "statement_descriptor": pid.get("statement_descriptor"),
            "statement_descriptor_suffix": pid.get("statement_descriptor_suffix"),
        }
        return session

    def _line_items(self, acct: _Account, raw: Any, now: int) -> tuple[list[dict], list[dict]]:
        if raw in (None, "", []):
            raise _missing("line_items")
        items, products = [], []
        for n, item in enumerate(_list(raw, "line_items")):
            at = f"line_items[{n}]"
            if not isinstance(item, dict):
                raise _invalid(at, "Invalid object")
            _check_keys(item, {"price_data", "quantity", "price"}, at,
                        not_modelled={"adjustable_quantity", "dynamic_tax_rates", "tax_rates"})
            if "price" in item:
                raise _no_such("price", _str(item["price"], f"{at}[price]"), f"{at}[price]")
            price_data = item.get("price_data")
            if not isinstance(price_data, dict):
                raise _missing(f"{at}[price_data]")
            _check_keys(price_data, {"currency", "unit_amount", "unit_amount_decimal", "product_data",
                                     "product", "tax_behavior"}, f"{at}[price_data]",
                        not_modelled={"recurring"})
            if "currency" not in price_data:
                raise _missing(f"{at}[price_data][currency]")
            currency = _currency(price_data["currency"], f"{at}[price_data][currency]")
            if "unit_amount" in price_data:
                unit_amount = _int(price_data["unit_amount"], f"{at}[price_data][unit_amount]", 0, 99_999_999)
            elif "unit_amount_decimal" in price_data:
                decimal = _str(price_data["unit_amount_decimal"], f"{at}[price_data][unit_amount_decimal]")
                if not re.fullmatch(r"\d+(\.0+)?", decimal):
                    raise _invalid(f"{at}[price_data][unit_amount_decimal]",
                                   "The Storehouse Stripe sandbox only models whole-unit amounts.")
                unit_amount = int(float(decimal))
            else:
                raise _missing(f"{at}[price_data][unit_amount]")
            if "product" in price_data:
                raise _no_such("product", _str(price_data["product"], f"{at}[price_data][product]"),
                               f"{at}[price_data][product]")
            product_data = price_data.get("product_data")
            if not isinstance(product_data, dict):
                raise _invalid(f"{at}[price_data]", "You must specify either `product` or `product_data` when "
                                                    "creating a price.")
            _check_keys(product_data, {"name", "description", "images", "metadata", "tax_code", "unit_label"},
                        f"{at}[price_data][product_data]")
            if not product_data.get("name"):
                raise _missing(f"{at}[price_data][product_data][name]")
            if "quantity" not in item:
                raise _missing(f"{at}[quantity]")
            quantity = _int(item["quantity"], f"{at}[quantity]", 1, 999_999)
            if items and currency != items[0]["currency"]:
                raise _invalid(f"{at}[price_data][currency]", "All line items must use the same currency.")
            name = _str(product_data["name"], f"{at}[price_data][product_data][name]")
            product = {"id": _id("prod_", 14), "object": "product", "active": True, "created": now,
                       "description": product_data.get("description"),
                       "images": _list(product_data.get("images", []), "images"), "livemode": False,
                       "metadata": _metadata(product_data.get("metadata"), f"{at}[price_data][product_data]"
                                                                           f"[metadata]"),
                       "name": name, "type": "service", "unit_label": product_data.get("unit_label"),
                       "updated": now}
            products.append(product)
            price = {"id": _id("price_"), "object": "price", "active": False, "billing_scheme": "per_unit",
                     "created": now, "currency": currency, "custom_unit_amount": None, "livemode": False,
                     "lookup_key": None, "metadata": {}, "nickname": None, "product": product["id"],
                     "recurring": None, "tax_behavior": price_data.get("tax_behavior", "unspecified"),
                     "tiers_mode": None, "transform_quantity": None, "type": "one_time",
                     "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount)}
            items.append({"id": _id("li_"), "object": "item", "amount_discount": 0,
                          "amount_subtotal": unit_amount * quantity, "amount_tax": 0,
                          "amount_total": unit_amount * quantity, "currency": currency, "description": name,
                          "price": price, "quantity": quantity})
        return items, products

    def sweep_expired(self, acct: _Account) -> None:
        """Expire open sessions whose ``expires_at`` has passed, as Stripe does on its own."""
        now = _now()
        for session_id in list(acct.open_sessions):
            session = acct.objects[session_id]
            if session["expires_at"] <= now:
                self.expire_session(acct, session)

    def expire_session(self, acct: _Account, session: dict, request: dict | None = None) -> dict:
        if session["status"] != "open":
            raise StripeError(400, 'Only Checkout Sessions with a status in ["open"] can be expired.',
                              param="session")
        session.update(status="expired", url=None)
        acct.open_sessions.discard(session["id"])
        pi = acct.objects.get(session["payment_intent"] or "")
        if pi is not None and pi["status"] not in ("succeeded", "canceled"):
            pi.update(status="canceled", canceled_at=_now(), cancellation_reason="abandoned")
            self.emit(acct, "payment_intent.canceled", pi, request)
        self.emit(acct, "checkout.session.expired", session, request)
        return session

    # ----- the customer's side of Checkout ------------------------------------------------------

    def _session_for_payment(self, session_id: str) -> tuple[_Account, dict]:
        acct, session = self.locate(session_id, "checkout.session")
        self.sweep_expired(acct)
        if session["status"] != "open":
            raise StripeError(400, f"This Checkout Session is no longer open (status: {session['status']}).",
                              code="checkout_session_not_open", param="session")
        return acct, session

    def _ensure_intent(self, acct: _Account, session: dict) -> dict:
        """Create the session's PaymentIntent on the first confirmation attempt, as Checkout does."""
        if session["payment_intent"]:
            return acct.objects[session["payment_intent"]]
        spec = acct.intent_specs[session["id"]]
        pi_id = _id("pi_")
        pi = {"id": pi_id, "object": "payment_intent", "amount": session["amount_total"], "amount_capturable": 0,
              "amount_details": {"tip": {}}, "amount_received": 0, "application": None,
              "application_fee_amount": None, "automatic_payment_methods": None, "canceled_at": None,
              "cancellation_reason": None, "capture_method": "automatic",
              "client_secret": f"{pi_id}_secret_{_id('', 25)}", "confirmation_method": "automatic",
              "created": _now(), "currency": session["currency"], "customer": None,
              "description": spec["description"], "last_payment_error": None, "latest_charge": None,
              "livemode": False, "metadata": dict(spec["metadata"]), "next_action": None, "on_behalf_of": None,
              "payment_method": None, "payment_method_configuration_details": None,
              "payment_method_options": {}, "payment_method_types": list(session["payment_method_types"]),
              "processing": None, "receipt_email": spec["receipt_email"], "review": None,
              "setup_future_usage": None, "shipping": None, "source": None,
              "statement_descriptor": spec["statement_descriptor"],
              "statement_descriptor_suffix": spec["statement_descriptor_suffix"],
              "status": "requires_payment_method", "transfer_data": None, "transfer_group": None}
        self._add(acct, pi)
        session["payment_intent"] = pi_id
        self.emit(acct, "payment_intent.created", pi)
        return pi

    def _charge(self, acct: _Account, pi: dict, pm: dict, billing: dict, status: str,
                failure: tuple[str, str, str] | None = None) -> dict:
        paid = status == "succeeded"
        outcome = ({"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                    "seller_message": "Payment complete.", "type": "authorized"} if failure is None else
                   {"network_status": "declined_by_network", "reason": failure[2], "risk_level": "normal",
                    "seller_message": "The bank did not return any further details with this decline.",
                    "type": "issuer_declined"})
        charge = {"id": _id("ch_"), "object": "charge", "amount": pi["amount"],
                  "amount_captured": pi["amount"] if status != "failed" else 0, "amount_refunded": 0,
                  "application": None, "application_fee": None, "application_fee_amount": None,
                  "balance_transaction": _id("txn_") if paid else None, "billing_details": billing,
                  "calculated_statement_descriptor": "STOREHOUSE", "captured": status != "failed",
                  "created": _now(), "currency": pi["currency"], "customer": None,
                  "description": pi["description"], "disputed": False, "failure_balance_transaction": None,
                  "failure_code": failure[0] if failure else None,
                  "failure_message": failure[1] if failure else None, "fraud_details": {}, "livemode": False,
                  "metadata": dict(pi["metadata"]), "on_behalf_of": None,
                  "outcome": None if status == "pending" else outcome, "paid": paid,
                  "payment_intent": pi["id"], "payment_method": pm["id"],
                  "payment_method_details": {pm["type"]: pm[pm["type"]], "type": pm["type"]},
                  "receipt_email": pi["receipt_email"], "receipt_number": None, "receipt_url": None,
                  "refunded": False, "review": None, "shipping": None, "source_transfer": None,
                  "statement_descriptor": None, "statement_descriptor_suffix": None, "status": status,
                  "transfer_data": None, "transfer_group": None}
        return self._add(acct, charge)

    def pay(self, session_id: str, email: str | None, name: str | None, async_payment: bool) -> dict:
        """The customer pays: by card (settles at once) or by bank debit (``async_payment``)."""
        acct, session = self._session_for_payment(session_id)
        billing = _billing(email or session["customer_email"] or "customer@example.com", name)
        session["customer_details"] = {**billing, "tax_exempt": "none", "tax_ids": []}
        if session["amount_total"] == 0:
            self._complete(acct, session, "no_payment_required")
            return session
        pi = self._ensure_intent(acct, session)
        pm = _payment_method(billing, "us_bank_account" if async_payment else "card")
        pi.update(payment_method=pm["id"], last_payment_error=None)
        if async_payment:
            charge = self._charge(acct, pi, pm, billing, "pending")
            pi.update(status="processing", latest_charge=charge["id"])
            self.emit(acct, "charge.pending", charge)
            self.emit(acct, "payment_intent.processing", pi)
            self._complete(acct, session, "unpaid")
        else:
            charge = self._charge(acct, pi, pm, billing, "succeeded")
            pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"])
            self.emit(acct, "charge.succeeded", charge)
            self.emit(acct, "payment_intent.succeeded", pi)
            self._complete(acct, session, "paid")
        return session

    def _complete(self, acct: _Account, session: dict, payment_status: str) -> None:
        session.update(status="complete", payment_status=payment_status, url=None)
        acct.open_sessions.discard(session["id"])
        self.emit(acct, "checkout.session.completed", session)

    def decline(self, session_id: str, decline_code: str) -> dict:
        """The customer's card is declined; the session stays open and unpaid."""
        if decline_code not in _DECLINES:
            raise _invalid("decline_code", f"Unknown decline_code; use one of {', '.join(sorted(_DECLINES))}")
        acct, session = self._session_for_payment(session_id)
        code, message, last4 = _DECLINES[decline_code]
        billing = _billing(session["customer_email"] or "customer@example.com", None)
        pi = self._ensure_intent(acct, session)
        pm = _payment_method(billing, "card", last4)
        charge = self._charge(acct, pi, pm, billing, "failed", (code, message, decline_code))
        pi.update(status="requires_payment_method", latest_charge=charge["id"], payment_method=None,
                  last_payment_error={"charge": charge["id"], "code": code, "decline_code": decline_code,
                                      "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
                                      "message": message, "payment_method": pm, "type": "card_error"})
        self.emit(acct, "charge.failed", charge)
        self.emit(acct, "payment_intent.payment_failed", pi)
        return session

    def settle_async(self, session_id: str, succeeded: bool, failure_code: str) -> dict:
        """A bank debit started by ``pay(async_payment=True)`` succeeds or fails days later."""
        acct, session = self.locate(session_id, "checkout.session")
        pi = acct.objects.get(session["payment_intent"] or "")
        if session["status"] != "complete" or pi is None or pi["status"] != "processing":
            raise StripeError(400, "This Checkout Session has no asynchronous payment awaiting settlement.",
                              param="session")
        charge = acct.objects[pi["latest_charge"]]
        if succeeded:
            charge.update(status="succeeded", paid=True, balance_transaction=_id("txn_"),
                          outcome={"network_status": "approved_by_network", "reason": None,
                                   "risk_level": "not_assessed", "seller_message": "Payment complete.",
                                   "type": "authorized"})
            pi.update(status="succeeded", amount_received=pi["amount"])
            session["payment_status"] = "paid"
            self.emit(acct, "charge.succeeded", charge)
            self.emit(acct, "payment_intent.succeeded", pi)
            self.emit(acct, "checkout.session.async_payment_succeeded", session)
        else:
            message = "The customer's bank account could not be debited."
            charge.update(status="failed", captured=False, amount_captured=0, failure_code=failure_code,
                          failure_message=message,
                          outcome={"network_status": "declined_by_network", "reason": failure_code,
                                   "risk_level": "not_assessed", "seller_message": message,
                                   "type": "issuer_declined"})
            pm_id = pi["payment_method"]
            pi.update(status="requires_payment_method", payment_method=None,
                      last_payment_error={"charge": charge["id"], "code": failure_code, "message": message,
                                          "payment_method": {"id": pm_id, "object": "payment_method",
                                                             "type": "us_bank_account"},
                                          "type": "invalid_request_error"})
            self.emit(acct, "charge.failed", charge)
            self.emit(acct, "payment_intent.payment_failed", pi)
            self.emit(acct, "checkout.session.async_payment_failed", session)
        return session

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


def _billing(email: str, name: str | None) -> dict:
    return {"address": {"city": None, "country": "US", "line1": None, "line2": None, "postal_code": "94103",
                        "state": None}, "email": email, "name": name or "Jenny Rosen", "phone": None}


def _payment_method(billing: dict, kind: str, last4: str = "4242") -> dict:
    details = ({"brand": "visa", "checks": {"address_line1_check": None, "address_postal_code_check": "pass",
                                            "cvc_check": "pass"}, "country": "US", "exp_month": 12,
                "exp_year": time.gmtime().tm_year + 3, "fingerprint": _id("", 16), "funding": "credit",
                "last4": last4, "network": "visa"}
               if kind == "card" else
               {"account_holder_type": "individual", "account_type": "checking", "bank_name": "STRIPE TEST BANK",
                "fingerprint": _id("", 16), "last4": "6789", "routing_number": "110000000"})
    return {"id": _id("pm_"), "object": "payment_method", "billing_details": billing, kind: details,
            "created": _now(), "customer": None, "livemode": False, "metadata": {}, "type": kind}


STORE = StripeStore()


def reset() -> None:
    """Forget every account, object, event, endpoint, queued delivery and switch."""
    STORE.reset()


# ----- HTTP plumbing -----------------------------------------------------------------------------

_NO_KEY = ("You did not provide an API key. You need to provide your API key in the Authorization header, "
           "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
           "authentication for details, or we can help at https://support.stripe.com/.")


def _json(status: int, body: Any, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, indent=2), status_code=status, media_type="application/json",
                    headers=headers)


def _authenticate(request: Request) -> str:
    auth = request.headers.get("authorization", "").strip()
    if not auth:
        raise StripeError(401, _NO_KEY, headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
    scheme, _, credential = auth.partition(" ")
    key = credential.strip()
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(key).decode("utf-8").split(":", 1)[0]
        except ValueError:
            key = ""
    elif scheme.lower() != "bearer":
        key = auth
    if not _KEY_RE.fullmatch(key):
        raise StripeError(401, f"Invalid API Key provided: {_mask_key(key)}",
                          headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
    return key


async def _params(request: Request) -> dict:
    if request.method == "POST":
        raw = (await request.body()).decode("utf-8", errors="replace")
    else:
        raw = request.url.query
    return decode_form(parse_qsl(raw, keep_blank_values=True))


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
            ctx = _Ctx(acct, request_id, idem, str(request.base_url).rstrip("/"))
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


def _replay(saved: _Saved, idem: str, path: str, fingerprint: str, headers: dict) -> Response:
    if saved.path != path:
        raise StripeError(400, f"Keys for idempotent requests can only be used for the same endpoint they were "
                               f"first used for ('{saved.path}' vs '{path}'). Try using a key other than "
                               f"'{idem}' if you meant to execute a different request.", type="idempotency_error")
    if saved.params != fingerprint:
        raise StripeError(400, f"Keys for idempotent requests can only be used with the same parameters they "
                               f"were first used with. Try using a key other than '{idem}' if you meant to "
                               f"execute a different request.", type="idempotency_error")
    return _json(saved.status, saved.body,
                 {**headers, "Idempotent-Replayed": "true", "Original-Request": saved.request_id})


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


# ----- sandbox control routes --------------------------------------------------------------------

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
