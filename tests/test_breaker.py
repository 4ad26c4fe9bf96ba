"""Circuit breakers shared through the warehouse: open, cool down, exactly one trial, close or reopen."""

import concurrent.futures as cf
import datetime as dt

import pytest

from commerce.breakers import CachedBreakerStore
from resources.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, MemoryBreakerStore, SqlBreakerStore


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(params=["memory", "sql", "cached sql"])
def store(request, engine):
    return {"memory": MemoryBreakerStore, "sql": lambda: SqlBreakerStore(engine),
            "cached sql": lambda: CachedBreakerStore(SqlBreakerStore(engine), ttl_s=60)}[request.param]()


def test_open_breaker_lets_exactly_one_trial_through_among_many_callers(store, tenant_id):
    clock = Clock()

    def breaker() -> CircuitBreaker:  # one per caller, as each provisioning run makes its own
        return CircuitBreaker(store, tenant_id, "airalo", failure_threshold=2, reset_after=30, clock=clock)

    breaker().record_failure(RuntimeError("503"))
    assert breaker().allow()  # one failure: still closed
    breaker().record_failure(RuntimeError("503"))
    assert breaker().current().state == OPEN and not breaker().allow()
    clock.now += dt.timedelta(seconds=31)
    with cf.ThreadPoolExecutor(8) as pool:
        allowed = list(pool.map(lambda _: breaker().allow(), range(16)))
    assert allowed.count(True) == 1  # the rest are refused while the trial is in flight
    assert breaker().current().state == HALF_OPEN
    breaker().record_failure(RuntimeError("still down"))  # the trial failed: open again, cooling anew
    assert breaker().current().state == OPEN and not breaker().allow()
    clock.now += dt.timedelta(seconds=31)
    assert breaker().allow() and not breaker().allow()
    breaker().record_success()
    assert breaker().current().state == CLOSED and breaker().allow() and breaker().allow()


def test_a_trial_whose_caller_vanished_is_claimed_again_after_the_reset_time(store, tenant_id):
    clock = Clock()
    breaker = CircuitBreaker(store, tenant_id, "esimcard", failure_threshold=1, reset_after=30, clock=clock)
    breaker.record_failure(RuntimeError("down"))
    clock.now += dt.timedelta(seconds=31)
    assert breaker.allow()  # this caller then dies without reporting
    clock.now += dt.timedelta(seconds=10)
    assert not breaker.allow()
    clock.now += dt.timedelta(seconds=21)
    assert breaker.allow() and not breaker.allow()
