"""ASGI middleware: the client behind our proxies, a hard cap on request bodies, request
metrics, request ids, and safe response headers.

The body cap refuses a declared ``Content-Length`` above the limit before reading a byte, and
counts the bytes of a chunked body as they arrive, failing with 413 the moment they pass it.
``BodyTooLarge`` is an ``HTTPException`` so FastAPI re-raises it untouched from body parsing and
the problem-details handler answers it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.problems import problem_response
from settings.logs import REQUEST_ID

REQUEST_ID_HEADER = b"x-request-id"
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
SAFE_HEADERS = [(b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff")]


def forwarded_client(headers: list[tuple[bytes, bytes]], trusted_proxies: int) -> str | None:
    """The client our proxies saw. Each proxy appends the address it saw to X-Forwarded-For, so
    only the rightmost ``trusted_proxies`` entries are our own proxies' word; the client is the
    entry that many places from the right, whatever it wrote itself further left. None without
    the header."""
    joined = b",".join(v for k, v in headers if k == b"x-forwarded-for").decode("latin1")
    hops = [h.strip() for h in joined.split(",") if h.strip()]
    return hops[-min(trusted_proxies, len(hops))][:64] if hops else None


class ForwardedClientMiddleware:
    """Behind ``trusted_proxies`` proxies, make the forwarded client *the* client: ``request.client``,
    the rate limits and the server's access log all read ``scope["client"]``, so they agree.

    This replaces uvicorn's own proxy-header handling (``forwarded_allow_ips``), which walks
    X-Forwarded-For from the right skipping hosts it trusts by address: with every peer trusted
    it would believe the leftmost entry, which the client writes itself, and our proxies'
    addresses are not known in advance, only how many of them there are."""

    def __init__(self, app: ASGIApp, trusted_proxies: int) -> None:
        self.app, self.trusted_proxies = app, trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = forwarded_client(scope["headers"], self.trusted_proxies)
            if host:
                scope["client"] = (host, 0)
            proto = [v for k, v in scope["headers"] if k == b"x-forwarded-proto"]
            scheme = proto[-1].decode("latin1").split(",")[-1].strip().lower() if proto else ""
            if scheme in ("http", "https"):
                scope["scheme"] = scheme if scope["type"] == "http" else scheme.replace("http", "ws")
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class BodyLimitMiddleware:
    """``max_bytes`` for what clients send; ``webhook_max_bytes`` for deliveries to ``/webhooks/``
    (another system's event, which a 413 would lose); ``route_limits`` (``(path pattern, methods,
    limit)``) for the routes that take files, and only for their methods (``api/uploads.py``)."""

    def __init__(self, app: ASGIApp, max_bytes: int, webhook_max_bytes: int | None = None,
                 route_limits: Sequence[tuple[re.Pattern, frozenset[str], int]] = ()) -> None:
        self.app, self.max_bytes, self.webhook_max_bytes = app, max_bytes, webhook_max_bytes or max_bytes
        self.route_limits = tuple(route_limits)

    def limit(self, scope: Scope) -> int:
        for pattern, methods, limit in self.route_limits:
            if scope["method"] in methods and pattern.match(scope["path"]):
                return limit
        return self.webhook_max_bytes if "/webhooks/" in scope["path"] else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            response = problem_response(413, "body-too-large", f"The request body is larger than {limit} bytes.",
                                        instance=scope["path"], headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


class MetricsMiddleware:
    """Counts and times every request by route template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + SAFE_HEADERS
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            metrics.REQUESTS.labels(method, route, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)


class RequestIdMiddleware:
    """Every request gets an id: the caller's ``X-Request-ID`` when it is sane (up to 128 letters,
    digits and ``._:-``; a proxy's or load balancer's id, so lines join up across them), else a new
    random one. It is returned in the response's ``X-Request-ID`` and set in ``REQUEST_ID`` for
    every log line of the request (the JSON formatter writes it; uvicorn's access line too, as
    uvicorn logs it from within the response's ``send``).

    Not reset afterwards on purpose: each request runs in its own task with its own copy of the
    context, so the value cannot leak into another request, and uvicorn's "Exception in ASGI
    application" line, logged after the app has raised, still carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), None)
        raw = given if given is not None and SANE_REQUEST_ID.fullmatch(given) else os.urandom(16).hex().encode()
        REQUEST_ID.set(raw.decode("ascii"))

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, raw)]
            await send(message)

        await self.app(scope, receive, sending)
