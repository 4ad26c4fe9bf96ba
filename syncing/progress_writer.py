"""``ProgressWriter``: the engine's ``Progress`` (``syncing.progress``) writing a manual sync's
``sync_progress`` row (``warehouse.sync_progress``), which the staff API, its event stream, the
staff page and ``storehouse sync --wait`` read.

The step and the counts are the engine's own (``MX_STEPS``; ``payments_read``, ``payments_new``,
``payments_updated``, ``invoices_fetched``, ``api_calls``, ``quarantined``, ``errors``, and
``payments_expected`` / ``invoices_wanted`` for how far a long step got); the writer adds the
tenant's invoice linkage rate as it stands, and ``warehouse.sync_progress.view`` the calls per
transaction.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa

from syncing.progress import MX_STEPS
from warehouse.sync_progress import ACTIVE, finish, linkage
from warehouse.tables.sync_progress import sync_progress
from warehouse.types import now_utc


class ProgressWriter:
    """A ``Progress`` that writes one ``sync_progress`` row: at each step change at once, and
    counts at most every ``interval`` seconds (the last ones on :meth:`flush`). Thread-safe: the
    MX sync adds counts from its page and writer threads.

    Several writers may serve one request in turn (one per asset of the run): each starts from
    the counts the row holds, so the row's counts are the whole run's.
    """

    def __init__(self, engine: sa.Engine, request_id: int, run_id: str | None = None, interval: float = 0.5):
        self.engine, self.request_id, self.interval = engine, request_id, interval
        self._lock, self._flushing = threading.Lock(), threading.Lock()
        self._last = 0.0
        with engine.begin() as conn:
            row = conn.execute(sa.select(sync_progress).where(sync_progress.c.request_id == request_id)
                               ).mappings().one()
            self.tenant_id, self.mode = row["tenant_id"], row["mode"]
            self.date_from, self.date_to = row["date_from"], row["date_to"]
            self.stats: dict[str, Any] = dict(row["stats"] or {})
            self.step_index, self.step_name = row["step"], row["step_name"]
            start: dict[str, Any] = {"status": "running", "updated_at": now_utc()}
            if run_id:
                start["run_id"] = run_id
            if row["started_at"] is None:
                start["started_at"] = now_utc()
            conn.execute(sa.update(sync_progress).where(sync_progress.c.request_id == request_id,
                                                        sync_progress.c.status.in_(ACTIVE)).values(**start))

    @classmethod
    def open(cls, engine: sa.Engine, request_id: int, run_id: str | None = None) -> "ProgressWriter | None":
        """The writer of this request's progress; None when it has none (e.g. a CLI request)."""
        with engine.connect() as conn:
            known = conn.execute(sa.select(sync_progress.c.request_id)
                                 .where(sync_progress.c.request_id == request_id)).first()
        return cls(engine, request_id, run_id) if known else None

    # -- the Progress protocol ---------------------------------------------------------------
    def step(self, index: int, name: str) -> None:
        with self._lock:
            self.step_index, self.step_name = index, name
        self.flush()

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, n in counts.items():
                self.stats[key] = self.stats.get(key, 0) + n
            due = time.monotonic() - self._last >= self.interval
        if due:
            self.flush()

    # -- the rest ----------------------------------------------------------------------------
    def percent(self) -> int:
        """Steps done out of eight, plus how far the long steps (1: payments, 5: invoice details) got."""
        index = max(1, self.step_index or 1)
        within = 0.0
        if index == 1 and self.stats.get("payments_expected"):
            within = self.stats.get("payments_read", 0) / self.stats["payments_expected"]
        elif index == 5 and self.stats.get("invoices_wanted"):
            within = self.stats.get("invoices_fetched", 0) / self.stats["invoices_wanted"]
        return min(99, int((index - 1 + min(within, 1.0)) * 100 / len(MX_STEPS)))

    def flush(self) -> None:
        with self._flushing:  # one write at a time, so an older snapshot never lands after a newer one
            with self._lock:
                self._last = time.monotonic()
                stats = dict(self.stats)
                step, name, percent = self.step_index, self.step_name, self.percent()
            with self.engine.begin() as conn:
                refer, linked = linkage(conn, self.tenant_id)
                stats["linkage_rate"] = round(linked / refer, 4) if refer else None
                with self._lock:  # only what was derived: counts added meanwhile by other threads stay
                    self.stats["linkage_rate"] = stats["linkage_rate"]
                conn.execute(sa.update(sync_progress).where(sync_progress.c.request_id == self.request_id,
                                                            sync_progress.c.status.in_(ACTIVE)).values(
                    step=step, step_name=name, percent=percent, stats=stats, updated_at=now_utc()))

    def succeed(self) -> None:
        self.flush()
        finish(self.engine, self.request_id, "succeeded")

    def fail(self, error: str) -> None:
        with self._lock:
            self.stats["errors"] = self.stats.get("errors", 0) + 1
        self.flush()
        finish(self.engine, self.request_id, "failed", error)
