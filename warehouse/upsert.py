"""The one way assets write: a fast, batched, idempotent upsert for PostgreSQL and SQLite.

* PostgreSQL: binary ``COPY`` into a session temp table, then one
  ``INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE (cols) IS DISTINCT FROM (excluded cols)``.
* SQLite: ``executemany`` of ``INSERT … ON CONFLICT DO UPDATE … WHERE … IS NOT excluded…``.

The ``IS DISTINCT`` guard means a re-sent row that did not change is not rewritten (no table
bloat, ``updated_at`` stays put), and ``written`` counts only rows inserted or changed.
Rows sharing a key inside one call keep the last one. Runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable

import sqlalchemy as sa
from psycopg.types.json import Jsonb

from warehouse.types import JSONDoc, Money, UTCDateTime

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


def _adapter(column: sa.Column, dialect: str) -> Callable[[Any], Any] | None:
    col_type = column.type
    if isinstance(col_type, (Money, UTCDateTime)):
        raw = type(col_type).raw
        return lambda v: raw(v, dialect)
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
        self.pg_types = [_pg_type(table.c[c]) for c in self.columns] if dialect == "postgresql" else []

    def tuples(self, batch: list[Any], from_mappings: bool) -> list[tuple]:
        cols = self.columns
        rows = [tuple(r[c] for c in cols) for r in batch] if from_mappings else [tuple(r) for r in batch]
        if self.adapters:
            out = []
            for row in rows:
                row = list(row)
                for i, adapt in self.adapters:
                    row[i] = adapt(row[i])
                out.append(tuple(row))
            rows = out
        if len(self.key_idx) == 1:
            k = self.key_idx[0]
            deduped = {r[k]: r for r in rows}
        else:
            idx = self.key_idx
            deduped = {tuple(r[i] for i in idx): r for r in rows}
        return list(deduped.values()) if len(deduped) != len(rows) else rows

    def conflict_clause(self, target: str, distinct_op: str) -> str:
        keys = ", ".join(self.key)
        if not self.updates:
            return f"ON CONFLICT ({keys}) DO NOTHING"
        sets = [f"{c} = excluded.{c}" for c in self.updates]
        if self.touch:
            sets.append(f"{TOUCH_COLUMN} = CURRENT_TIMESTAMP")
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
    cursor = conn.connection.driver_connection.cursor()
    try:
        before = conn.connection.driver_connection.total_changes
        cursor.executemany(sql, data)
        return conn.connection.driver_connection.total_changes - before
    finally:
        cursor.close()


def _pg_batch(conn: sa.Connection, plan: _Plan, data: list[tuple]) -> int:
    pg = conn.connection.driver_connection
    table = plan.table.name
    stage = f"_stage_{table}"
    cols = ", ".join(plan.columns)
    with pg.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {cols} FROM {table} WITH NO DATA"
        )
        cur.execute(f"TRUNCATE {stage}")
        with cur.copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(plan.pg_types)
            for row in data:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {stage} "
            f"{plan.conflict_clause('t', 'row')}"
        )
        written = cur.rowcount
        cur.execute(f"DROP TABLE {stage}")
    return written
