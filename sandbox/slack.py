"""Fake Slack incoming webhooks, mounted at ``/slack`` (real: ``https://hooks.slack.com``).

* ``POST /slack/services/{T…}/{B…}/{token}`` with JSON ``{text, blocks?, attachments?}`` (or a
  form field ``payload`` holding that JSON) → 200, body ``ok`` (text/html).
* Errors are plain-text strings, as Slack sends them: 400 ``invalid_payload`` (not JSON / not an
  object), 400 ``no_text`` (no text, blocks or attachments; what app webhooks answer today),
  403 ``invalid_token`` (known team and bot, wrong token), 404 ``no_service`` (unknown hook),
  404 ``channel_not_found`` / 410 ``channel_is_archived`` (a hook whose channel was set so).
* About one message a second per hook with short bursts: by default 3 per 3 s, then 429
  ``rate_limited`` with ``Retry-After``.

Hook after reset: ``/slack/services/T00SANDBOX/B00SANDBOX/sandbox0webhook0token00001``
(channel ``#storehouse-alerts``). Control routes under ``/_sandbox/slack``: ``GET /messages``
(oldest first, with the hook's channel), ``POST /hooks {"channel"}`` → a new hook path,
``PUT /hooks/{token}/state {"state": "active" | "channel_not_found" | "channel_is_archived"}``,
``GET /limits``, ``PUT /limits {"messages": {"limit", "window_s"}}``.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from sandbox.ratelimit import Limit, SlidingWindowLimiter

NAME = "slack"
LIMITS = {"messages": Limit(limit=3, window_s=3)}
DEMO_HOOK = ("T00SANDBOX", "B00SANDBOX", "sandbox0webhook0token00001", "#storehouse-alerts")
_STATUS = {"channel_not_found": 404, "channel_is_archived": 410}

router = APIRouter()
control = APIRouter()
limiter = SlidingWindowLimiter(LIMITS)
_lock = threading.Lock()


@dataclass
class Hook:
    team: str
    bot: str
    token: str
    channel: str
    state: str = "active"

    @property
    def path(self) -> str:
        return f"/{NAME}/services/{self.team}/{self.bot}/{self.token}"


_hooks: dict[str, Hook] = {}  # token -> hook
_messages: list[dict] = []


def reset() -> None:
    with _lock:
        _hooks.clear()
        _hooks[DEMO_HOOK[2]] = Hook(*DEMO_HOOK)
        _messages.clear()
    limiter.reset()


reset()


def _text(body: str, status: int, headers: dict | None = None) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status, headers=headers)


async def _payload(request: Request) -> dict | None:
    raw = await request.body()
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        raw = (parse_qs(raw.decode("utf-8", "replace")).get("payload") or [""])[0].encode()
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


@router.post("/services/{team}/{bot}/{token}")
async def incoming_webhook(team: str, bot: str, token: str, request: Request) -> PlainTextResponse:
    with _lock:
        hook = _hooks.get(token)
        known_pair = any((h.team, h.bot) == (team, bot) for h in _hooks.values())
    if hook is None or (hook.team, hook.bot) != (team, bot):
        return _text("invalid_token", 403) if known_pair else _text("no_service", 404)
    decision = limiter.hit("messages", token)
    if not decision.allowed:
        return _text("rate_limited", 429, {"Retry-After": str(decision.retry_after)})
    if hook.state != "active":
        return _text(hook.state, _STATUS[hook.state])
    payload = await _payload(request)
    if payload is None:
        return _text("invalid_payload", 400)
    if not (payload.get("text") or payload.get("blocks") or payload.get("attachments")):
        return _text("no_text", 400)
    with _lock:
        _messages.append({"channel": hook.channel, "hook": hook.path, "text": payload.get("text"),
                          "blocks": payload.get("blocks"), "attachments": payload.get("attachments"),
                          "received_at": datetime.now(UTC).isoformat()})
    return PlainTextResponse("ok", media_type="text/html")


class HookIn(BaseModel):
    channel: str


class HookState(BaseModel):
    state: Literal["active", "channel_not_found", "channel_is_archived"]


@control.get("/messages")
def messages() -> dict:
    with _lock:
        return {"messages": list(_messages)}


@control.post("/hooks", status_code=201)
def create_hook(body: HookIn) -> dict:
    hook = Hook("T" + secrets.token_hex(4).upper(), "B" + secrets.token_hex(4).upper(),
                secrets.token_hex(12), body.channel)
    with _lock:
        _hooks[hook.token] = hook
    return {"path": hook.path, "channel": hook.channel, "token": hook.token}


@control.put("/hooks/{token}/state")
def set_hook_state(token: str, body: HookState) -> dict:
    with _lock:
        hook = _hooks.get(token)
        if hook is None:
            raise HTTPException(404, "no such hook")
        hook.state = body.state
    return {"path": hook.path, "state": hook.state}


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
