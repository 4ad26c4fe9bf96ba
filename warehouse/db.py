"""Engines for the warehouse: SQLite (WAL, busy timeout) by default, PostgreSQL via psycopg 3."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names (we need its COPY)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# Connections kept open per process. The API serves sync routes from a thread pool, 16 or more
# requests at a time; a smaller pool makes every request past it open (and, for PostgreSQL,
# fork a backend for) a connection of its own and close it again. Pools fill lazily, so a
# Dagster run or the CLI holds no more connections than it really uses at once.
POOL_SIZE, MAX_OVERFLOW = 16, 16


def make_engine(url: str, *, wait_s: float | None = None, **kwargs) -> sa.Engine:
    """``wait_s``: how long a SQLite write may wait for another writer, of this process (its write
    lock) or another (SQLite's busy timeout); ``BUSY_TIMEOUT_S`` unless given (see ``unwaiting_engine``)."""
    wait_s = BUSY_TIMEOUT_S if wait_s is None else wait_s
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or (parsed.database or ":memory:") != ":memory:":
        kwargs.setdefault("pool_size", POOL_SIZE)  # a memory database has one connection per thread
        kwargs.setdefault("max_overflow", MAX_OVERFLOW)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": wait_s, "check_same_thread": False}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={round(wait_s * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        _serialise_writers(engine, parsed.database or ":memory:", wait_s)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "options": _pg_options(parsed)}
    return sa.create_engine(url, **kwargs)


def _pg_options(parsed) -> str:
    """Every connection finds tables in both schemas by their plain names (warehouse/schemas.py);
    any ``options`` the URL carries are kept."""
    from warehouse.schemas import SEARCH_PATH

    # Sessions in UTC, whatever the server's TimeZone: date(created_at) buckets by the UTC day,
    # as on SQLite, and times print with +00.
    given = parsed.query.get("options", "")
    return f"{given} -c search_path={','.join(SEARCH_PATH)} -c TimeZone=UTC".strip()


# -- SQLite: one writer at a time, queued in Python rather than in SQLite's busy handler ----------
#
# SQLite lets one connection write at a time; the others wait in its busy handler, which sleeps
# 1, 2, 5, 10 … 100 ms between tries however soon the lock is free. Under concurrent writers in
# one process (API threads, a sync's background writer) that turns sub-millisecond transactions
# into waits of hundreds of milliseconds. So within a process, a connection takes a lock per
# database file at its transaction's first write and gives it back at commit or rollback: a
# waiting writer wakes the moment the lock is free. Readers never take it (WAL lets them read
# beside the writer); other processes still meet in SQLite's own lock.

BUSY_TIMEOUT_S = 30
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
_HOLDS = "storehouse_write_lock"
_file_locks: dict[str, threading.Lock] = {}
_file_locks_guard = threading.Lock()


def write_lock_for(database: str) -> threading.Lock:
    """This process's write lock for one SQLite database file."""
    if database == ":memory:":  # a memory database belongs to one engine (and thread) alone
        return threading.Lock()
    with _file_locks_guard:
        return _file_locks.setdefault(os.path.realpath(database), threading.Lock())


class WouldWait(Exception):
    """An unwaiting engine's write found another writer of this process holding the database."""


def hold_write_lock(conn: sa.Connection) -> None:
    """Take this process's write lock for ``conn``'s database until its transaction ends (for
    writes made on the raw driver connection, which SQLAlchemy's events do not see)."""
    lock = conn.info.get(_HOLDS + ":lock")
    if lock is not None and not conn.info.get(_HOLDS):
        wait_s = conn.info[_HOLDS + ":wait"]
        if not lock.acquire(timeout=wait_s):
            if not wait_s:
                raise WouldWait("another writer of this process holds the database")
            raise sqlite3.OperationalError(f"database is locked (another writer of this process held it "
                                           f"for {wait_s:g} s)")
        conn.info[_HOLDS] = True


def unwaiting_engine(engine: sa.Engine) -> sa.Engine | None:
    """A second engine on ``engine``'s SQLite file, for short transactions run on an event loop,
    where nothing may wait for another writer: its one connection never waits for this process's
    write lock (``WouldWait``) nor in SQLite's busy handler for another process's writer
    (SQLITE_BUSY at once), so its transactions wait on nothing but the disk. A caller that meets
    ``would_wait`` runs the transaction again on ``engine``, in a thread. None for PostgreSQL (its
    driver waits on the network) and for a memory database (another engine would be another
    database)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or (url.database or ":memory:") == ":memory:" or \
            url.query.get("mode") == "memory":
        return None
    # One connection, never waited for either: an event loop runs one such transaction at a time.
    return make_engine(url.render_as_string(hide_password=False), wait_s=0, pool_size=1, max_overflow=0,
                       pool_timeout=0)


class LoopTransactions:
    """Transactions for one event loop on ``unwaiting_engine``'s one connection, held open between
    them: a connection checked out and returned per transaction costs more CPU than a short
    transaction's statements. Engine-like for the services: ``begin()`` (and ``connect()``, a
    transaction too) yields the connection. Used from the loop's thread only."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._conn: sa.Connection | None = None

    @contextlib.contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
        with self._conn.begin():
            yield self._conn

    connect = begin

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.engine.dispose()


def would_wait(exc: BaseException) -> bool:
    """Whether ``exc`` is an unwaiting engine's refusal to wait, rather than a failure: this
    process's writer (``WouldWait``), another process's (SQLITE_BUSY) or its connection in use."""
    if isinstance(exc, (WouldWait, sa.exc.TimeoutError)):
        return True
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.OperationalError) and \
        getattr(orig, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def _serialise_writers(engine: sa.Engine, database: str, wait_s: float) -> None:
    lock = write_lock_for(database)

    @sa.event.listens_for(engine, "connect")  # once per driver connection, not per checkout
    def _know_the_lock(_dbapi_conn, record) -> None:
        record.info[_HOLDS + ":lock"] = lock
        record.info[_HOLDS + ":wait"] = wait_s

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _before_write(conn, _cursor, statement: str, _params, _context, _many) -> None:
        if statement.lstrip()[:7].upper().startswith(_WRITES):
            hold_write_lock(conn)

    def _release(info: dict) -> None:
        if info.pop(_HOLDS, False):
            lock.release()

    # These events fire just before the driver's commit or rollback; it is done here first (the
    # driver's second call then finds no transaction and does nothing), so the next writer never
    # starts before this one's data is in.
    @sa.event.listens_for(engine, "commit")
    def _committing(conn: sa.Connection) -> None:
        if conn.info.get(_HOLDS):
            conn.connection.driver_connection.commit()
            _release(conn.info)

    @sa.event.listens_for(engine, "rollback")
    def _rolling_back(conn: sa.Connection) -> None:
        if conn.info.get(_HOLDS):
            conn.connection.driver_connection.rollback()
            _release(conn.info)

    @sa.event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record) -> None:  # a connection closed mid-transaction
        _release(record.info)


def redact(url: str) -> str:
    """The URL with any password masked, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)
