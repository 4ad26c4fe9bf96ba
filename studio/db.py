"""Write transactions of the studio: serialised from their first statement on SQLite.

A document's number is taken from its counter row and the document inserted in one transaction
(``studio.numbers``); state changes read a row, check its state and write it. On PostgreSQL the
counter's ``INSERT … ON CONFLICT DO UPDATE`` and ``SELECT … FOR UPDATE`` lock the rows they touch
until commit. SQLite locks the whole file, but a deferred transaction that reads first and writes
later fails at once (``SQLITE_BUSY``, no waiting) when another writer committed in between; so
every studio write transaction begins ``IMMEDIATE``: it waits for the write lock up front (this
process's writers queue on ``warehouse.db``'s lock, other processes in SQLite's busy handler).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa

from warehouse.db import hold_write_lock


@contextlib.contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that commits at the end of the block (rolls back on error), holding the
    write lock from its start on SQLite."""
    with engine.begin() as conn:
        begin_writing(conn)
        yield conn


def begin_writing(conn: sa.Connection) -> None:
    """Make ``conn``'s transaction a writer from now on (SQLite: ``BEGIN IMMEDIATE`` unless it
    began already; PostgreSQL: nothing, its row locks suffice)."""
    if conn.dialect.name == "sqlite":
        hold_write_lock(conn)
        if not conn.connection.driver_connection.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def locked(conn: sa.Connection, query: sa.Select) -> sa.Select:
    """``query`` locking the rows it reads until commit (PostgreSQL; SQLite's writer holds the file)."""
    return query.with_for_update() if conn.dialect.name == "postgresql" else query
