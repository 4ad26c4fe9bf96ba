"""The two leases a slice runs under: a slicer slot and the tmp file's own row.

Why slot rows rather than a lock per process: ``SLICER_CONCURRENCY`` is a limit on slicer
processes for the whole service, however many API workers or machines run. A row per allowed
process (``studio_slicer_slots``), taken with a conditional ``UPDATE`` whose ``WHERE`` says "free or
expired", holds that limit on any database every process shares; PostgreSQL advisory locks would
hold it too, but not on SQLite, and a file lock not across machines. The lease makes a crash
harmless: a process that dies stops renewing, and its slot (and its file) are free again once the
lease runs out. Concurrent claimers of one row cannot both win: SQLite runs one writer at a time,
and PostgreSQL re-checks the ``WHERE`` of a row another transaction just changed (read committed).

Both tables renew through :class:`commerce.leases.Heartbeat` (duck-typed ``renew``), the one that
keeps the shop's provisioning leases alive.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from commerce.leases import Lease
from warehouse.tables.studio_print import studio_slicer_slots as slots, studio_tmp_files as files
from warehouse.types import now_utc


def _free(table: sa.Table, now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(table.c.lease_expires_at.is_(None), table.c.lease_expires_at < now)


class Slots:
    """Slicer slots 0..concurrency-1."""

    def __init__(self, engine: sa.Engine, concurrency: int) -> None:
        self.engine, self.concurrency = engine, concurrency

    def claim(self, lease_s: float) -> Lease | None:
        now, token = now_utc(), uuid.uuid4().hex
        for slot in range(self.concurrency):
            with self.engine.begin() as conn:
                done = conn.execute(
                    sa.update(slots).where(slots.c.slot == slot, _free(slots, now))
                    .values(lease_token=token, lease_expires_at=now + dt.timedelta(seconds=lease_s),
                            claims=slots.c.claims + 1))
                if done.rowcount == 1:
                    return Lease((str(slot),), token)
        return None

    def renew(self, lease: Lease, lease_s: float) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(slots).where(slots.c.slot == int(lease.key[0]), slots.c.lease_token == lease.token)
                .values(lease_expires_at=now_utc() + dt.timedelta(seconds=lease_s))).rowcount == 1

    def release(self, lease: Lease) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(slots).where(slots.c.slot == int(lease.key[0]), slots.c.lease_token == lease.token)
                         .values(lease_token=None, lease_expires_at=None))


class FileLeases:
    """Running slices in ``studio_tmp_files``: due when running, ``next_run_at`` passed and unleased."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _due(self, now: dt.datetime) -> sa.ColumnElement[bool]:
        return sa.and_(files.c.status == "running", files.c.next_run_at <= now, _free(files, now))

    def any_due(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(files.c.id).where(self._due(now_utc())).limit(1)).first() is not None

    def claim(self, lease_s: float) -> tuple[Lease, Any, dict[str, Any]] | None:
        """Lease the longest-waiting due slice and count the attempt in the same write: the lease,
        the row as read and its metadata with ``attempts`` counted. A rival that took it first, or
        any write to the row since it was read (``updated_at`` changed), leaves us nothing (None)."""
        now, token = now_utc(), uuid.uuid4().hex
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(files).where(self._due(now)).order_by(files.c.next_run_at).limit(1)).first()
        if row is None:
            return None
        meta = dict(row.metadata)
        meta["attempts"] = int(meta.get("attempts") or 0) + 1
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(files).where(files.c.id == row.id, files.c.updated_at == row.updated_at,
                                                       self._due(now))
                                .values(lease_token=token, lease_expires_at=now + dt.timedelta(seconds=lease_s),
                                        metadata=meta, updated_at=now))
        return (Lease((str(row.id),), token), row, meta) if done.rowcount == 1 else None

    def renew(self, lease: Lease, lease_s: float) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(files).where(*self.held(lease))
                .values(lease_expires_at=now_utc() + dt.timedelta(seconds=lease_s))).rowcount == 1

    @staticmethod
    def held(lease: Lease) -> list[sa.ColumnElement[bool]]:
        """The row is still ours: every write under the lease names it."""
        return [files.c.id == int(lease.key[0]), files.c.lease_token == lease.token, files.c.status == "running"]
