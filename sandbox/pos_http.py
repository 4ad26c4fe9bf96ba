"""HTTP plumbing the POS fakes share: native errors, rate limiters, webhook delivery.

* ``Reject``/``RejectRoute``: raise ``Reject(response)`` anywhere in a request (dependencies
  included) and a route built with ``APIRouter(route_class=RejectRoute)`` answers with that
  response, in the provider's own error format rather than FastAPI's ``{"detail"}``.
* ``Window``: at most ``limit`` calls per ``seconds`` per key, on ``sandbox.ratelimit``'s
  sliding-window log; ``LeakyBucket``: Shopify's bucket.
* ``WebhookLog``: delivers webhooks in background threads with retries and remembers every
  delivery (``GET /_sandbox/{NAME}/webhooks``); ``deliver`` posts JSON to a registered hook.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
from fastapi.routing import APIRoute
from starlette.responses import Response

from sandbox.ratelimit import Limit, SlidingWindowLimiter


class Reject(Exception):
    """Raise anywhere in a request (dependencies included) to answer with `response`."""

    def __init__(self, response: Response) -> None:
        self.response = response


class RejectRoute(APIRoute):
    def get_route_handler(self):
        handler = super().get_route_handler()

        async def wrapped(request):
            try:
                return await handler(request)
            except Reject as r:
                return r.response
        return wrapped


class Window:
    """Sliding window: at most `limit` calls per `seconds` per key.

    The limit is read at every call, since control routes change it under way, and the calls
    already counted stay counted when it changes: each key is a ``SlidingWindowLimiter`` bucket
    whose ``Limit`` is replaced in place (``configure`` would forget the bucket's calls).
    """

    def __init__(self) -> None:
        self._limiter = SlidingWindowLimiter({})

    def hit(self, key: str, limit: int, seconds: float) -> float:
        """Record a call; 0 when allowed, else seconds until a slot frees."""
        # model_construct: the fakes' limits are not validated (PUT /limits takes any number).
        self._limiter.limits[key] = Limit.model_construct(limit=limit, window_s=seconds)
        decision = self._limiter.hit(key, "")
        return 0.0 if decision.allowed else max(0.001, decision.reset_after)

    def clear(self) -> None:
        self._limiter.reset()


class LeakyBucket:
    """Shopify's bucket: each call adds one, `leak` drain per second, `size` is full."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, size: int, leak: float) -> tuple[bool, int]:
        now = time.monotonic()
        with self._lock:
            level, last = self._state.get(key, (0.0, now))
            level = max(0.0, level - (now - last) * leak)
            ok = level + 1 <= size
            level = level + 1 if ok else level
            self._state[key] = (level, now)
            return ok, int(round(level)) if ok else size

    def clear(self) -> None:
        with self._lock:
            self._state.clear()


class WebhookLog:
    """Deliver webhooks in background threads with retries; remember every delivery."""

    def __init__(self, attempts: int = 4, timeout: float = 5.0, backoff: float = 0.25) -> None:
        self.attempts, self.timeout, self.backoff = attempts, timeout, backoff
        self._log: list[dict] = []
        self._lock = threading.Lock()

    def deliver(self, hook: dict | None, body: dict, secret_header: str, **meta) -> None:
        """POST `body` as JSON to a registered ``{url, secret}`` hook, if there is one; a secret is
        sent verbatim in `secret_header` (the modelled, unsigned webhooks)."""
        if hook:
            headers = {secret_header: hook["secret"]} if hook.get("secret") else {}
            self.send(hook["url"], json.dumps(body).encode(), headers, **meta)

    def send(self, url: str, body: bytes, headers: dict[str, str], **meta) -> dict:
        entry = {"url": url, "status": "pending", "attempts": 0, "responses": [], **meta}
        with self._lock:
            self._log.append(entry)
        threading.Thread(target=self._run, args=(entry, body, headers), daemon=True).start()
        return entry

    def _run(self, entry: dict, body: bytes, headers: dict[str, str]) -> None:
        for attempt in range(self.attempts):
            entry["attempts"] = attempt + 1
            try:
                code = httpx.post(entry["url"], content=body, headers={"Content-Type": "application/json", **headers},
                                  timeout=self.timeout).status_code
            except httpx.HTTPError as e:
                code = type(e).__name__
            entry["responses"].append(code)
            if isinstance(code, int) and 200 <= code < 300:
                entry["status"] = "delivered"
                return
            time.sleep(self.backoff * 2 ** attempt)
        entry["status"] = "failed"

    def entries(self) -> list[dict]:
        with self._lock:
            return [dict(e, responses=list(e["responses"])) for e in self._log]

    def clear(self) -> None:
        with self._lock:
            self._log.clear()
