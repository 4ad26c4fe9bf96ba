"""Provider breakers for the provisioning worker: the shared ``SqlBreakerStore`` behind a short
per-process memory.

Every provisioning run asks each provider's breaker whether it may call; reading the shared row
each time costs a query per provider per order, most of them answering "closed" or "still open".
Remembering the last state for ``ttl_s`` (and every state this process writes) keeps an open
breaker free to skip, at the price of another process's change reaching us up to ``ttl_s`` late.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from resources.breaker import HALF_OPEN, BreakerState, SqlBreakerStore


class CachedBreakerStore:
    def __init__(self, inner: SqlBreakerStore, ttl_s: float = 1.0) -> None:
        self.inner, self.ttl_s = inner, ttl_s
        self._seen: dict[tuple[str, str], tuple[float, BreakerState]] = {}
        self._lock = threading.Lock()

    def load(self, tenant_id: str, provider: str) -> BreakerState:
        key = (tenant_id, provider)
        with self._lock:
            seen = self._seen.get(key)
        if seen and time.monotonic() - seen[0] < self.ttl_s:
            return BreakerState(**vars(seen[1]))
        state = self.inner.load(tenant_id, provider)
        with self._lock:
            self._seen[key] = (time.monotonic(), BreakerState(**vars(state)))
        return state

    def save(self, tenant_id: str, provider: str, state: BreakerState) -> None:
        self.inner.save(tenant_id, provider, state)
        with self._lock:
            self._seen[(tenant_id, provider)] = (time.monotonic(), BreakerState(**vars(state)))

    def claim_trial(self, tenant_id: str, provider: str, seen: BreakerState, at: dt.datetime) -> bool:
        """Always decided by the shared row: one trial among every process, not one per process."""
        won = self.inner.claim_trial(tenant_id, provider, seen, at)
        with self._lock:
            if won:
                self._seen[(tenant_id, provider)] = (time.monotonic(), BreakerState(HALF_OPEN, seen.failures, at,
                                                                                    seen.last_error))
            else:
                self._seen.pop((tenant_id, provider), None)  # someone else moved it: read it afresh
        return won
