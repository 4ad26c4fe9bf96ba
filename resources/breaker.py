"""Circuit breakers per provider per tenant, with state shared through the warehouse.

Closed: calls go through; ``failure_threshold`` consecutive failures open it. Open: calls are
refused at once (no request is made) until ``reset_after`` seconds pass; then exactly one caller
wins the trial call (half-open, claimed with a compare-and-set, so among many threads and
processes one calls and the rest are still refused): success closes it, failure opens it again,
and a trial whose caller never reported back may be claimed anew ``reset_after`` seconds later.
The state lives in the ``circuit_breakers`` table so every API worker and every Dagster run sees
the same breaker; ``MemoryBreakerStore`` serves tests and single-process use.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar

import sqlalchemy as sa

from resources.http import ProviderError
from warehouse.tables.core import circuit_breakers
from warehouse.types import now_utc
from warehouse.upsert import upsert

T = TypeVar("T")
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitOpen(ProviderError):
    kind = "circuit_open"


@dataclass
class BreakerState:
    state: str = CLOSED
    failures: int = 0
    opened_at: dt.datetime | None = None
    last_error: str | None = None


class BreakerStore(Protocol):
    def load(self, tenant_id: str, provider: str) -> BreakerState: ...
    def save(self, tenant_id: str, provider: str, state: BreakerState) -> None: ...
    def claim_trial(self, tenant_id: str, provider: str, seen: BreakerState, at: dt.datetime) -> bool:
        """Half-open the breaker for a trial starting ``at`` if it is still as ``seen``; True if won."""


class MemoryBreakerStore:
    def __init__(self) -> None:
        self._states: dict[tuple[str, str], BreakerState] = {}
        self._lock = threading.Lock()

    def load(self, tenant_id: str, provider: str) -> BreakerState:
        with self._lock:
            s = self._states.get((tenant_id, provider))
            return BreakerState(**vars(s)) if s else BreakerState()

    def save(self, tenant_id: str, provider: str, state: BreakerState) -> None:
        with self._lock:
            self._states[(tenant_id, provider)] = BreakerState(**vars(state))

    def claim_trial(self, tenant_id: str, provider: str, seen: BreakerState, at: dt.datetime) -> bool:
        with self._lock:
            now = self._states.get((tenant_id, provider)) or BreakerState()
            if (now.state, now.opened_at) != (seen.state, seen.opened_at):
                return False
            self._states[(tenant_id, provider)] = BreakerState(HALF_OPEN, now.failures, at, now.last_error)
            return True


class SqlBreakerStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def load(self, tenant_id: str, provider: str) -> BreakerState:
        t = circuit_breakers.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.state, t.failures, t.opened_at, t.last_error).where(
                    t.tenant_id == tenant_id, t.provider == provider
                )
            ).one_or_none()
        return BreakerState(*row) if row else BreakerState()

    def save(self, tenant_id: str, provider: str, state: BreakerState) -> None:
        with self.engine.begin() as conn:
            upsert(conn, circuit_breakers, [{"tenant_id": tenant_id, "provider": provider, **vars(state)}])

    def claim_trial(self, tenant_id: str, provider: str, seen: BreakerState, at: dt.datetime) -> bool:
        t = circuit_breakers.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(circuit_breakers)
                .where(t.tenant_id == tenant_id, t.provider == provider, t.state == seen.state,
                       t.opened_at.is_(None) if seen.opened_at is None else t.opened_at == seen.opened_at)
                .values(state=HALF_OPEN, opened_at=at)
            )
            return result.rowcount == 1


class CircuitBreaker:
    def __init__(
        self,
        store: BreakerStore,
        tenant_id: str,
        provider: str,
        *,
        failure_threshold: int = 3,
        reset_after: float = 60.0,
        clock: Callable[[], dt.datetime] = now_utc,
    ) -> None:
        self.store, self.tenant_id, self.provider = store, tenant_id, provider
        self.failure_threshold, self.reset_after, self.clock = failure_threshold, reset_after, clock

    def current(self) -> BreakerState:
        return self.store.load(self.tenant_id, self.provider)

    def allow(self) -> bool:
        """True when a call may be made now: closed, or this caller won the trial of a cooled breaker."""
        state = self.current()
        if state.state == CLOSED:
            return True
        now = self.clock()
        if state.opened_at and (now - state.opened_at).total_seconds() < self.reset_after:
            return False  # open and cooling, or half-open with a trial in flight
        return self.store.claim_trial(self.tenant_id, self.provider, state, now)

    def record_success(self) -> None:
        state = self.current()
        if state.state != CLOSED or state.failures:
            self.store.save(self.tenant_id, self.provider, BreakerState())

    def record_failure(self, error: BaseException) -> BreakerState:
        state = self.current()
        state.failures += 1
        state.last_error = str(error)[:500]
        if state.state == HALF_OPEN or state.failures >= self.failure_threshold:
            state.state, state.opened_at = OPEN, self.clock()
        self.store.save(self.tenant_id, self.provider, state)
        return state

    def call(self, fn: Callable[[], T], *, counts: Callable[[BaseException], bool] | None = None) -> T:
        """Ask ``allow()`` and run ``fn`` through the breaker. ``counts`` decides which errors trip
        it (default: all). A caller that already asked ``allow()`` uses ``run`` instead: asking
        twice spends a half-open breaker's one trial on the first question and refuses the call."""
        if not self.allow():
            raise CircuitOpen(self.provider, f"circuit open for tenant {self.tenant_id}; not calling")
        return self.run(fn, counts=counts)

    def run(self, fn: Callable[[], T], *, counts: Callable[[BaseException], bool] | None = None) -> T:
        """Run ``fn``, which ``allow()`` already let through, and record how it went."""
        try:
            result = fn()
        except Exception as exc:
            if counts is None or counts(exc):
                self.record_failure(exc)
            raise
        self.record_success()
        return result
