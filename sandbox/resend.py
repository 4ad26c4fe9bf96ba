"""Fake Resend email API, mounted at ``/resend`` (real: ``https://api.resend.com``).

* ``POST /resend/emails`` with ``Authorization: Bearer re_…`` and JSON ``{from, to (string or
  list, ≤ 50), subject, html | text, cc?, bcc?, reply_to?, headers?, tags?, attachments?[{filename,
  content (base64) | path}]}`` → 200 ``{"id": "<uuid>"}``. ``GET /resend/emails/{id}`` reads one back.
* Errors are ``{statusCode, name, message}``: 401 ``missing_api_key``, 403 ``invalid_api_key``,
  403 without a ``User-Agent`` header, 422 ``missing_required_field`` / ``validation_error``.
* ``Idempotency-Key`` (1–256 chars, else 400 ``invalid_idempotency_key``): within 24 h the same
  key with the same body returns the first id and sends nothing; with another body → 409
  ``invalid_idempotent_request``.
* 2 requests per second per API key (team); every answer carries ``ratelimit-limit``,
  ``ratelimit-remaining``, ``ratelimit-reset``; over it → 429 ``rate_limit_exceeded`` plus
  ``retry-after``.

Valid API key after reset: ``re_sandbox_storehouse_key``. Control routes under
``/_sandbox/resend``: ``GET /emails`` (what was sent, oldest first, attachments as
``{filename, size}``), ``POST /api_keys {"key": "re_…"}``, ``GET /limits``,
``PUT /limits {"emails": {"limit", "window_s"}}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sandbox.ratelimit import Limit, SlidingWindowLimiter

NAME = "resend"
DEMO_KEYS = ("re_sandbox_storehouse_key",)
IDEMPOTENCY_TTL_S = 24 * 3600
LIMITS = {"emails": Limit(limit=2, window_s=1)}
_ADDRESS = re.compile(r"^(?:[^<>]*<\s*)?[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+(?:\s*>)?$")

router = APIRouter()
control = APIRouter()
limiter = SlidingWindowLimiter(LIMITS)
_lock = threading.Lock()
_keys: set[str] = set()
_emails: list[dict] = []
_idempotency: dict[tuple[str, str], tuple[str, str, float]] = {}  # (api key, key) -> (body hash, id, at)


def reset() -> None:
    with _lock:
        _keys.clear()
        _keys.update(DEMO_KEYS)
        _emails.clear()
        _idempotency.clear()
    limiter.reset()


reset()


class Refusal(Exception):
    """A Resend error answer: ``{statusCode, name, message}``."""

    def __init__(self, status: int, name: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.name, self.message, self.headers = status, name, message, headers


def _as_list(value, field: str) -> list[str]:
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if items is None or not all(isinstance(i, str) for i in items):
        raise Refusal(422, "validation_error", f"Invalid `{field}` field.")
    for item in items:
        if not _ADDRESS.match(item.strip()):
            raise Refusal(422, "validation_error", f"Invalid `{field}` field. The email address needs to "
                          "follow the `email@example.com` or `Name <email@example.com>` format.")
    return items


def _attachments(value) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Refusal(422, "validation_error", "Invalid `attachments` field.")
    out = []
    for item in value:
        if not isinstance(item, dict) or not (item.get("content") or item.get("path")):
            raise Refusal(422, "validation_error", "Each attachment needs `content` or `path`.")
        size = None
        if item.get("content"):
            try:
                size = len(base64.b64decode(item["content"], validate=True))
            except (binascii.Error, ValueError, TypeError):
                raise Refusal(422, "validation_error", "Attachment `content` must be base64.") from None
        out.append({"filename": item.get("filename"), "size": size, "path": item.get("path"),
                    "content_type": item.get("content_type")})
    return out


def _email(body: dict) -> dict:
    """The email as recorded, or a ``Refusal`` saying what is wrong with the body."""
    for field in ("from", "to", "subject"):
        if not body.get(field):
            raise Refusal(422, "missing_required_field", f"Missing `{field}` field.")
    if not (body.get("html") or body.get("text")):
        raise Refusal(422, "missing_required_field", "Missing `html` or `text` field.")
    to = _as_list(body["to"], "to")
    if len(to) > 50:
        raise Refusal(422, "validation_error", "Too many recipients: `to` takes up to 50 addresses.")
    return {"from": _as_list(body["from"], "from")[0], "to": to, "subject": body["subject"],
            "cc": _as_list(body.get("cc") or [], "cc"), "bcc": _as_list(body.get("bcc") or [], "bcc"),
            "reply_to": _as_list(body.get("reply_to") or [], "reply_to"), "html": body.get("html"),
            "text": body.get("text"), "headers": body.get("headers") or {}, "tags": body.get("tags") or [],
            "attachments": _attachments(body.get("attachments"))}


def _api_key(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Refusal(401, "missing_api_key", "Missing API key in the authorization header. Include the "
                      "following header in the request: Authorization: Bearer YOUR_API_KEY")
    with _lock:
        if key.strip() not in _keys:
            raise Refusal(403, "invalid_api_key", "API key is invalid")
    return key.strip()


def _throttle(key: str) -> dict[str, str]:
    decision = limiter.hit("emails", key)
    headers = {"ratelimit-limit": str(decision.limit), "ratelimit-remaining": str(decision.remaining),
               "ratelimit-reset": str(decision.retry_after)}
    if not decision.allowed:
        headers["retry-after"] = str(decision.retry_after)
        raise Refusal(429, "rate_limit_exceeded", f"Too many requests. You can only make {decision.limit} requests "
                      "per second. See rate limit response headers for more information.", headers)
    return headers


def _refused(exc: Refusal, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"statusCode": exc.status, "name": exc.name, "message": exc.message},
                        status_code=exc.status, headers=exc.headers or headers)


@router.post("/emails")
async def send_email(request: Request) -> JSONResponse:
    headers: dict[str, str] = {}
    try:
        if not request.headers.get("user-agent"):
            raise Refusal(403, "missing_required_field", "The `User-Agent` header is missing.")
        key = _api_key(request)
        headers = _throttle(key)
        idem = request.headers.get("idempotency-key")
        if idem is not None and not 1 <= len(idem) <= 256:
            raise Refusal(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
        raw = await request.body()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise Refusal(422, "validation_error", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise Refusal(422, "validation_error", "The request body must be a JSON object.")
        email = _email(body)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with _lock:
            if idem is not None:
                seen = _idempotency.get((key, idem))
                if seen and time.monotonic() - seen[2] < IDEMPOTENCY_TTL_S:
                    if seen[0] != digest:
                        raise Refusal(409, "invalid_idempotent_request", "Same idempotency key used with a "
                                      "different request payload. Change your idempotency key or payload.")
                    return JSONResponse({"id": seen[1]}, headers=headers)
            email_id = str(uuid.uuid4())
            _emails.append({"id": email_id, "created_at": datetime.now(UTC).isoformat(), "api_key": key,
                            "idempotency_key": idem, **email})
            if idem is not None:
                _idempotency[(key, idem)] = (digest, email_id, time.monotonic())
    except Refusal as exc:
        return _refused(exc, headers)
    return JSONResponse({"id": email_id}, headers=headers)


@router.get("/emails/{email_id}")
def get_email(request: Request, email_id: str) -> JSONResponse:
    try:
        key = _api_key(request)
    except Refusal as exc:
        return _refused(exc)
    with _lock:
        email = next((e for e in _emails if e["id"] == email_id and e["api_key"] == key), None)
    if email is None:
        return _refused(Refusal(404, "not_found", "Email not found"))
    view = {k: email[k] for k in ("id", "to", "from", "created_at", "subject", "html", "text", "cc", "bcc")}
    return JSONResponse({"object": "email", **view, "reply_to": email["reply_to"] or None,
                         "last_event": "delivered"})


class KeyIn(BaseModel):
    key: str


@control.get("/emails")
def sent_emails() -> dict:
    with _lock:
        return {"emails": [{k: v for k, v in e.items() if k != "api_key"} for e in _emails]}


@control.post("/api_keys", status_code=201)
def add_key(body: KeyIn) -> dict:
    if not body.key.startswith("re_"):
        raise HTTPException(422, "Resend API keys start with re_")
    with _lock:
        _keys.add(body.key)
    return {"key": body.key}


@control.get("/limits")
def get_limits() -> dict:
    return {k: v.model_dump() for k, v in limiter.limits.items()}


@control.put("/limits")
def set_limits(body: dict[str, Limit]) -> dict:
    if set(body) - set(LIMITS):
        raise HTTPException(404, f"rate-limit buckets are {sorted(LIMITS)}")
    for bucket, limit in body.items():
        limiter.configure(bucket, limit)
    return get_limits()
