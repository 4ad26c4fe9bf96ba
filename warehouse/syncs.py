"""Sync bookkeeping: cursors, the ``sync_runs`` ledger, quarantine and manual sync requests."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson
import sqlalchemy as sa

from warehouse.tables.core import quarantine, sync_requests, sync_runs, sync_state
from warehouse.types import now_utc
from warehouse.upsert import upsert


def load_cursor(conn: sa.Connection, tenant_id: str, stream: str) -> dict[str, Any] | None:
    return conn.execute(
        sa.select(sync_state.c.cursor).where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
    ).scalar_one_or_none()


def save_cursor(conn: sa.Connection, tenant_id: str, stream: str, cursor: dict[str, Any]) -> None:
    upsert(conn, sync_state, [{"tenant_id": tenant_id, "stream": stream, "cursor": cursor}])


@dataclass
class Rejected:
    """A record that could not be loaded, with why."""

    raw: Any
    reason: str
    source_id: str | None = None


def record_key(raw: Any) -> str:
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def quarantine_records(
    conn: sa.Connection, tenant_id: str, stream: str, rejected: Iterable[Rejected], run_id: str | None = None
) -> int:
    """Keep each rejected record whole with its reason; the same record twice is stored once."""
    rows = [
        {"tenant_id": tenant_id, "stream": stream, "record_key": record_key(r.raw),
         "source_id": None if r.source_id is None else str(r.source_id)[:128],
         "reason": r.reason, "raw": r.raw if isinstance(r.raw, (dict, list)) else {"value": r.raw},
         "run_id": run_id}
        for r in rejected
    ]
    if rows:
        upsert(conn, quarantine, rows)
    return len(rows)


def quarantined_ids(conn: sa.Connection, tenant_id: str, stream: str) -> set[str]:
    """The source ids of the stream's records still in quarantine."""
    q = quarantine.c
    return set(conn.execute(sa.select(q.source_id).where(q.tenant_id == tenant_id, q.stream == stream,
                                                         q.source_id.is_not(None))).scalars())


def release_quarantined(conn: sa.Connection, tenant_id: str, stream: str, source_ids: Iterable[str]) -> int:
    """Drop the quarantine rows of records that have now loaded: the quarantine holds only what is
    still unloadable, so counts that add it to the loaded rows stay true."""
    ids, q, released = sorted(set(source_ids)), quarantine.c, 0
    for at in range(0, len(ids), 500):
        released += conn.execute(sa.delete(quarantine).where(
            q.tenant_id == tenant_id, q.stream == stream, q.source_id.in_(ids[at:at + 500]))).rowcount
    return released


@dataclass
class SyncStats:
    """What one sync of one stream did; becomes a ``sync_runs`` row and asset metadata."""

    api_calls: int = 0
    rows: int = 0
    rows_written: int = 0
    quarantined: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def this_worker() -> str:
    """How a ``sync_runs`` row names the process running it: ``host:pid``."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}"


class SyncLedger:
    """Writes the ``sync_runs`` row for one (tenant, stream) sync: running → success/failed.

    A row whose run or process ends before ``finish`` is closed as ``abandoned`` by
    ``close_abandoned`` (the ``abandoned_syncs`` sensor and ``storehouse sync`` call it).
    """

    def __init__(self, engine: sa.Engine, tenant_id: str, stream: str, run_id: str | None = None):
        self.engine, self.tenant_id, self.stream, self.run_id = engine, tenant_id, stream, run_id
        self.started = time.perf_counter()
        with engine.begin() as conn:
            self.id = conn.execute(
                sa.insert(sync_runs).values(
                    tenant_id=tenant_id, stream=stream, run_id=run_id, status="running", started_at=now_utc(),
                    worker=this_worker(),
                ).returning(sync_runs.c.id)
            ).scalar_one()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def finish(self, stats: SyncStats, status: str = "success", error: str | None = None) -> float:
        duration = self.elapsed
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(sync_runs).where(sync_runs.c.id == self.id).values(
                    status=status, finished_at=now_utc(), duration_s=round(duration, 3),
                    api_calls=stats.api_calls, rows=stats.rows, rows_written=stats.rows_written,
                    quarantined=stats.quarantined, error=error,
                )
            )
        return duration


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
