"""The request helper: retries only what is retryable, honours Retry-After, names no secret."""

import time

import httpx
import pytest

from resources.http import AuthFailed, CallPolicy, HttpSession, RateLimited, ServerError


def _session(handler, **policy):
    session = HttpSession("fake", "http://provider.test", auth=("key", "s3cret-value"),
                          policy=CallPolicy(backoff_base_s=0.001, **policy))
    session.client = httpx.Client(base_url="http://provider.test", transport=httpx.MockTransport(handler))
    return session


def test_retries_5xx_then_succeeds_and_counts():
    answers = iter([500, 502, 200])
    session = _session(lambda request: httpx.Response(next(answers), json={"ok": True}))
    assert session.get_json("/x") == {"ok": True}
    assert (session.stats.calls, session.stats.attempts, session.stats.retries) == (1, 3, 2)


def test_honours_retry_after_with_a_floor():
    answers = iter([httpx.Response(429, headers={"Retry-After": "0.2"}), httpx.Response(429, headers={"Retry-After": "0"}),
                    httpx.Response(200, json={})])
    session = _session(lambda request: next(answers), retry_after_floor_s=0.05)
    started = time.perf_counter()
    session.get_json("/x")
    assert 0.25 <= time.perf_counter() - started < 2


def test_gives_up_when_asked_to_wait_past_the_ceiling():
    session = _session(lambda request: httpx.Response(429, headers={"Retry-After": "3600"}), retry_after_ceiling_s=60)
    with pytest.raises(RateLimited):
        session.get_json("/x")
    assert session.stats.attempts == 1


def test_bounded_attempts():
    session = _session(lambda request: httpx.Response(503), attempts=3)
    with pytest.raises(ServerError):
        session.get_json("/x")
    assert session.stats.attempts == 3


def test_auth_errors_are_not_retried_and_hold_no_secret():
    session = _session(lambda request: httpx.Response(401, text="bad key s3cret-value"))
    with pytest.raises(AuthFailed) as err:
        session.get_json("/x")
    assert session.stats.attempts == 1 and "s3cret-value" not in str(err.value)


def _policy_session(handler, budget=None, **policy):
    from resources.http import CallPolicy

    session = HttpSession("fake", "http://provider.test", budget=budget,
                          policy=CallPolicy(backoff_base_s=0.001, retry_after_floor_s=0.0, **policy))
    session.client = httpx.Client(base_url="http://provider.test", transport=httpx.MockTransport(handler))
    return session


def test_the_runs_retry_budget_refuses_retries_once_spent():
    session = _policy_session(lambda request: httpx.Response(503), attempts=5, run_retry_minimum=3, run_retry_ratio=0)
    with pytest.raises(ServerError):
        session.get_json("/x")
    assert session.stats.attempts == 4  # 3 retries, then the budget said no (the policy allowed 4)
    with pytest.raises(ServerError):
        session.get_json("/y")
    assert session.stats.attempts == 5  # nothing left: tried once
    assert session.call_stats() == {"api_retries": 3, "api_retry_budget": 3, "api_retries_refused": 2}
    assert (session.budget.calls, session.budget.retries, session.budget.budget) == (2, 3, 3)


def test_the_budget_grows_with_the_calls_and_is_shared_by_a_clients_sessions():
    from resources.http import RetryBudget

    budget = RetryBudget(minimum=1, ratio=0.5)
    ok = _policy_session(lambda request: httpx.Response(200, json={}), budget=budget)
    for _ in range(4):
        ok.get_json("/x")
    assert budget.budget == 3  # 1 + 4 calls × 0.5
    answers = iter([500, 500, 500, 200])
    flaky = _policy_session(lambda request: httpx.Response(next(answers), json={}), budget=budget, attempts=5)
    assert flaky.get_json("/x") == {}  # its three retries came out of the same budget
    assert budget.retries == 3 and ok.call_stats() == flaky.call_stats()


def test_a_pooled_clients_budget_renews_each_window():
    from resources.http import RetryBudget

    budget = RetryBudget(minimum=1, ratio=0, window_s=0.2)
    assert budget.take() and not budget.take()  # spent in this window
    time.sleep(0.25)
    assert budget.take() and budget.stats()["api_retries"] == 1
    assert not RetryBudget(minimum=0, ratio=0).take()  # a run's budget never renews
