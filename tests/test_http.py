"""The request helper: retries only what is retryable, honours Retry-After, names no secret."""

import time

import httpx
import pytest

from resources.http import AuthFailed, HttpSession, RateLimited, RetryPolicy, ServerError


def _session(handler, **retry):
    session = HttpSession("fake", "http://provider.test", auth=("key", "s3cret-value"),
                          retry=RetryPolicy(backoff_base=0.001, **retry))
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
    session = _session(lambda request: next(answers), retry_after_floor=0.05)
    started = time.perf_counter()
    session.get_json("/x")
    assert 0.25 <= time.perf_counter() - started < 2


def test_gives_up_when_asked_to_wait_past_the_ceiling():
    session = _session(lambda request: httpx.Response(429, headers={"Retry-After": "3600"}), retry_after_ceiling=60)
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
