"""Per-key sliding-window rate limits for the sandbox fakes (Airalo, Resend, Slack).

``SlidingWindowLimiter(defaults)`` keeps one request log per (bucket, key); ``hit`` counts a
request and returns a ``Decision`` with what the provider puts in its rate-limit headers. A
bucket without a ``Limit`` is unlimited; control routes change limits with ``configure``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel, Field


class Limit(BaseModel):
    limit: int = Field(ge=1, description="requests allowed per window")
    window_s: float = Field(gt=0, description="window length in seconds")


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until a slot frees up (0 if one is free now)

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_after))


class SlidingWindowLimiter:
    """Per (bucket, key) sliding-window log; a bucket without a configured limit is unlimited."""

    def __init__(self, defaults: dict[str, Limit]) -> None:
        self.defaults = dict(defaults)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.limits = dict(self.defaults)
            self._hits: dict[tuple[str, str], deque[float]] = {}

    def configure(self, bucket: str, limit: Limit) -> None:
        with self._lock:
            self.limits[bucket] = limit
            self._hits = {k: v for k, v in self._hits.items() if k[0] != bucket}

    def hit(self, bucket: str, key: str) -> Decision:
        """Count one request; a refused request is not counted (clients that wait get in)."""
        with self._lock:
            rule = self.limits.get(bucket)
            if rule is None:
                return Decision(True, 0, 0, 0.0)
            now = time.monotonic()
            log = self._hits.setdefault((bucket, key), deque())
            while log and log[0] <= now - rule.window_s:
                log.popleft()
            if len(log) >= rule.limit:
                return Decision(False, rule.limit, 0, log[0] + rule.window_s - now)
            log.append(now)
            reset = log[0] + rule.window_s - now
            return Decision(True, rule.limit, rule.limit - len(log), reset)
