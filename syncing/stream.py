"""A stream: records of one kind from one provider account into one warehouse table.

``Stream`` says where rows go (table, key) and what a row becomes when the source no longer has
it. ``StreamWriter`` is the one write path of every sync: a batch of rows is upserted (the
idempotent ``warehouse.upsert``, never another library: it is the fast path), records that came
back readable leave the quarantine, the rejected enter it with their reason, and the cursor is
checkpointed, all in one transaction, so a run killed half-way resumes from its last checkpoint
and re-reads nothing twice into the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from syncing.result import SyncResult
from syncing.state import load_cursor, quarantine_records, quarantined_ids, release_quarantined, save_cursor
from warehouse.syncs import Rejected
from warehouse.upsert import UpsertResult, upsert


@dataclass(frozen=True)
class Stream:
    kind: str
    table: sa.Table
    key: tuple[str, ...]  # the row's key after tenant_id (and source, for POS streams)
    gone: dict[str, Any] = field(default_factory=dict)  # what a row becomes when the source no longer has it


class StreamWriter:
    """Writes one run of one stream (``name``: its ``sync_state``/``quarantine``/``sync_runs`` name).

    ``cursor`` is the stream's cursor as loaded; ``write(..., cursor_update=...)`` changes and saves
    it with the batch. With a one-column key the writer knows which quarantined records a batch
    brought back (the quarantine's ``source_id`` is that column) and releases them, counting
    ``released_from_quarantine`` in the result.
    """

    def __init__(self, engine: sa.Engine, tenant_id: str, name: str, table: sa.Table, key: tuple[str, ...],
                 result: SyncResult, run_id: str | None = None) -> None:
        self.engine, self.tenant_id, self.name, self.table, self.key = engine, tenant_id, name, table, key
        self.result, self.run_id = result, run_id
        with engine.connect() as conn:
            self.cursor: dict[str, Any] = load_cursor(conn, tenant_id, name) or {}
            self.in_quarantine: set[str] = quarantined_ids(conn, tenant_id, name) if len(key) == 1 else set()

    def write(self, rows: list[dict[str, Any]], rejected: Iterable[Rejected] = (),
              cursor_update: dict[str, Any] | None = None) -> UpsertResult:
        """Upsert ``rows``, release and quarantine, checkpoint: one transaction."""
        with self.engine.begin() as conn:
            return self.write_in(conn, rows, rejected, cursor_update)

    def write_in(self, conn: sa.Connection, rows: list[dict[str, Any]], rejected: Iterable[Rejected] = (),
                 cursor_update: dict[str, Any] | None = None) -> UpsertResult:
        """``write`` inside the caller's transaction (with what else it must do atomically)."""
        written = upsert(conn, self.table, rows) if rows else UpsertResult()
        self.release(conn, rows)
        self.result.quarantined += quarantine_records(conn, self.tenant_id, self.name, rejected, self.run_id)
        if cursor_update is not None:
            self.checkpoint(conn, cursor_update)
        self.result.rows_written += written.written
        return written

    def release(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Take the rows' records out of quarantine: they loaded now."""
        if not self.in_quarantine:
            return
        loaded = {str(r[self.key[0]]) for r in rows} & self.in_quarantine
        if loaded:
            self.result.bump("released_from_quarantine", release_quarantined(conn, self.tenant_id, self.name, loaded))
            self.in_quarantine -= loaded

    def checkpoint(self, conn: sa.Connection, update: dict[str, Any]) -> None:
        self.cursor.update(update)
        save_cursor(conn, self.tenant_id, self.name, self.cursor)

    def save(self, update: dict[str, Any]) -> None:
        """Checkpoint alone, in its own transaction."""
        with self.engine.begin() as conn:
            self.checkpoint(conn, update)
