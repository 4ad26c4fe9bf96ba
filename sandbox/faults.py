"""Fault injection shared by every fake: latency, 429 with Retry-After, 5xx, outages.

Faults are set per provider (the first path segment, e.g. ``mx`` or ``airalo``) through
``PUT /_sandbox/faults/{provider}`` and cleared with ``DELETE /_sandbox/faults``. ``only_path``
narrows them to the requests whose path contains it (e.g. MobiMatter's ``/order/complete``, to
hang the second step of a purchase and not the first); every call is still counted.
Counted faults (``fail_next_429``, ``fail_next_5xx``) are deterministic, which is what tests
want; rates draw from a seeded generator, which is what soak runs and benchmarks want.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send


class FaultConfig(BaseModel):
    latency_ms: float = Field(0, ge=0, description="added to every response")
    slow_ms: float = Field(0, ge=0, description="extra delay, for 'slow provider' tests")
    hold_answer_ms: float = Field(0, ge=0, description="the request is carried out, then its answer held back "
                                  "this long: a purchase whose answer is lost to a timeout or a killed caller")
    down: bool = Field(False, description="every call answers 503")
    rate_429: float = Field(0, ge=0, le=1)
    rate_5xx: float = Field(0, ge=0, le=1)
    fail_next_429: int = Field(0, ge=0)
    fail_next_5xx: int = Field(0, ge=0)
    retry_after: float = Field(1, ge=0, description="seconds sent in Retry-After with a 429")
    only_path: str | None = Field(None, description="apply only to requests whose path contains this")
    seed: int = 7


@dataclass
class _State:
    config: FaultConfig
    rng: random.Random
    calls: int = 0
    injected: dict[str, int] = field(default_factory=dict)


class FaultRegistry:
    """Thread-safe per-provider fault switches and call counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def set(self, provider: str, config: FaultConfig) -> None:
        with self._lock:
            self._states[provider] = _State(config=config, rng=random.Random(config.seed))

    def clear(self) -> None:
        with self._lock:
            for provider, state in self._states.items():
                self._states[provider] = _State(config=FaultConfig(), rng=random.Random(7), calls=0)

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {
                name: {"config": s.config.model_dump(), "calls": s.calls, "injected": dict(s.injected)}
                for name, s in self._states.items()
            }

    def decide(self, provider: str, path: str) -> tuple[float, str | None, float, float]:
        """Return (delay seconds, fault kind or None, retry_after, seconds to hold the answer once
        the request has been carried out) for one call to ``path``."""
        with self._lock:
            state = self._states.get(provider)
            if state is None:
                state = self._states[provider] = _State(config=FaultConfig(), rng=random.Random(7))
            state.calls += 1
            c = state.config
            if c.only_path and c.only_path not in path:
                return 0.0, None, c.retry_after, 0.0
            delay = (c.latency_ms + c.slow_ms) / 1000.0
            kind: str | None = None
            if c.down:
                kind = "down"
            elif c.fail_next_429 > 0:
                c.fail_next_429 -= 1
                kind = "429"
            elif c.fail_next_5xx > 0:
                c.fail_next_5xx -= 1
                kind = "5xx"
            elif c.rate_429 and state.rng.random() < c.rate_429:
                kind = "429"
            elif c.rate_5xx and state.rng.random() < c.rate_5xx:
                kind = "5xx"
            if kind:
                state.injected[kind] = state.injected.get(kind, 0) + 1
            return delay, kind, c.retry_after, c.hold_answer_ms / 1000.0


FAULTS = FaultRegistry()

# Paths that are never faulted: the sandbox's own control plane and health.
_UNFAULTED = ("_sandbox", "healthz", "docs", "openapi.json")


class FaultMiddleware:
    """ASGI middleware applying the provider's faults before the fake sees the request."""

    def __init__(self, app: ASGIApp, registry: FaultRegistry = FAULTS) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        provider = scope["path"].lstrip("/").split("/", 1)[0]
        if not provider or provider in _UNFAULTED:
            await self.app(scope, receive, send)
            return
        delay, kind, retry_after, hold = self.registry.decide(provider, scope["path"])
        if delay:
            await asyncio.sleep(delay)
        response: Response | None = None
        if kind == "down":
            response = JSONResponse({"message": "Service Unavailable"}, status_code=503)
        elif kind == "429":
            response = JSONResponse(
                {"message": "Too Many Attempts."},
                status_code=429,
                headers={"Retry-After": f"{retry_after:g}"},
            )
        elif kind == "5xx":
            response = JSONResponse({"message": "Internal Server Error"}, status_code=500)
        if response is not None:
            await response(scope, receive, send)
            return
        if not hold:
            await self.app(scope, receive, send)
            return

        async def held(message: dict) -> None:  # the fake has done its work: only the answer waits
            if message["type"] == "http.response.start":
                await asyncio.sleep(hold)
            await send(message)

        await self.app(scope, receive, held)


def provider_of(request: Request) -> str:
    return request.url.path.lstrip("/").split("/", 1)[0]
