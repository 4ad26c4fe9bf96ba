"""The one request helper every provider client uses.

Timeouts on every call; bounded retries with exponential backoff and full jitter for retryable
failures only (connection errors, 429, 5xx), honouring ``Retry-After`` (with a floor, so
``Retry-After: 0`` cannot become a hot loop, and a ceiling, past which we give up rather than
stall a run); an optional per-tenant rate limit; error classes that say what went wrong
(connection / auth / validation / rate limit / server) without ever including a credential.

Each provider states its ``CallPolicy`` once, in its descriptor (``PROVIDER.policy``): timeout,
attempts per call, backoff, the ``Retry-After`` floor and ceiling, a default rate limit, and the
retry budget. A session built from it carries one ``RetryBudget``, shared by every session
of the same client, which refuses further retries once the client has spent ``minimum + ratio ×
calls`` of them: a provider failing on every call costs a bounded number of extra calls, not
``attempts`` times each. The budget is per client, and a client is built per asset step and
connection: in one Dagster run each asset (MX transactions, MX invoices, each POS stream's
asset …) builds its own client and so has its own budget, sized by its own calls. A run's
worst case is therefore the sum of its steps' budgets. ``call_stats()`` gives each client's
counts for its step's metadata.

Dagster does not retry a provider's failure on top of this (``assets.common.API_RETRY`` is for
the other failures): the HTTP layer has spent the policy's attempts and the run's budget by then.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import threading
import time
from dataclasses import dataclass, field, fields, replace
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception

log = logging.getLogger("storehouse.http")
# httpx logs every URL at INFO, and some URLs are secrets (Slack hooks): keep them out of logs.
logging.getLogger("httpx").setLevel(logging.WARNING)


class ProviderError(Exception):
    """A failed call to an outside system. ``kind`` classifies it; the message names no secret."""

    kind = "provider"
    retryable = False

    def __init__(
        self, provider: str, message: str, *, status: int | None = None, retry_after: float | None = None,
        error_code: str | None = None,
    ):
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.error_code = error_code  # the provider's own error code, when its body carries one


class ConnectionFailed(ProviderError):
    kind, retryable = "connection", True


class AuthFailed(ProviderError):
    kind = "auth"


class RequestInvalid(ProviderError):
    kind = "validation"


class NotFound(RequestInvalid):
    kind = "not_found"


class RateLimited(ProviderError):
    kind, retryable = "rate_limited", True


class ServerError(ProviderError):
    kind, retryable = "server", True


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def describe_request(method: str, url: httpx.URL | str, redact_path: bool = False) -> str:
    """``METHOD /path`` for messages: never the query string, and no path at all where the path
    itself is a secret (a Slack incoming-webhook URL)."""
    if redact_path:
        return f"{method} <path withheld>"
    return f"{method} {httpx.URL(str(url)).path}"


def classify(provider: str, response: httpx.Response, redact_path: bool = False) -> ProviderError | None:
    """Map a non-success response to our error classes (None when it succeeded).

    Messages name the status and the request, never the response body: a provider echoing the
    form it received (a token request) would otherwise put a secret into run logs.
    """
    status = response.status_code
    if status < 400:
        return None
    where = describe_request(response.request.method, response.request.url, redact_path)
    if status in (401, 403):
        return AuthFailed(provider, f"credentials rejected ({status}) on {where}", status=status)
    if status == 404:
        return NotFound(provider, f"not found on {where}", status=status)
    if status == 429:
        return RateLimited(provider, f"rate limited on {where}", status=status, retry_after=retry_after_seconds(response))
    if status >= 500:
        return ServerError(provider, f"server error {status} on {where}", status=status, retry_after=retry_after_seconds(response))
    return RequestInvalid(provider, f"request refused ({status}) on {where}", status=status,
                          error_code=provider_error_code(response))


def provider_error_code(response: httpx.Response) -> str | None:
    """A JSON body's ``code``/``errorCode``/``error.code`` (never the rest of the body)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    nested = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = body.get("code", body.get("errorCode", nested.get("code")))
    return None if code is None else str(code)


class RetryBudget:
    """Retries one run may spend across all its calls: ``minimum + ratio × calls`` (thread-safe).

    The ratio keeps a long run's allowance in proportion to its size (a sync of thousands of
    detail calls may meet a few dozen 5xx), the minimum lets a short run ride out a brief outage.
    Past it, a retryable failure is raised at once: the provider is failing too often for more
    retries to be worth their calls. A client keeps one budget for its life (``window_s`` None):
    clients are built per asset step and connection, so that is one budget per step, not per run; a client kept across requests (the API's pools) renews it every
    ``window_s`` seconds, so an outage yesterday costs nothing today.
    """

    def __init__(self, minimum: int = 20, ratio: float = 0.2, window_s: float | None = None) -> None:
        self.minimum, self.ratio, self.window_s = minimum, ratio, window_s
        self.calls = self.retries = self.refused = 0
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def _renew(self) -> None:
        """Start a new window when the current one is over (caller holds the lock)."""
        if self.window_s is not None and time.monotonic() - self._since >= self.window_s:
            self._since, self.calls, self.retries = time.monotonic(), 0, 0

    @property
    def budget(self) -> int:
        """The retries allowed so far (it grows with the calls made)."""
        return self.minimum + int(self.ratio * self.calls)

    def call(self) -> None:
        with self._lock:
            self._renew()
            self.calls += 1

    def take(self) -> bool:
        """Spend one retry; False (and counted as refused) once the budget is spent."""
        with self._lock:
            self._renew()
            if self.retries < self.minimum + int(self.ratio * self.calls):
                self.retries += 1
                return True
            self.refused += 1
            return False

    def stats(self) -> dict[str, int]:
        """For run metadata: calls made, retries spent, the budget they were allowed, retries refused."""
        with self._lock:
            return {"api_retries": self.retries, "api_retry_budget": self.budget,
                    "api_retries_refused": self.refused}


@dataclass(frozen=True)
class CallPolicy:
    """How we call one provider, stated once in its descriptor: per call and per run.

    ``attempts`` per logical call (1: never retried), waits of exponential backoff with full
    jitter between ``retry_after_floor_s`` and ``backoff_max_s`` (a ``Retry-After`` is honoured,
    at least the floor, and past the ceiling we give up rather than stall a run), a default
    ``rate_limit_per_s`` (a connection's ``rate_limit_per_s`` option overrides it) and the retry
    budget of each client built with it (``RetryBudget``: one per client, i.e. per asset step and
    connection). This is the only policy: the Dagster resources and ``CommerceSettings`` may
    override named fields of it (``with_overrides``; None keeps the provider's value), e.g.
    tests and the API's order path use shorter ones.
    """

    timeout_s: float = 15.0
    attempts: int = 5
    backoff_base_s: float = 0.25
    backoff_max_s: float = 20.0
    retry_after_floor_s: float = 0.05
    retry_after_ceiling_s: float = 120.0
    rate_limit_per_s: float | None = None
    max_connections: int = 8
    run_retry_minimum: int = 20
    run_retry_ratio: float = 0.2
    retry_window_s: float | None = None  # None: one budget per client (a run); else renewed every window

    def should_retry(self, error: BaseException) -> bool:
        """Retryable errors only, and not when the server asks us to wait longer than the ceiling."""
        if not (isinstance(error, ProviderError) and error.retryable):
            return False
        return error.retry_after is None or error.retry_after <= self.retry_after_ceiling_s

    def wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: the server's ``Retry-After`` (within floor and ceiling),
        else exponential backoff with full jitter."""
        error = state.outcome.exception() if state.outcome else None
        hinted = getattr(error, "retry_after", None)
        if hinted is not None:
            return min(max(hinted, self.retry_after_floor_s), self.retry_after_ceiling_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (state.attempt_number - 1))
        return random.uniform(self.retry_after_floor_s, max(self.retry_after_floor_s, ceiling))

    def budget(self) -> RetryBudget:
        return RetryBudget(self.run_retry_minimum, self.run_retry_ratio, self.retry_window_s)

    def with_overrides(self, **changes: Any) -> "CallPolicy":
        """This policy with the given fields replaced; None leaves a field as the provider states it."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown call policy fields: {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class RateLimiter:
    """Token bucket: at most ``rate`` calls per second, bursts of ``burst`` (default none), thread-safe.

    Providers count calls in fixed or sliding windows; a burst on top of the steady rate would
    overrun those, so the default bucket holds a single token.
    """

    def __init__(self, rate: float, burst: int = 1):
        self.rate = rate
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait:
            time.sleep(wait)


@dataclass
class CallStats:
    """What a client did: logical calls, HTTP attempts, retries. Thread-safe."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, calls: int = 0, attempts: int = 0, retries: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.attempts += attempts
            self.retries += retries


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (as httpx makes it: certifi's roots), shared by every
    client: loading the roots costs ~50 ms of CPU, once per client otherwise, and a run that syncs
    many tenants makes two clients a tenant. An ``SSLContext`` is safe to share across threads."""
    return httpx.create_ssl_context()


class HttpSession:
    """An httpx client bound to one provider account, with the retry/timeout/limit policy."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        rate_limit: float | None = None,
        max_connections: int | None = None,
        redact_path: bool = False,
        policy: CallPolicy | None = None,
        budget: RetryBudget | None = None,
    ):
        """``policy`` supplies timeout, retries, rate limit, connections and the run's budget;
        an explicit argument wins over it (``budget``: share one among a client's sessions)."""
        self.provider = provider
        self.redact_path = redact_path
        self.policy = policy or CallPolicy()
        self.budget = budget or self.policy.budget()
        self.stats = CallStats()
        rate_limit = rate_limit if rate_limit is not None else self.policy.rate_limit_per_s
        self.limiter = RateLimiter(rate_limit) if rate_limit else None
        timeout = timeout if timeout is not None else self.policy.timeout_s
        max_connections = max_connections or (self.policy.max_connections if policy else 32)
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            auth=auth,
            headers={"User-Agent": "storehouse/0.1", **(headers or {})},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            verify=tls_context(),
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "HttpSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One logical call: retried per the policy; raises a ``ProviderError`` on failure."""
        self.stats.add(calls=1)
        self.budget.call()
        retrying = Retrying(
            stop=self._stop,
            wait=self.policy.wait,
            retry=retry_if_exception(self.policy.should_retry),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(self._attempt, method, path, **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def call_stats(self) -> dict[str, int]:
        """The run's calls, retries and retry budget (shared by the client's sessions), for metadata."""
        return self.budget.stats()

    def _stop(self, state: RetryCallState) -> bool:
        """Stop after the policy's attempts, or when the client's retry budget refuses one more."""
        if state.attempt_number >= self.policy.attempts:
            return True
        if self.budget.take():
            return False
        log.warning("%s: the client's retry budget (%d) is spent; not retrying", self.provider, self.budget.budget)
        return True

    def _attempt(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.limiter:
            self.limiter.acquire()
        self.stats.add(attempts=1)
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            where = describe_request(method, path, self.redact_path)
            raise ConnectionFailed(self.provider, f"timed out on {where}") from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.provider, f"cannot reach {self.client.base_url.host} ({type(exc).__name__})") from exc
        error = classify(self.provider, response, self.redact_path)
        if error is not None:
            raise error
        return response

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add(retries=1)
        error = state.outcome.exception() if state.outcome else None
        log.info("%s: retrying after %s error (status %s, attempt %d)", self.provider,
                 getattr(error, "kind", "unknown"), getattr(error, "status", None), state.attempt_number)
