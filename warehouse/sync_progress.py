"""Manual syncs and their live progress (seed 003, "Enhanced Manual Sync", "Real-Time Progress
Feedback").

A manual sync is a ``sync_requests`` row (the sync-request sensor turns it into a Dagster run of
the tenant's partition) plus a ``sync_progress`` row: its mode, who asked, and how far the run got.
The run writes that row through ``syncing.progress_writer.ProgressWriter`` (the engine's
``syncing.progress.Progress``, which the MX sync calls at the seed's eight steps); the staff API,
its event stream, the staff page and ``storehouse sync --wait`` read it with :func:`get`.

One manual sync per tenant at a time: a partial unique index holds at most one ``queued`` or
``running`` row per tenant, so two requests racing cannot both get in (:class:`Busy`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from warehouse.syncs import mark_launched, request_sync
from warehouse.tables.core import sync_requests
from warehouse.tables.mx import transactions
from warehouse.tables.sync_progress import sync_progress
from warehouse.types import now_utc

ACTIVE = ("queued", "running")
DONE = ("succeeded", "failed")
MODES = ("incremental", "recovery")
RECOVERY_LIMIT = 1000  # the seed's emergency mode: at most this many payments re-read
TAG = "storehouse/sync_request"  # the run tag naming the request (set by the sync-request sensor)


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


def linkage(conn: sa.Connection, tenant_id: str) -> tuple[int, int]:
    """(transactions referencing an invoice, those linked to their loaded invoice) of the tenant."""
    t = transactions.c
    refers = sa.or_(t.invoice_number.is_not(None), t.mx_invoice_id.is_not(None))
    total, linked = conn.execute(sa.select(
        sa.func.count(), sa.func.count(t.invoice_id)).where(t.tenant_id == tenant_id, refers)).one()
    return total, linked
