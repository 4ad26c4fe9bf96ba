"""Engines for the warehouse: SQLite (WAL, busy timeout) by default, PostgreSQL via psycopg 3."""

from __future__ import annotations

import os
import sqlite3
import threading
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


def make_engine(url: str, **kwargs) -> sa.Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or (parsed.database or ":memory:") != ":memory:":
        kwargs.setdefault("pool_size", POOL_SIZE)  # a memory database has one connection per thread
        kwargs.setdefault("max_overflow", MAX_OVERFLOW)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        _serialise_writers(engine, parsed.database or ":memory:")
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


def hold_write_lock(conn: sa.Connection) -> None:
    """Take this process's write lock for ``conn``'s database until its transaction ends (for
    writes made on the raw driver connection, which SQLAlchemy's events do not see)."""
    lock = conn.info.get(_HOLDS + ":lock")
    if lock is not None and not conn.info.get(_HOLDS):
        if not lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise sqlite3.OperationalError(f"database is locked (another writer of this process held it "
                                           f"for {BUSY_TIMEOUT_S} s)")
        conn.info[_HOLDS] = True


def _serialise_writers(engine: sa.Engine, database: str) -> None:
    lock = write_lock_for(database)

    @sa.event.listens_for(engine, "connect")  # once per driver connection, not per checkout
    def _know_the_lock(_dbapi_conn, record) -> None:
        record.info[_HOLDS + ":lock"] = lock

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
