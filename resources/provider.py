"""What a provider module declares about itself (``PROVIDER = ...``), and the kit it is built from.

Every outside system we call has one module (``resources/pos/treez.py``, ``resources/mx_merchant.py``,
``resources/esim/airalo.py`` …) that says everything about it: its client, its wire models, its
connection (``ConnectionSpec``), its call policy (``CallPolicy``: timeouts, attempts, backoff,
rate limit, the retry budget per client), and for a POS its order format, its webhooks and the demo
account the sandbox serves. The module ends with one ``PROVIDER`` descriptor built from those
facts; ``resources.providers`` finds every such module, and every list, map and description of
providers elsewhere is derived from it.

Also here, because every provider module uses them: ``Wire`` (the base of every wire model) and
``TokenCache``/``TOKENS`` (access tokens per account, shared by every client in the process).
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import re
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from resources.connection import ConnectionSpec
from resources.http import CallPolicy


class Wire(BaseModel):
    """Base of every wire model: unknown fields ignored, names as the provider spells them."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


@dataclass(frozen=True)
class PosWebhook:
    """How a POS delivers webhooks and how we authenticate and read them (``commerce.pos_webhooks``).

    ``signed``: the POS signs each body (HMAC in ``secret_header``; Shopify). Otherwise the
    delivery must carry the connection's URL token, and when the connection holds a
    ``webhook_secret`` the POS echoes it in ``secret_header``. ``topic_field``/``account_field``
    name the body fields holding the event type and the account (unsigned POS systems; Shopify
    says both in headers). ``account_keys``: where a connection names the account its events
    must come from (options or credentials). ``inventory_topics``: events that change stock.
    """

    secret_header: str
    inventory_topics: frozenset[str]
    account_keys: tuple[str, ...]
    signed: bool = False
    topic_field: str | None = None
    account_field: str | None = None


@dataclass(frozen=True)
class DemoAccount:
    """The demo tenant on this provider's seeded sandbox account (``storehouse demo``)."""

    tenant_id: str
    name: str
    path: str  # the account's base path on the sandbox (``/treez``; ``/shopify/storehouse-demo``)
    credentials: dict[str, Any] = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Provider:
    """One outside system, everything about it in one place.

    ``kind`` groups providers that share a client protocol (``pos``, ``esim``, ``payments``,
    ``email``, ``chat``). ``client`` builds a client (its signature is the kind's: POS factories
    take ``(base_url, credentials, options, **session_kwargs)``, eSIM classes ``(connection, *,
    timeout, retry)``). ``sandbox``: the mount name of its fake in ``sandbox/`` (the fake
    module's ``NAME``). ``rate_limit_scope``: whether our limiter holds per process or across
    processes, and why that is enough (empty where the provider states no limit we keep to).
    """

    system: str
    kind: str
    connection: ConnectionSpec
    policy: CallPolicy
    client: Callable[..., Any] | None = None
    wire: tuple[type[BaseModel], ...] = ()
    sandbox: str | None = None
    rate_limit_scope: str = ""
    priority: int = 100  # order among providers of the same kind (eSIM failover: lower first)


@dataclass(frozen=True, kw_only=True)
class PosProvider(Provider):
    """A POS (or Portaus): besides the above, how orders are sent and webhooks read.

    ``order_format(client, draft) -> (body, send, read)`` (``resources.pos_orders``); None where
    orders are not sent this way. ``self_deduplicating``: the provider itself makes a repeated
    order one order, so every retryable failure may be retried.
    """

    kind: str = "pos"
    order_format: Callable[..., Any] | None = None
    self_deduplicating: bool = False
    webhook: PosWebhook | None = None
    demo: DemoAccount | None = None


_DECLARES = re.compile(r"^PROVIDER\s*[:=]", re.M)


def discover(package: str) -> tuple[Provider, ...]:
    """The ``PROVIDER`` of every module directly in ``package`` that declares one, by priority
    then system. Only modules whose source declares ``PROVIDER`` are imported."""
    root = importlib.import_module(package)
    found = []
    for info in pkgutil.iter_modules(root.__path__):
        path = Path(root.__path__[0]) / f"{info.name}.py"
        if info.ispkg or not path.exists() or not _DECLARES.search(path.read_text()):
            continue
        provider = importlib.import_module(f"{package}.{info.name}").PROVIDER
        found.append(provider)
    return tuple(sorted(found, key=lambda p: (p.priority, p.system)))


class TokenCache:
    """Access tokens per account, shared by every client in the process, renewed early.

    Keys name an account, never hold its credentials (``key`` digests them), so two runs of the
    same tenant reuse one token for its lifetime instead of exchanging keys on every run. A
    token is renewed ``min(margin_s, a tenth of its lifetime)`` before it expires, and one
    exchange per account runs at a time, however many threads ask (token endpoints are tightly
    rate limited: Airalo's allows 3 calls a minute).
    """

    def __init__(self, margin_s: float = 120.0) -> None:
        self.margin_s = margin_s
        self._tokens: dict[Hashable, tuple[str, float]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()

    def get(self, key: Hashable, fetch: Callable[[], tuple[str, float]]) -> str:
        """The cached token for ``key``, or a new one from ``fetch() -> (token, ttl seconds)``."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            token, expires = self._tokens.get(key, ("", 0.0))
            if token and time.monotonic() < expires:
                return token
            token, ttl = fetch()
            self._tokens[key] = (token, time.monotonic() + max(1.0, ttl - min(self.margin_s, ttl / 10)))
            return token

    def invalidate(self, key: Hashable, token: str | None = None) -> None:
        """Forget the account's token (only if it is still ``token``, when given)."""
        with self._guard:
            if token is None or self._tokens.get(key, ("",))[0] == token:
                self._tokens.pop(key, None)

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()


TOKENS = TokenCache()
