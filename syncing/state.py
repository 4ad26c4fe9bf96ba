"""A stream's state in the warehouse: its cursor, its quarantine, its ``sync_runs`` ledger row.

What a sync reads and writes between runs, kept beside the loop that uses it (``syncing.stream``,
``syncing.runs``); the tables are ``sync_state``, ``quarantine`` and ``sync_runs``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from typing import Any, Iterable

import orjson
import sqlalchemy as sa

from syncing.result import SyncResult
from warehouse.syncs import Rejected
from warehouse.tables.core import quarantine, sync_runs, sync_state
from warehouse.types import now_utc
from warehouse.upsert import upsert


def load_cursor(conn: sa.Connection, tenant_id: str, stream: str) -> dict[str, Any] | None:
    return conn.execute(
        sa.select(sync_state.c.cursor).where(sync_state.c.tenant_id == tenant_id, sync_state.c.stream == stream)
    ).scalar_one_or_none()


def save_cursor(conn: sa.Connection, tenant_id: str, stream: str, cursor: dict[str, Any]) -> None:
    upsert(conn, sync_state, [{"tenant_id": tenant_id, "stream": stream, "cursor": cursor}])


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

    def finish(self, stats: SyncResult, status: str = "success", error: str | None = None) -> float:
        """Close the row with ``stats``' counts; returns the duration (also set on ``stats``)."""
        duration = stats.duration = self.elapsed
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(sync_runs).where(sync_runs.c.id == self.id).values(
                    status=status, finished_at=now_utc(), duration_s=round(duration, 3),
                    api_calls=stats.api_calls, rows=stats.rows, rows_written=stats.rows_written,
                    quarantined=stats.quarantined, error=error,
                )
            )
        return duration
