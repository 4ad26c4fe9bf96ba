"""The one way assets write: a fast, batched, idempotent upsert for PostgreSQL and SQLite.

* PostgreSQL: a batch whose keys are all new (an index probe says so) is binary-``COPY``ed
  straight into the table; any other batch is ``COPY``ed into a session temp table and merged
  with one ``INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE (cols) IS DISTINCT FROM (excluded)``.
* SQLite: ``executemany`` of ``INSERT … ON CONFLICT DO UPDATE … WHERE … IS NOT excluded…``
  (money binds as the number SQLite stores, so ``IS NOT`` compares numbers, times as their one
  text form).

The ``IS DISTINCT`` guard means a re-sent row that did not change is not rewritten (no table
bloat, ``updated_at`` stays put), and ``written`` counts only rows inserted or changed.
Rows sharing a key inside one call keep the last one. Runs inside the caller's transaction.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from operator import itemgetter
from typing import Any, Callable

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb

from warehouse.db import hold_write_lock
from warehouse.types import JSONDoc, Money, UTCDateTime, now_sql, sqlite_money

TOUCH_COLUMN = "updated_at"

_PG_BINARY_TYPES: list[tuple[type, str]] = [
    (sa.BigInteger, "int8"),
    (sa.SmallInteger, "int2"),
    (sa.Integer, "int4"),
    (sa.Boolean, "bool"),
    (sa.Float, "float8"),
    (sa.Date, "date"),
    (sa.String, "text"),
    (sa.Text, "text"),
]


@dataclass
class UpsertResult:
    rows: int = 0
    written: int = 0

    def __iadd__(self, other: "UpsertResult") -> "UpsertResult":
        self.rows += other.rows
        self.written += other.written
        return self

    @property
    def unchanged(self) -> int:
        return self.rows - self.written


def _batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _pg_decimal(v: Any) -> Any:
    return v if v is None or v.__class__ is Decimal else Decimal(str(v))


def _pg_aware(v: Any) -> Any:
    # psycopg sends any aware datetime exactly; naive ones are taken as UTC, as everywhere here.
    if v is None or (v.__class__ is not str and v.tzinfo is not None):
        return v
    return UTCDateTime.raw(v, "postgresql")


def _adapter(column: sa.Column, dialect: str) -> Callable[[Any], Any] | None:
    """Per-value conversion for the raw DBAPI path (None: the driver takes the value as is)."""
    col_type = column.type
    if dialect == "postgresql" and isinstance(col_type, Money):
        return _pg_decimal
    if dialect == "postgresql" and isinstance(col_type, UTCDateTime):
        return _pg_aware
    if isinstance(col_type, Money):
        return sqlite_money
    if isinstance(col_type, UTCDateTime):
        return lambda v: UTCDateTime.raw(v, dialect)
    if isinstance(col_type, JSONDoc):
        if dialect == "postgresql":
            return lambda v: None if v is None else Jsonb(v)
        return lambda v: JSONDoc.raw(v, dialect)
    if dialect == "sqlite" and isinstance(col_type, sa.Boolean):
        return lambda v: None if v is None else int(bool(v))
    return None


def _pg_type(column: sa.Column) -> str:
    col_type = column.type
    if isinstance(col_type, Money):
        return "numeric"
    if isinstance(col_type, UTCDateTime):
        return "timestamptz"
    if isinstance(col_type, JSONDoc):
        return "jsonb"
    for sa_type, name in _PG_BINARY_TYPES:
        if isinstance(col_type, sa_type):
            return name
    raise TypeError(f"no COPY type for {column.table.name}.{column.name} ({col_type!r})")


class _Plan:
    """Column order, adapters and SQL for one (table, columns, key) combination."""

    def __init__(self, table: sa.Table, columns: Sequence[str], key: Sequence[str], dialect: str):
        unknown = set(columns) - set(table.c.keys())
        if unknown:
            raise KeyError(f"{table.name} has no column(s) {sorted(unknown)}")
        missing_key = set(key) - set(columns)
        if missing_key:
            raise KeyError(f"rows for {table.name} lack key column(s) {sorted(missing_key)}")
        self.table = table
        self.columns = list(columns)
        self.key_idx = [self.columns.index(k) for k in key]
        self.adapters = [(i, a) for i, c in enumerate(self.columns) if (a := _adapter(table.c[c], dialect))]
        self.updates = [c for c in self.columns if c not in key]
        self.touch = TOUCH_COLUMN in table.c and TOUCH_COLUMN not in self.columns
        self.key = list(key)
        self.dialect = dialect
        self.pg_types = [_pg_type(table.c[c]) for c in self.columns] if dialect == "postgresql" else []
        # C-speed row shaping: itemgetter for dict → tuple and for keys; adapters run per column.
        self.row_of = itemgetter(*self.columns) if len(self.columns) > 1 else (lambda r: (r[self.columns[0]],))
        self.key_of = itemgetter(*self.key_idx)

    def tuples(self, batch: list[Any], from_mappings: bool) -> list[tuple]:
        rows = list(map(self.row_of, batch)) if from_mappings else list(map(tuple, batch))
        if self.adapters:
            columns = list(zip(*rows))
            for i, adapt in self.adapters:
                columns[i] = tuple(map(adapt, columns[i]))
            rows = list(zip(*columns))
        deduped = dict(zip(map(self.key_of, rows), rows))
        return list(deduped.values()) if len(deduped) != len(rows) else rows

    def conflict_clause(self, target: str, distinct_op: str) -> str:
        keys = ", ".join(self.key)
        if not self.updates:
            return f"ON CONFLICT ({keys}) DO NOTHING"
        sets = [f"{c} = excluded.{c}" for c in self.updates]
        if self.touch:
            sets.append(f"{TOUCH_COLUMN} = {now_sql(self.dialect)}")
        if distinct_op == "row":
            left = ", ".join(f"{target}.{c}" for c in self.updates)
            right = ", ".join(f"excluded.{c}" for c in self.updates)
            guard = f"({left}) IS DISTINCT FROM ({right})" if len(self.updates) > 1 else f"{left} IS DISTINCT FROM {right}"
        else:
            guard = " OR ".join(f"{target}.{c} IS NOT excluded.{c}" for c in self.updates)
        return f"ON CONFLICT ({keys}) DO UPDATE SET {', '.join(sets)} WHERE {guard}"


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Iterable[Mapping[str, Any]] | Iterable[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    key: Sequence[str] | None = None,
    batch_size: int = 20_000,
) -> UpsertResult:
    """Insert or update ``rows`` (mappings, or sequences in ``columns`` order) by ``key``.

    ``key`` defaults to the primary key. Returns how many rows came in and how many were
    actually written (inserted or changed).
    """
    # The cyclic GC would rescan every live row object at each few hundred allocations: on a
    # large batch that is most of the time spent. Nothing here makes cycles, so pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _upsert(conn, table, rows, columns, key, batch_size)
    finally:
        if gc_was_enabled:
            gc.enable()


def _upsert(conn, table, rows, columns, key, batch_size) -> UpsertResult:
    dialect = conn.dialect.name
    key = list(key or [c.name for c in table.primary_key.columns])
    result = UpsertResult()
    plan: _Plan | None = None
    from_mappings = columns is None
    for batch in _batches(rows, batch_size):
        if plan is None:
            cols = list(batch[0].keys()) if from_mappings else list(columns)
            plan = _Plan(table, cols, key, dialect)
        data = plan.tuples(batch, from_mappings)
        if dialect == "postgresql":
            written = _pg_batch(conn, plan, data)
        elif dialect == "sqlite":
            written = _sqlite_batch(conn, plan, data)
        else:
            raise NotImplementedError(f"upsert has no path for {dialect}")
        result += UpsertResult(rows=len(batch), written=written)
    return result


def _sqlite_batch(conn: sa.Connection, plan: _Plan, data: list[tuple]) -> int:
    cols = ", ".join(plan.columns)
    marks = ", ".join("?" for _ in plan.columns)
    sql = f"INSERT INTO {plan.table.name} ({cols}) VALUES ({marks}) {plan.conflict_clause(plan.table.name, 'is_not')}"
    hold_write_lock(conn)  # a raw driver write: SQLAlchemy's events do not see it
    cursor = conn.connection.driver_connection.cursor()
    try:
        before = conn.connection.driver_connection.total_changes
        cursor.executemany(sql, data)
        return conn.connection.driver_connection.total_changes - before
    finally:
        cursor.close()


def _pg_copy(cur, target: str, plan: _Plan, data: list[tuple]) -> None:
    with cur.copy(f"COPY {target} ({', '.join(plan.columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(plan.pg_types)
        for row in data:
            copy.write_row(row)


def _pg_any_existing(cur, plan: _Plan, data: list[tuple]) -> bool:
    """Could any row of the batch already exist? One primary-key index range scan answers it.

    Key columns equal across the batch (the tenant) are matched exactly, the first varying one
    by its [min, max] range. Conservative: an overlapping range sends the batch down the merge
    path even if no key actually exists, which is correct, only slower.
    """
    where, params = [], []
    for col, i in zip(plan.key, plan.key_idx):
        values = [row[i] for row in data]
        first = values[0]
        if all(v == first for v in values):
            where.append(f"{col} = %s")
            params.append(first)
        else:
            where.append(f"{col} BETWEEN %s AND %s")
            params += [min(values), max(values)]
            break  # later key columns cannot narrow an index range scan further
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {plan.table.name} WHERE {' AND '.join(where)})", params)
    return cur.fetchone()[0]


def _pg_batch(conn: sa.Connection, plan: _Plan, data: list[tuple]) -> int:
    pg = conn.connection.driver_connection
    table = plan.table.name
    stage = f"_stage_{table}"
    cols = ", ".join(plan.columns)
    with pg.cursor() as cur:
        # Fast path: a batch of only new keys (a first load) is copied straight into the table.
        # A concurrent writer slipping a key in between probe and copy makes the copy fail on
        # the primary key; the savepoint then sends the batch down the merge path instead.
        if not _pg_any_existing(cur, plan, data):
            cur.execute("SAVEPOINT upsert_copy")
            try:
                _pg_copy(cur, table, plan, data)
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT upsert_copy")
            else:
                cur.execute("RELEASE SAVEPOINT upsert_copy")
                return len(data)
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {cols} FROM {table} WITH NO DATA")
        cur.execute(f"TRUNCATE {stage}")
        _pg_copy(cur, stage, plan, data)
        cur.execute(f"INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {stage} {plan.conflict_clause('t', 'row')}")
        written = cur.rowcount
        cur.execute(f"DROP TABLE {stage}")
    return written
