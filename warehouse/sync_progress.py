"""Manual syncs and their live progress (seed 003, "Enhanced Manual Sync", "Real-Time Progress
Feedback").

A manual sync is a ``sync_requests`` row (the sync-request sensor turns it into a Dagster run of
the tenant's partition) plus a ``sync_progress`` row: its mode, who asked, and how far the run got.
The run writes that row through a :class:`ProgressWriter` (the :class:`Progress` protocol the
syncs call at the seed's eight steps); the staff API, its event stream, the staff page and
``storehouse sync --wait`` read it with :func:`get`.

One manual sync per tenant at a time: a partial unique index holds at most one ``queued`` or
``running`` row per tenant, so two requests racing cannot both get in (:class:`Busy`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any, Protocol

import sqlalchemy as sa

from warehouse.syncs import mark_launched, request_sync
from warehouse.tables.core import sync_requests
from warehouse.tables.mx import transactions
from warehouse.tables.sync_progress import sync_progress
from warehouse.types import now_utc

# The seed's eight steps ("Step-by-Step Process"), by index.
STEPS = {
    1: "Fetch transactions",
    2: "Save transactions",
    3: "Filter invoice-linked transactions",
    4: "Map invoice numbers to invoice ids",
    5: "Fetch invoice details",
    6: "Save invoices",
    7: "Extract and categorise products",
    8: "Finalise transaction updates",
}
ACTIVE = ("queued", "running")
DONE = ("succeeded", "failed")
MODES = ("incremental", "recovery")
RECOVERY_LIMIT = 1000  # the seed's emergency mode: at most this many payments re-read
TAG = "storehouse/sync_request"  # the run tag naming the request (set by the sync-request sensor)
COUNTS = ("payments_read", "payments_written", "payments_new", "payments_updated", "invoices_wanted",
          "invoices_fetched", "transactions_linked", "api_calls", "quarantined", "errors")


class Progress(Protocol):
    """What a sync reports as it goes: the step it entered, and counts to add."""

    def step(self, index: int, name: str) -> None: ...

    def add(self, **counts: int) -> None: ...


class NoProgress:
    """Progress nobody watches (a scheduled run)."""

    mode = "incremental"

    def step(self, index: int, name: str) -> None:
        pass

    def add(self, **counts: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def succeed(self) -> None:
        pass


NO_PROGRESS = NoProgress()


class Busy(Exception):
    """The tenant already has a manual sync queued or running."""

    def __init__(self, request_id: int | None):
        super().__init__(f"manual sync {request_id} is still in progress")
        self.request_id = request_id


QUEUED_TTL = dt.timedelta(minutes=10)  # queued this long with no run: the daemon is not picking it up
SILENT_TTL = dt.timedelta(minutes=30)  # running with no word this long: its run died without an end event


def close_stale(conn: sa.Connection, tenant_id: str) -> int:
    """Close the tenant's manual syncs that will never end by themselves, so they stop blocking new
    ones: queued past ``QUEUED_TTL`` (its request is withdrawn from the sensor too), or running
    with no progress written for ``SILENT_TTL``."""
    p, r, now = sync_progress.c, sync_requests.c, now_utc()
    queued = list(conn.execute(sa.select(p.request_id).where(
        p.tenant_id == tenant_id, p.status == "queued", p.requested_at < now - QUEUED_TTL)).scalars())
    if queued:
        conn.execute(sa.update(sync_requests).where(r.id.in_(queued), r.status == "pending").values(status="expired"))
    closed = 0
    for request_id in queued:
        closed += close(conn, request_id, "failed", f"no run started within {QUEUED_TTL} (is the Dagster daemon running?)")
    for request_id in conn.execute(sa.select(p.request_id).where(
            p.tenant_id == tenant_id, p.status == "running", p.updated_at < now - SILENT_TTL)).scalars().all():
        closed += close(conn, request_id, "failed", f"no progress for {SILENT_TTL}: its run stopped")
    return closed


def active(conn: sa.Connection, tenant_id: str) -> int | None:
    p = sync_progress.c
    return conn.execute(sa.select(p.request_id).where(p.tenant_id == tenant_id, p.status.in_(ACTIVE))
                        .order_by(p.request_id).limit(1)).scalar_one_or_none()


def request_manual_sync(engine: sa.Engine, tenant_id: str, job: str, requested_by: str | None,
                        mode: str = "incremental", date_from: dt.datetime | None = None,
                        date_to: dt.datetime | None = None, label: str | None = None,
                        run_here: bool = False) -> int:
    """Queue a manual sync (a ``sync_requests`` row with its ``sync_progress``); :class:`Busy`
    while the tenant has one queued or running. Returns the request id. ``run_here``: the caller
    runs it in its own process, so the request is marked started for the sensor to leave alone."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    try:
        with engine.begin() as conn:
            close_stale(conn, tenant_id)
            if (running := active(conn, tenant_id)) is not None:
                raise Busy(running)
            request_id = request_sync(conn, tenant_id, job, (label or requested_by or "cli")[:100])
            conn.execute(sa.insert(sync_progress).values(
                request_id=request_id, tenant_id=tenant_id, mode=mode, date_from=date_from, date_to=date_to,
                requested_by=requested_by, stats={}))
            if run_here:
                mark_launched(conn, request_id, f"here:{request_id}", status="started")
    except sa.exc.IntegrityError:  # another request got in between the check and the insert
        with engine.connect() as conn:
            raise Busy(active(conn, tenant_id)) from None
    return request_id


def view(row: Any) -> dict[str, Any]:
    """A progress row as the API and the CLI show it (derived figures included)."""
    out = dict(row)
    stats = dict(out.get("stats") or {})
    read = stats.get("payments_read", 0)
    stats["calls_per_transaction"] = round(stats.get("api_calls", 0) / read, 4) if read else None
    out["stats"] = stats
    out["id"] = out.pop("request_id")
    out["step_name"] = out.get("step_name") or (STEPS.get(out["step"]) if out.get("step") else None)
    out["steps"] = len(STEPS)
    return out


def get(conn: sa.Connection, tenant_id: str, request_id: int) -> dict[str, Any] | None:
    p = sync_progress.c
    row = conn.execute(sa.select(sync_progress).where(p.tenant_id == tenant_id, p.request_id == request_id)
                       ).mappings().first()
    return view(row) if row else None


def listing(conn: sa.Connection, tenant_id: str, limit: int = 50) -> list[dict[str, Any]]:
    p = sync_progress.c
    return [view(r) for r in conn.execute(sa.select(sync_progress).where(p.tenant_id == tenant_id)
                                          .order_by(p.request_id.desc()).limit(limit)).mappings()]


def finish(engine: sa.Engine, request_id: int, status: str, error: str | None = None,
           run_id: str | None = None) -> bool:
    with engine.begin() as conn:
        return close(conn, request_id, status, error, run_id)


def close(conn: sa.Connection, request_id: int, status: str, error: str | None = None,
          run_id: str | None = None) -> bool:
    """Close a progress row still queued or running (the run's end, or the run never came)."""
    values: dict[str, Any] = {"status": status, "finished_at": now_utc(), "updated_at": now_utc()}
    if status == "succeeded":
        values["percent"] = 100
    if error:
        values["error"] = error[:2000]
    if run_id:
        values["run_id"] = run_id
    p = sync_progress.c
    return conn.execute(sa.update(sync_progress).where(p.request_id == request_id, p.status.in_(ACTIVE))
                        .values(**values)).rowcount > 0


def _tenant_transactions(conn: sa.Connection, tenant_id: str) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(transactions)
                        .where(transactions.c.tenant_id == tenant_id)).scalar_one()


def linkage(conn: sa.Connection, tenant_id: str) -> tuple[int, int]:
    """(transactions referencing an invoice, those linked to their loaded invoice) of the tenant."""
    t = transactions.c
    refers = sa.or_(t.invoice_number.is_not(None), t.mx_invoice_id.is_not(None))
    total, linked = conn.execute(sa.select(
        sa.func.count(), sa.func.count(t.invoice_id)).where(t.tenant_id == tenant_id, refers)).one()
    return total, linked


class ProgressWriter:
    """A :class:`Progress` that writes one ``sync_progress`` row: at each step change at once, and
    counts at most every ``interval`` seconds (the last ones on :meth:`flush`). Thread-safe: the
    MX sync adds counts from its page and writer threads.

    Several writers may serve one request in turn (one per asset of the run): each starts from the
    counts the row holds. ``payments_new`` is the tenant's transactions now less when the request's
    first writer began (kept in the stats as ``transactions_before``); ``payments_updated`` is what
    was written less the new ones.
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
            if "transactions_before" not in self.stats:
                self.stats["transactions_before"] = _tenant_transactions(conn, self.tenant_id)
                start["stats"] = self.stats
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
        return min(99, int((index - 1 + min(within, 1.0)) * 100 / len(STEPS)))

    def flush(self) -> None:
        with self._flushing:  # one write at a time, so an older snapshot never lands after a newer one
            with self._lock:
                self._last = time.monotonic()
                stats = dict(self.stats)
                step, name = self.step_index, self.step_name
            with self.engine.begin() as conn:
                derived = self._derived(conn, stats)
                stats.update(derived)
                with self._lock:  # only what was derived: counts added meanwhile by other threads stay
                    self.stats.update(derived)
                conn.execute(sa.update(sync_progress).where(sync_progress.c.request_id == self.request_id,
                                                            sync_progress.c.status.in_(ACTIVE)).values(
                    step=step, step_name=name, percent=self.percent(), stats=stats, updated_at=now_utc()))

    def _derived(self, conn: sa.Connection, stats: dict[str, Any]) -> dict[str, Any]:
        new = max(0, _tenant_transactions(conn, self.tenant_id) - stats.get("transactions_before", 0))
        refer, linked = linkage(conn, self.tenant_id)
        return {"payments_new": new, "payments_updated": max(0, stats.get("payments_written", 0) - new),
                "linkage_rate": round(linked / refer, 4) if refer else None}

    def succeed(self) -> None:
        self.flush()
        finish(self.engine, self.request_id, "succeeded")

    def fail(self, error: str) -> None:
        with self._lock:
            self.stats["errors"] = self.stats.get("errors", 0) + 1
        self.flush()
        finish(self.engine, self.request_id, "failed", error)
