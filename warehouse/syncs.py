"""Sync bookkeeping the sensors and the CLI read: a rejected record, the ``sync_runs`` rows left
running, and manual sync requests. The engine that writes cursors, quarantine and the ledger is
``syncing`` (``syncing.state``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from warehouse.tables.core import sync_requests, sync_runs
from warehouse.types import now_utc


@dataclass
class Rejected:
    """A record that could not be loaded, with why."""

    raw: Any
    reason: str
    source_id: str | None = None


@dataclass(frozen=True)
class OpenSync:
    """A ``sync_runs`` row still ``running``."""

    id: int
    tenant_id: str
    stream: str
    run_id: str | None
    worker: str | None
    started_at: dt.datetime


def open_syncs(conn: sa.Connection, limit: int = 1000) -> list[OpenSync]:
    r = sync_runs.c
    return [OpenSync(*row) for row in conn.execute(
        sa.select(r.id, r.tenant_id, r.stream, r.run_id, r.worker, r.started_at)
        .where(r.status == "running").order_by(r.id).limit(limit))]


def running_elsewhere(conn: sa.Connection, tenant_id: str, streams: list[str], run_id: str | None) -> OpenSync | None:
    """A sync of the tenant's ``streams`` running now in another run (or outside Dagster), if any:
    the per-tenant lease of a run that syncs several tenants (a run of one holds Dagster's)."""
    r = sync_runs.c
    row = conn.execute(
        sa.select(r.id, r.tenant_id, r.stream, r.run_id, r.worker, r.started_at)
        .where(r.tenant_id == tenant_id, r.stream.in_(streams), r.status == "running",
               sa.or_(r.run_id.is_(None), r.run_id != (run_id or ""))).order_by(r.id).limit(1)).first()
    return OpenSync(*row) if row else None


def close_abandoned(conn: sa.Connection, reasons: dict[int, str]) -> int:
    """Close these rows (if still running) as ``abandoned``, each with why; returns how many."""
    closed, now = 0, now_utc()
    for sync_id, reason in reasons.items():
        closed += conn.execute(sa.update(sync_runs).where(sync_runs.c.id == sync_id, sync_runs.c.status == "running")
                               .values(status="abandoned", finished_at=now, error=reason[:2000])).rowcount
    return closed


def request_sync(conn: sa.Connection, tenant_id: str, job: str, requested_by: str) -> int:
    return conn.execute(
        sa.insert(sync_requests).values(tenant_id=tenant_id, job=job, requested_by=requested_by)
        .returning(sync_requests.c.id)
    ).scalar_one()


def pending_requests(conn: sa.Connection, limit: int = 100) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        sa.select(sync_requests).where(sync_requests.c.status == "pending").order_by(sync_requests.c.id).limit(limit)
    ).mappings()]


def launched_before(conn: sa.Connection, end: dt.datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Requests handed to the daemon before ``end`` whose run was not seen yet."""
    r = sync_requests.c
    return [dict(row) for row in conn.execute(sa.select(sync_requests).where(
        r.status == "launched", r.launched_at < end).order_by(r.id).limit(limit)).mappings()]


def mark_started(conn: sa.Connection, request_ids: list[int]) -> None:
    """Their runs exist: nothing more to watch."""
    if request_ids:
        conn.execute(sa.update(sync_requests).where(sync_requests.c.id.in_(request_ids)).values(status="started"))


def mark_launched(conn: sa.Connection, request_id: int, run_key: str, status: str = "launched") -> None:
    conn.execute(
        sa.update(sync_requests).where(sync_requests.c.id == request_id)
        .values(status=status, run_key=run_key, launched_at=now_utc())
    )
