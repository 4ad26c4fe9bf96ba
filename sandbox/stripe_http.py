"""Stripe's HTTP conventions for the Stripe fake: ids, error JSON, form decoding, auth, idempotency.

* ``StripeError`` and its constructors (``_missing``, ``_invalid``, ``_no_such``...) render Stripe's
  ``{"error": {...}}`` bodies.
* ``decode_form`` turns form-encoded nested keys (``metadata[order_id]``, ``expand[]``) into dicts
  and lists; ``_check_keys``, ``_str``, ``_int``, ``_bool``, ``_list``, ``_metadata``, ``_currency``
  validate parameters as Stripe does.
* ``_authenticate``, ``_params`` and ``_json`` read a request and write an answer; ``_Saved`` and
  ``_replay`` are the stored first response of an ``Idempotency-Key`` and its replay.

Nothing here holds state; ``sandbox.stripe_fake`` ties it to the store in ``_call``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from fastapi.responses import Response

_ALNUM = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"sk_test_[A-Za-z0-9_\-]+")
_ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf",
                 "xof", "xpf"}


def _now() -> int:
    return int(time.time())


_ALNUM_OF_BYTE = bytes(ord(_ALNUM[b % len(_ALNUM)]) for b in range(256))


def _id(prefix: str, length: int = 24) -> str:
    """A random object id; one ``token_bytes`` call mapped onto letters and digits (the small
    modulo bias is of no matter for ids that only need to be unique)."""
    return prefix + secrets.token_bytes(length).translate(_ALNUM_OF_BYTE).decode("ascii")


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


# ----- requests and responses ----------------------------------------------------------------------

_NO_KEY = ("You did not provide an API key. You need to provide your API key in the Authorization header, "
           "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
           "authentication for details, or we can help at https://support.stripe.com/.")


def _json(status: int, body: Any, headers: dict | None = None) -> Response:
    """Stripe's answers are indented JSON; orjson writes it several times faster than ``json``."""
    return Response(orjson.dumps(body, option=orjson.OPT_INDENT_2), status_code=status,
                    media_type="application/json", headers=headers)


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


# ----- idempotency ---------------------------------------------------------------------------------


@dataclass
class _Saved:
    """The stored first response for one idempotency key."""

    path: str
    params: str
    status: int
    body: Any
    request_id: str


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
