"""Shops: a tenant as the API sees it, with its connections, cached briefly per process.

A route names its shop by slug; the directory answers with the tenant's own connections only,
so one shop's Stripe keys, webhook secrets and provider accounts never serve another. The cache
remembers unknown slugs too (so a flood of them costs one query each per ``ttl_s``, not one per
request), in a bounded cache of their own: at most ``max_entries`` known shops and as many unknown
slugs, the least recently used of each leaving first. Any number of random slugs therefore cannot
grow a worker's memory past that, nor push a real shop out (to be re-read and decrypted on its
next request).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import sqlalchemy as sa

from resources.esim import PROVIDERS
from warehouse.tables.core import tenant_connections, tenants
from warehouse.tenants import CONNECTION_COLUMNS, TenantConnection, connection_from_row

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Storefront:
    tenant_id: str
    name: str
    connections: dict[str, TenantConnection] = field(repr=False)

    def connection(self, system: str) -> TenantConnection | None:
        return self.connections.get(system)

    def providers(self, default_priority: list[str] | tuple[str, ...] = PROVIDERS) -> list[TenantConnection]:
        """The shop's eSIM provider accounts in failover order.

        The order is the configured priority unless a connection sets ``options.priority``
        (lower first), which lets one shop prefer another provider without a redeploy.
        """
        order = {name: i for i, name in enumerate(default_priority)}
        found = [c for name, c in self.connections.items() if name in PROVIDERS and name in order]
        return sorted(found, key=lambda c: (float(c.options.get("priority", order[c.system])), order[c.system]))


class _Lru:
    """Slug -> (expiry, value), at most ``size`` entries, the least recently used leaving first."""

    def __init__(self, size: int) -> None:
        self.size, self.entries = size, OrderedDict()

    def get(self, slug: str, now: float):
        hit = self.entries.get(slug)
        if hit is None:
            return None
        if hit[0] <= now:
            del self.entries[slug]
            return None
        self.entries.move_to_end(slug)
        return hit

    def put(self, slug: str, expires: float, value) -> None:
        self.entries[slug] = (expires, value)
        self.entries.move_to_end(slug)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


class StorefrontDirectory:
    """Active tenants by slug, with connections; entries live ``ttl_s`` seconds (0: no cache),
    at most ``max_entries`` known shops and as many unknown slugs, each kind in its own cache."""

    def __init__(self, engine: sa.Engine, ttl_s: float = 5.0, max_entries: int = 4096) -> None:
        self.engine, self.ttl_s, self.max_entries = engine, ttl_s, max_entries
        self._known, self._unknown = _Lru(max_entries), _Lru(max_entries)
        self._lock = threading.Lock()

    def remembered(self, tenant_id: str) -> tuple[bool, Storefront | None]:
        """(True, the answer) when ``get`` would answer without the warehouse (a bad slug, or
        one cached and still fresh); else (False, None). Never blocks on I/O, so the API asks it
        on the event loop and goes to a thread only on a miss."""
        if not SLUG.match(tenant_id):
            return True, None
        now = time.monotonic()
        with self._lock:
            hit = self._known.get(tenant_id, now) or self._unknown.get(tenant_id, now)
        return (True, hit[1]) if hit else (False, None)

    def get(self, tenant_id: str) -> Storefront | None:
        known, storefront = self.remembered(tenant_id)
        if known:
            return storefront
        now = time.monotonic()
        storefront = self._load(tenant_id)
        if self.ttl_s > 0:
            with self._lock:
                (self._known if storefront else self._unknown).put(tenant_id, now + self.ttl_s, storefront)
                (self._unknown if storefront else self._known).entries.pop(tenant_id, None)
        return storefront

    def cached(self) -> tuple[int, int]:
        """(known shops, unknown slugs) cached now."""
        with self._lock:
            return len(self._known.entries), len(self._unknown.entries)

    def forget(self, tenant_id: str | None = None) -> None:
        with self._lock:
            for lru in (self._known, self._unknown):
                if tenant_id is None:
                    lru.entries.clear()
                else:
                    lru.entries.pop(tenant_id, None)

    def paused(self, tenant_id: str) -> bool:
        """The tenant exists but is not active (its orders wait for it), as against removed."""
        with self.engine.connect() as conn:
            status = conn.execute(sa.select(tenants.c.status)
                                  .where(tenants.c.tenant_id == tenant_id)).scalar_one_or_none()
        return status is not None and status != "active"

    def _load(self, tenant_id: str) -> Storefront | None:
        t = tenant_connections.c
        with self.engine.connect() as conn:
            name = conn.execute(
                sa.select(tenants.c.name).where(tenants.c.tenant_id == tenant_id, tenants.c.status == "active")
            ).scalar_one_or_none()
            if name is None:
                return None
            rows = conn.execute(sa.select(*CONNECTION_COLUMNS).where(t.tenant_id == tenant_id)).all()
        return Storefront(tenant_id, name, {row.system: connection_from_row(row) for row in rows})
