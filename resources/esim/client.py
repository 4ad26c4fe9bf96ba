"""Request plumbing shared by the eSIM provider clients, on top of ``resources.http.HttpSession``.

* ``EsimClientBase``: two sessions per account (one retrying for reads, one that never retries by
  itself for purchases), auth renewal once on a 401, the stock feed, rejected-record collection.
* Purchases are not idempotent at any of the real providers, so a purchase is only sent again
  when the failure proves the provider did nothing (connection refused, a 429 carrying
  ``Retry-After``, an expired token). ``PURCHASES`` remembers what this process bought by our
  reference, so a retry in the same process returns the first eSIM instead of buying a second.
  Across processes the provider must be asked: by its order id (``on_created`` hands that over
  before a two-step order is completed) or, where its order list can be searched, by our
  reference (``_find``).
* ``TOKENS`` (``resources.provider``, the one cache every provider shares): bearer tokens per
  account until near expiry (Airalo's token endpoint allows 3 calls a minute; a token is never
  fetched per call).
* The client's sessions share one retry budget (per client: per asset step, or renewed each window
  in the API's pool; ``CallPolicy`` in each provider's
  ``PROVIDER``); ``call_stats()`` reports it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, Field, ValidationError
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from resources.connection import Options, page_size_field
from resources.esim.base import (
    AccountEsim, ProviderOrderStatus, ProviderPackage, ProvisionedEsim, describe, json_body,
)
from resources.http import (
    AuthFailed, CallPolicy, ConnectionFailed, HttpSession, ProviderError, RateLimited, RequestInvalid,
)
from resources.provider import TOKENS
from warehouse.syncs import Rejected
from warehouse.tenants import TenantConnection

M = TypeVar("M", bound=BaseModel)
# What every eSIM provider states (each PROVIDER names it): 10 s per call, 3 attempts, 0.2 s backoff
# base, 32 connections, and per run at most 20 retries + 1 per 5 calls. Purchases are never
# retried unless the provider provably did nothing (_send_once).
ESIM_POLICY = CallPolicy(timeout_s=10.0, attempts=3, backoff_base_s=0.2, max_connections=32,
                         run_retry_minimum=20, run_retry_ratio=0.2)


class PurchaseMemory:
    """Purchases this process made, by (provider account, our reference); bounded, thread-safe."""

    def __init__(self, size: int = 10_000, stripes: int = 64) -> None:
        self.size = size
        self._done: OrderedDict[tuple, ProvisionedEsim] = OrderedDict()
        self._lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(stripes)]

    def clear(self) -> None:
        """Forget every purchase (as a fresh process would)."""
        with self._lock:
            self._done.clear()

    def recall(self, key: tuple) -> ProvisionedEsim | None:
        with self._lock:
            return self._done.get(key)

    def once(self, key: tuple, buy: Callable[[], ProvisionedEsim]) -> ProvisionedEsim:
        with self._stripes[hash(key) % len(self._stripes)]:  # same reference: one purchase at a time
            known = self.recall(key)
            if known is not None:
                return known
            esim = buy()
            with self._lock:
                self._done[key] = esim
                while len(self._done) > self.size:
                    self._done.popitem(last=False)
            return esim



class EsimOptions(Options):
    """What every eSIM provider account may set (the catalog's prices and stock too)."""

    rate_limit_per_s: float | None = Field(None, gt=0)
    page_size: int | None = page_size_field()
    stock_feed_url: str | None = None  # an absolute URL, or a path on the provider's host
    margin_pct: float | None = Field(None, ge=0, le=1000)
    round_to: str | None = None
    low_stock_threshold: int | None = Field(None, ge=0)
    priority: float | None = None  # failover order, lower first

PURCHASES = PurchaseMemory()


def account_key(provider: str, base_url: str, login: str, secret: str) -> tuple:
    """Identifies one provider account; a rotated secret is a new key (its old token is dropped)."""
    return provider, base_url, login, hashlib.sha256(secret.encode()).hexdigest()[:16]


def _never_reached_provider(error: BaseException, policy: CallPolicy) -> bool:
    """True when the failed call provably did nothing, so sending it again cannot buy twice."""
    if isinstance(error, RateLimited):  # a throttle says Retry-After; MobiMatter's out-of-stock 429 does not
        return error.retry_after is not None and error.retry_after <= policy.retry_after_ceiling_s
    never_connected = (httpx.ConnectError, httpx.ConnectTimeout)
    return isinstance(error, ConnectionFailed) and isinstance(error.__cause__, never_connected)


class EsimClientBase:
    """One tenant's account at one provider: sessions, auth renewal, purchase memory, stock feed.

    Subclasses set ``name`` and ``api_path`` and implement ``iter_packages``, ``_buy`` and
    ``_lookup``; those that can, ``_find`` and ``resume``. ``rejected`` collects wire records that
    could not be normalised (for quarantine).
    """

    name = ""
    api_path = ""
    default_page_size = 100
    lists_esims = False  # True where esims_bought_since reads the account's eSIM list

    def __init__(self, connection: TenantConnection, login: str, secret: str, *, policy: CallPolicy,
                 headers: dict[str, str] | None = None) -> None:
        base = connection.base_url.rstrip("/") + self.api_path
        rate = connection.options.get("rate_limit_per_s")
        self.account = account_key(self.name, base, login, secret)
        self.policy, self.budget = policy, policy.budget()  # one budget for all of this client's sessions
        self.timeout = policy.timeout_s
        self.http = HttpSession(self.name, base, headers=headers, policy=policy, budget=self.budget, rate_limit=rate)
        # Non-idempotent calls go through a session that never retries by itself (see _send_once).
        self.http_once = HttpSession(self.name, base, headers=headers, budget=self.budget,
                                     policy=policy.with_overrides(attempts=1), rate_limit=rate)
        self.page_size = int(connection.options.get("page_size", self.default_page_size))
        self.stock_feed_url = self._feed_url(connection)
        self._feed: HttpSession | None = None
        self.rejected: list[Rejected] = []

    @staticmethod
    def credential(connection: TenantConnection, key: str) -> str:
        value = connection.credentials.get(key)
        if not value:
            raise AuthFailed(connection.system, f"the connection has no '{key}' credential")
        return str(value)

    def _expect(self, model: type[M], data: Any, what: str) -> M:
        """``data`` as ``model``, or a ``ProviderError`` saying which answer was malformed."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise ProviderError(self.name, f"{what} is malformed ({describe(exc)})") from None

    def _accept(self, build: Callable[[], ProviderPackage], raw: Any, id_field: str | None = "id"
                ) -> ProviderPackage | None:
        """A normalised package, or None with the raw record kept in ``rejected`` and why (and the
        package id it carries in ``id_field``, so the catalog sync knows it is still listed)."""
        try:
            return build()
        except (ValueError, ArithmeticError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            reason = describe(exc) if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
            found = raw.get(id_field) if id_field and isinstance(raw, dict) else None
            self.rejected.append(Rejected(raw, reason, str(found) if found not in (None, "") else None))
            return None

    @staticmethod
    def _feed_url(connection: TenantConnection) -> str | None:
        """The connection's stock feed: an absolute URL, or a path on the provider's host."""
        feed = connection.options.get("stock_feed_url")
        if not feed or str(feed).startswith(("http://", "https://")):
            return feed or None
        url = httpx.URL(connection.base_url)
        return str(url.copy_with(path=str(feed), query=None))

    @property
    def calls(self) -> int:
        return self.http.stats.calls + self.http_once.stats.calls + (self._feed.stats.calls if self._feed else 0)

    def call_stats(self) -> dict[str, int]:
        """This client's calls, retries and retry budget (all its sessions), for run metadata."""
        return self.budget.stats()

    # -- auth: bearer providers override these two ----------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        return {}

    def _renew_auth(self) -> bool:
        """Forget a rejected credential; True when a fresh one is worth one more try."""
        return False

    def request(self, method: str, path: str, *, once: bool = False, **kwargs: Any) -> httpx.Response:
        for attempt in (1, 2):
            headers = {**kwargs.pop("headers", {}), **self._auth_headers()}
            try:
                if once:
                    return self._send_once(method, path, headers=headers, **kwargs)
                return self.http.request(method, path, headers=headers, **kwargs)
            except AuthFailed:
                if attempt == 2 or not self._renew_auth():
                    raise
        raise AssertionError("unreachable")

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return json_body(self.request("GET", path, **kwargs))

    def _send_once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts), wait=self.policy.wait, reraise=True,
            retry=retry_if_exception(lambda e: _never_reached_provider(e, self.policy)),
        )
        return retrying(self.http_once.request, method, path, **kwargs)

    # -- the contract ---------------------------------------------------------------------
    def iter_packages(self) -> Iterator[ProviderPackage]:
        raise NotImplementedError

    def _buy(self, provider_package_id: str, reference: str, email: str | None,
             on_created: Callable[[str], None] | None) -> ProvisionedEsim:
        raise NotImplementedError

    def _lookup(self, provider_order_id: str) -> ProviderOrderStatus:
        raise NotImplementedError

    def _find(self, reference: str) -> ProviderOrderStatus:
        """Our order by our reference, where the provider's order list can be searched by it."""
        return ProviderOrderStatus(
            provider=self.name, provider_order_id=None, state="pending",
            detail=f"unknown: {self.name} cannot be searched by our reference and this process did not buy it",
        )

    def purchase(self, provider_package_id: str, reference: str, email: str | None = None,
                 on_created: Callable[[str], None] | None = None) -> ProvisionedEsim:
        """Buy one eSIM; ``reference`` is our order id (the same reference in this process buys once).

        ``on_created`` gets the provider's order id as soon as a two-step order exists and before
        it is completed (MobiMatter), so a caller that dies in between can ``resume`` it.
        """
        if not reference:
            raise ValueError("a purchase needs our order id as its reference")
        return PURCHASES.once((*self.account, reference),
                              lambda: self._buy(provider_package_id, reference, email, on_created))

    def resume(self, provider_order_id: str) -> ProvisionedEsim:
        """Complete an order that was created but never completed (two-step providers only)."""
        raise NotImplementedError(f"{self.name} orders are complete once bought")

    def release(self, provider_order_id: str, reason: str) -> bool:
        """Cancel an order that was created but will not be completed, so it holds no stock;
        False where orders are complete once bought and there is nothing to release."""
        return False

    def order_status(self, reference: str, provider_order_id: str | None = None) -> ProviderOrderStatus:
        """Ask the provider by its order id; without one, by our reference where it can be searched.

        Otherwise only this process's own purchases are known, and the answer is ``pending``.
        """
        if provider_order_id:
            try:
                return self._lookup(provider_order_id)
            except RequestInvalid as exc:
                if exc.kind != "not_found":
                    raise
                return ProviderOrderStatus(provider=self.name, provider_order_id=provider_order_id, state="not_found")
        known = PURCHASES.recall((*self.account, reference))
        if known is not None:
            return ProviderOrderStatus(provider=self.name, provider_order_id=known.provider_order_id,
                                       state="completed", esim=known)
        return self._find(reference)

    def esims_bought_since(self, since: dt.datetime) -> list[AccountEsim] | None:
        """The eSIMs the account bought at or after ``since`` (UTC), where its eSIM list can be read
        and our reference cannot be searched (eSIM Card); None where it cannot be listed."""
        return None

    def stock_levels(self) -> dict[str, int] | None:
        """Units left per package from the account's stock feed; None when it has no feed.

        The feed is ``{"packages": {package_id: units}, "out_of_stock": bool}``: the providers'
        order APIs publish no stock counts, so where the numbers come from is per connection.
        """
        if not self.stock_feed_url:
            return None
        url = httpx.URL(self.stock_feed_url)
        if self._feed is None:  # its own session: the provider's credential headers never go to the feed
            origin = f"{url.scheme}://{url.netloc.decode()}"
            self._feed = HttpSession(f"{self.name} stock feed", origin, policy=self.policy, budget=self.budget,
                                     rate_limit=0)
        body = json_body(self._feed.request("GET", url.raw_path.decode()))
        units = {str(k): max(0, int(v)) for k, v in (body.get("packages") or {}).items()}
        return {k: 0 for k in units} if body.get("out_of_stock") else units

    def close(self) -> None:
        self.http.close()
        self.http_once.close()
        if self._feed:
            self._feed.close()


class BearerClient(EsimClientBase):
    """A provider that trades a login for a bearer token: cached in ``TOKENS``, renewed once on a 401."""

    _token: str | None = None

    def _fetch_token(self) -> tuple[str, float]:
        """(token, lifetime in seconds) from the provider's login call."""
        raise NotImplementedError

    def _auth_headers(self) -> dict[str, str]:
        self._token = TOKENS.get(self.account, self._fetch_token)
        return {"Authorization": f"Bearer {self._token}"}

    def _renew_auth(self) -> bool:
        if not self._token:
            return False
        TOKENS.invalidate(self.account, self._token)
        self._token = None
        return True
