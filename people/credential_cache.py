"""A worker's short memory of what a bearer resolved to: the principal and its grant on a tenant.

Each staff request reads the user, the session or API key, and the grant for its tenant from the
database. At 100 and more requests a second that lookup costs about as much as the 50-row page it
guards, so a worker process remembers each answer for ``auth_cache_s`` (0.5 s by default, never
more than 0.9 s: the settings refuse it) and most requests skip it. What that costs, and why it is
safe:

- A revocation (API key, session, grant, a user disabled, a tenant paused) written by another
  process is refused here at most ``auth_cache_s`` after its commit: the promise "refused by every
  worker within a second" holds. One made through this process (``people.users``, sign-out)
  calls ``changed``, and every cache of the process forgets at once (a request that read the old
  rows between the change and its commit keeps them for ``auth_cache_s`` at most, like any other).
- An expiry needs no revocation to be seen: an entry never outlives the access token, the session
  or the grant it was read from.
- Entries are keyed by the bearer's SHA-256 (the process keeps no credential it was not sent) and
  the tenant. Only bearers that resolved to a user on a live tenant (or with no tenant asked for)
  are remembered: unknown bearers and invented tenants are read each time, as before, so a flood
  of them neither grows the cache nor pushes real callers out of it. At most ``size`` entries; the
  least recently used leaves first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Hashable

_generation = 0


def generation() -> int:
    """Read before a lookup, given to ``put``: an answer read while a change was made is dropped."""
    return _generation


def changed() -> None:
    """Users, grants, keys or sessions changed through this process: its caches forget everything."""
    global _generation
    _generation += 1


class CredentialCache:
    """Key -> (expiry on the monotonic clock, generation, answer); ``ttl_s`` 0 turns it off."""

    def __init__(self, ttl_s: float, size: int) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._entries: OrderedDict[Hashable, tuple[float, int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        if self.ttl_s <= 0:
            return None
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            if hit[0] <= time.monotonic() or hit[1] != _generation:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return hit[2]

    def put(self, key: Hashable, answer: Any, read_at_generation: int, lifetime_s: float | None = None) -> None:
        """Remember ``answer`` for ``ttl_s``, or less when what it was read from lives less long."""
        ttl = self.ttl_s if lifetime_s is None else min(self.ttl_s, lifetime_s)
        if ttl <= 0 or read_at_generation != _generation:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, read_at_generation, answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
