"""Where the PostgreSQL upsert's time goes, and measured prototypes (nothing outside bench/ changes).

``warehouse.upsert`` on PostgreSQL has two paths: a batch of only new keys is COPYed straight
into the table (after a primary-key range probe); any other batch (re-syncs, changed or mixed
pages) takes the merge path: COPY into a temp stage, then ``INSERT … SELECT … ON CONFLICT DO
UPDATE … WHERE … IS DISTINCT FROM``. This script times, on the same pre-built rows:

* ``bare COPY`` and ``upsert (current)`` (a first load: the fast path);
* ``merge path (instrumented)``: an instrumented copy of the merge path forced for every batch,
  split into Python row preparation, stage DDL, COPY into the stage and the ``INSERT … SELECT``,
  each with wall time, our CPU and the PostgreSQL backend's CPU (read from /proc);
* prototypes for the merge path — ``fast_tuples`` (``FastPlan``: row-wise ``itemgetter`` shaping
  with adapters that pass ``Decimal`` / aware ``datetime`` through untouched) and ``overlap``
  (``FastPlan``, plus the next batch's preparation *and* binary COPY encoding done while the server
  runs the previous batch's ``INSERT … SELECT``, sent with libpq ``send_query`` and collected
  after) — on the first load and on the no-change re-upsert (where the merge path always runs);
* ``streamed``: the current upsert with the fast path's row shaping done inside the COPY loop
  (probe and duplicate check from the key values alone), so Python work overlaps the server's.

    python bench/profile_upsert.py --rows 1000000 --runs 3 [--only overlap,fast_tuples,streamed]
"""

from __future__ import annotations

import argparse
import datetime as dt
import operator
import os
import sys
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DEFAULT_PG, load_avg, machine, median, own_cpu_seconds, proc_cpu_seconds, scratch_pg, spread, sync_rows, timed,
)

import sqlalchemy as sa  # noqa: E402

import warehouse.upsert as U  # noqa: E402
from warehouse.db import make_engine  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402
from warehouse.tables.mx import transactions  # noqa: E402
from warehouse.types import UTC, Money, UTCDateTime  # noqa: E402

PARTS: dict[str, list[float]] = {}  # part -> [wall, our CPU, server CPU]
_BACKEND: list[int] = [0]


def _stamp() -> tuple[float, float, float]:
    return time.perf_counter(), own_cpu_seconds(), proc_cpu_seconds(_BACKEND[0])


def _add(part: str, t0: tuple[float, float, float]) -> tuple[float, float, float]:
    now = _stamp()
    acc = PARTS.setdefault(part, [0.0, 0.0, 0.0])
    for i in range(3):
        acc[i] += now[i] - t0[i]
    return now


# -- an instrumented copy of the current code ----------------------------------------------------

def instrumented_upsert(conn, table, rows, *, columns=None, key=None, batch_size=20_000):
    _BACKEND[0] = conn.connection.driver_connection.info.backend_pid
    dialect = conn.dialect.name
    key = list(key or [c.name for c in table.primary_key.columns])
    result = U.UpsertResult()
    plan = None
    from_mappings = columns is None
    for batch in U._batches(rows, batch_size):
        t = _stamp()
        if plan is None:
            cols = list(batch[0].keys()) if from_mappings else list(columns)
            plan = U._Plan(table, cols, key, dialect)
        data = plan.tuples(batch, from_mappings)
        t = _add("python: rows → tuples, adapters, de-dup", t)
        written = _instrumented_pg_batch(conn, plan, data)
        result += U.UpsertResult(rows=len(batch), written=written)
    return result


def _instrumented_pg_batch(conn, plan, data) -> int:
    pg = conn.connection.driver_connection
    table = plan.table.name
    stage = f"_stage_{table}"
    cols = ", ".join(plan.columns)
    with pg.cursor() as cur:
        t = _stamp()
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {cols} FROM {table} WITH NO DATA")
        cur.execute(f"TRUNCATE {stage}")
        t = _add("DDL: create / truncate / drop stage", t)
        with cur.copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(plan.pg_types)
            for row in data:
                copy.write_row(row)
        t = _add("COPY into the stage", t)
        cur.execute(f"INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {stage} {plan.conflict_clause('t', 'row')}")
        written = cur.rowcount
        t = _add("INSERT … SELECT … ON CONFLICT", t)
        cur.execute(f"DROP TABLE {stage}")
        _add("DDL: create / truncate / drop stage", t)
    return written


# -- prototype 1: cheaper Python preparation -------------------------------------------------------

def _pg_adapter(column: sa.Column):
    """PostgreSQL adapters that return the value untouched when it is already right (the usual case)."""
    col_type = column.type
    if isinstance(col_type, Money):
        return lambda v: v if v is None or type(v) is Decimal else Money.raw(v, "postgresql")
    if isinstance(col_type, UTCDateTime):
        # psycopg's timestamptz dumper converts any aware datetime itself; only naive ones and
        # strings need us.
        return lambda v: v if v is None or (type(v) is not str and v.tzinfo is not None) else UTCDateTime.raw(v, "postgresql")
    return U._adapter(column, "postgresql")


class FastPlan(U._Plan):
    def __init__(self, table, columns, key, dialect):
        super().__init__(table, columns, key, dialect)
        if dialect == "postgresql":
            self.adapters = [(i, a) for i, c in enumerate(self.columns) if (a := _pg_adapter(table.c[c]))]
        only = self.columns[0]
        self.getter = operator.itemgetter(*self.columns) if len(self.columns) > 1 else (lambda r: (r[only],))
        self.key_getter = operator.itemgetter(*self.key_idx)

    def tuples(self, batch, from_mappings):
        rows = map(self.getter, batch) if from_mappings else map(tuple, batch)
        if self.adapters:
            adapters = self.adapters
            out = []
            append = out.append
            for row in rows:
                row = list(row)
                for i, adapt in adapters:
                    row[i] = adapt(row[i])
                append(tuple(row))
            rows = out
        else:
            rows = list(rows)
        deduped = dict(zip(map(self.key_getter, rows), rows))
        return list(deduped.values()) if len(deduped) != len(rows) else rows


def fast_upsert(conn, table, rows, *, columns=None, key=None, batch_size=20_000):
    saved = U._Plan
    U._Plan = FastPlan
    try:
        return U.upsert(conn, table, rows, columns=columns, key=key, batch_size=batch_size)
    finally:
        U._Plan = saved


# -- prototype 2: overlap client encoding with the server's INSERT … SELECT -----------------------

def _encoder(conn, types: list[str]):
    """Rows → one binary COPY payload (header, rows, trailer), without an open COPY."""
    from psycopg import adapt, pq
    from psycopg._copy_base import BinaryFormatter

    pg = conn.connection.driver_connection
    registry = pg.adapters.types
    tx = adapt.Transformer(context=pg)
    tx.set_dumper_types([registry.get_oid(t) for t in types], pq.Format.BINARY)

    def encode(rows) -> bytes:
        f = BinaryFormatter(tx)
        out = bytearray()
        for row in rows:
            out += f.write_row(row)
        out += f.end()
        return bytes(out)

    return encode


def overlap_upsert(conn, table, rows, *, columns=None, key=None, batch_size=20_000):
    """The current upsert (same fast path for new-key batches, same merge SQL), with FastPlan row
    shaping, and on the merge path batch k+1 prepared *and encoded* while the server runs batch
    k's ``INSERT … SELECT`` (sent with libpq ``send_query``, collected after); each batch goes to
    the server as one pre-encoded binary COPY payload. Client Python work and server inserts
    overlap, as they do in a bare COPY.
    """
    import gc

    import psycopg
    from psycopg import pq

    dialect = conn.dialect.name
    assert dialect == "postgresql"
    key = list(key or [c.name for c in table.primary_key.columns])
    pg = conn.connection.driver_connection
    pgconn = pg.pgconn
    result = U.UpsertResult()
    from_mappings = columns is None
    name = table.name
    stage = f"_stage_{name}"
    batches = U._batches(rows, batch_size)
    first = next(batches, None)
    if first is None:
        return result
    cols = list(first[0].keys()) if from_mappings else list(columns)
    plan = FastPlan(table, cols, key, dialect)
    col_list = ", ".join(plan.columns)
    insert = (f"INSERT INTO {name} AS t ({col_list}) SELECT {col_list} FROM {stage} "
              f"{plan.conflict_clause('t', 'row')}").encode()
    encode = _encoder(conn, plan.pg_types)

    def prepare(batch):
        if batch is None:
            return None, None
        data = plan.tuples(batch, from_mappings)
        return data, encode(data)

    def collect() -> int:
        written = 0
        while (res := pgconn.get_result()) is not None:
            if res.status != pq.ExecStatus.COMMAND_OK:
                raise RuntimeError(res.error_message.decode())
            written += int(res.command_tuples or 0)
        return written

    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with pg.cursor() as cur:
            staged = False
            batch = first
            data, payload = prepare(batch)
            while batch is not None:
                in_flight = None
                copied = False
                if not U._pg_any_existing(cur, plan, data):
                    cur.execute("SAVEPOINT upsert_copy")
                    try:
                        with cur.copy(f"COPY {name} ({col_list}) FROM STDIN (FORMAT BINARY)") as copy:
                            copy.write(payload)
                    except psycopg.errors.UniqueViolation:
                        cur.execute("ROLLBACK TO SAVEPOINT upsert_copy")
                    else:
                        cur.execute("RELEASE SAVEPOINT upsert_copy")
                        copied = True
                        result += U.UpsertResult(rows=len(batch), written=len(data))
                if not copied:
                    if not staged:
                        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {col_list} FROM {name} WITH NO DATA")
                        staged = True
                    else:
                        cur.execute(f"TRUNCATE {stage}")
                    with cur.copy(f"COPY {stage} ({col_list}) FROM STDIN (FORMAT BINARY)") as copy:
                        copy.write(payload)
                    pgconn.send_query(insert)
                    while pgconn.flush():
                        pass
                    in_flight = len(batch)
                batch = next(batches, None)
                data, payload = prepare(batch)  # overlaps the server's INSERT … SELECT
                if in_flight is not None:
                    result += U.UpsertResult(rows=in_flight, written=collect())
            if staged:
                cur.execute(f"DROP TABLE {stage}")
    finally:
        if gc_was_enabled:
            gc.enable()
    return result


# -- prototype 3: stream the row shaping into the fast-path COPY -------------------------------------

def streamed_upsert(conn, table, rows, *, columns=None, key=None, batch_size=20_000):
    """The current upsert, except on the fast path: the probe and the duplicate check use only the
    key values (``itemgetter`` over the dicts), and each row is shaped (dict → tuple, adapters)
    *inside* the COPY loop, so that Python work overlaps the server's processing of the rows
    already sent — as in a bare COPY, whose client side is idle most of the time. Batches with a
    duplicate key or an existing key take the current merge path unchanged.
    """
    import gc
    from operator import itemgetter

    import psycopg

    dialect = conn.dialect.name
    assert dialect == "postgresql"
    key = list(key or [c.name for c in table.primary_key.columns])
    pg = conn.connection.driver_connection
    result = U.UpsertResult()
    plan = None
    from_mappings = columns is None
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for batch in U._batches(rows, batch_size):
            if plan is None:
                cols = list(batch[0].keys()) if from_mappings else list(columns)
                plan = U._Plan(table, cols, key, dialect)
                key_of = itemgetter(*key) if from_mappings else itemgetter(*plan.key_idx)
                shape = plan.row_of if from_mappings else tuple
                adapters = plan.adapters
                col_list = ", ".join(plan.columns)
            keys = list(map(key_of, batch))
            if len(plan.key) == 1:
                keys = [(k,) for k in keys]
            if len(set(keys)) == len(keys) and not _any_existing_keys(pg, plan, keys):
                with pg.cursor() as cur:
                    cur.execute("SAVEPOINT upsert_copy")
                    try:
                        with cur.copy(f"COPY {table.name} ({col_list}) FROM STDIN (FORMAT BINARY)") as copy:
                            copy.set_types(plan.pg_types)
                            write = copy.write_row
                            for r in batch:
                                row = shape(r)
                                if adapters:
                                    row = list(row)
                                    for i, adapt in adapters:
                                        row[i] = adapt(row[i])
                                write(row)
                    except psycopg.errors.UniqueViolation:
                        cur.execute("ROLLBACK TO SAVEPOINT upsert_copy")
                    else:
                        cur.execute("RELEASE SAVEPOINT upsert_copy")
                        result += U.UpsertResult(rows=len(batch), written=len(batch))
                        continue
            data = plan.tuples(batch, from_mappings)
            result += U.UpsertResult(rows=len(batch), written=U._pg_batch(conn, plan, data))
    finally:
        if gc_was_enabled:
            gc.enable()
    return result


def _any_existing_keys(pg, plan, keys: list[tuple]) -> bool:
    """``warehouse.upsert._pg_any_existing``'s probe itself, fed the key tuples alone (as rows whose
    key columns come first)."""
    keyed = SimpleNamespace(key=plan.key, key_idx=range(len(plan.key)), table=plan.table)
    with pg.cursor() as cur:
        return U._pg_any_existing(cur, keyed, keys)


# -- main ---------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--only", help="comma-separated variant names to time (default: all)")
    ap.add_argument("--pg", default=os.environ.get("DATABASE_URL") or DEFAULT_PG)
    args = ap.parse_args()
    if sa.engine.make_url(args.pg).get_backend_name() != "postgresql":
        args.pg = DEFAULT_PG
    print(f"profile_upsert · {dt.datetime.now():%Y-%m-%d %H:%M} · {machine()} · load {load_avg()}")
    t, rows = timed(lambda: sync_rows(args.rows))
    n = len(rows)
    cols = list(rows[0].keys())
    col_list = ", ".join(cols)
    types = [U._pg_type(transactions.c[c]) for c in cols]
    tuples = [tuple(r[c] for c in cols) for r in rows]
    print(f"built {n:,} rows in {t:.1f} s", flush=True)

    # Python-only costs (no database)
    plan = U._Plan(transactions, cols, ["tenant_id", "id"], "postgresql")
    fplan = FastPlan(transactions, cols, ["tenant_id", "id"], "postgresql")
    import gc

    gc.disable()  # as warehouse.upsert does around its work
    t_old, _ = timed(lambda: [plan.tuples(rows[k:k + args.batch], True) for k in range(0, n, args.batch)])
    t_new, _ = timed(lambda: [fplan.tuples(rows[k:k + args.batch], True) for k in range(0, n, args.batch)])
    gc.enable()
    print(f"python row preparation alone (GC off): current _Plan.tuples {t_old:.2f} s, FastPlan.tuples {t_new:.2f} s")
    assert [fplan.tuples(rows[:1000], True)[i] for i in (0, 999)] == [
        tuple(v.astimezone(UTC) if isinstance(v, dt.datetime) else v for v in plan.tuples(rows[:1000], True)[i])
        for i in (0, 999)]

    variants = {"bare COPY": None, "upsert (current)": U.upsert, "merge path (instrumented)": instrumented_upsert,
                "fast_tuples": fast_upsert, "overlap": overlap_upsert, "streamed": streamed_upsert}
    if args.only:
        keep = {v.strip() for v in args.only.split(",")} | {"bare COPY", "upsert (current)"}
        variants = {k: v for k, v in variants.items() if k in keep}
    times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in variants}  # (wall, client CPU, server CPU)
    parts: dict[str, float] = {}
    with scratch_pg(args.pg) as url:
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE transactions_copy (LIKE transactions INCLUDING ALL)")

        def admin(*sql):
            with engine.connect() as c:
                c = c.execution_options(isolation_level="AUTOCOMMIT")
                for s in sql:
                    c.exec_driver_sql(s)

        def bare(conn):
            with conn.connection.driver_connection.cursor() as cur:
                with cur.copy(f"COPY transactions_copy ({col_list}) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(types)
                    for row in tuples:
                        cp.write_row(row)

        def measure(body):
            """Wall, our CPU and the PostgreSQL backend's CPU for ``body(conn)`` plus its commit."""
            with engine.begin() as conn:
                pid = conn.connection.driver_connection.info.backend_pid
                c0, s0, t0 = own_cpu_seconds(), proc_cpu_seconds(pid), time.perf_counter()
                res = body(conn)
            return (time.perf_counter() - t0, own_cpu_seconds() - c0, proc_cpu_seconds(pid) - s0), res

        for run in range(args.runs):
            names = list(variants) if run % 2 == 0 else list(reversed(variants))
            for name in names:
                admin("TRUNCATE transactions, transactions_copy", "CHECKPOINT")
                fn = variants[name]
                if fn is None:
                    m, _ = measure(bare)
                else:
                    PARTS.clear()
                    m, res = measure(lambda conn, fn=fn: fn(conn, transactions, rows, batch_size=args.batch))
                    assert res.written == n, (name, res)
                    if fn is instrumented_upsert:
                        parts = {k: list(v) for k, v in PARTS.items()}
                times[name].append(m)
            print(f"  run {run + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f} s" for k, v in times.items())
                  + f" [load {load_avg()}]", flush=True)
            if parts:
                print("    instrumented parts (wall / our CPU / server CPU): " + "; ".join(
                    f"{k} {v[0]:.2f}/{v[1]:.2f}/{v[2]:.2f} s" for k, v in parts.items()), flush=True)
        # the no-change re-upsert, prototypes vs current
        for name, fn in variants.items():
            if fn is None or fn is instrumented_upsert:
                continue
            with engine.begin() as conn:
                fn(conn, transactions, rows, batch_size=args.batch)  # make sure all rows exist
            admin("VACUUM ANALYZE transactions", "CHECKPOINT")
            ms = []
            for _ in range(args.runs):
                m, res = measure(lambda conn, fn=fn: fn(conn, transactions, rows, batch_size=args.batch))
                assert res.written == 0
                ms.append(m)
            print(f"  re-upsert nothing changed, {name:<18} {median([n / x[0] for x in ms]):>9,.0f} rows/s "
                  f"(runs {spread([n / x[0] for x in ms])}); CPU ours {median([x[1] for x in ms]):.2f} s, "
                  f"server {median([x[2] for x in ms]):.2f} s", flush=True)
        engine.dispose()

    copy = median([n / m[0] for m in times["bare COPY"]])
    print(f"PostgreSQL, {n:,} rows, batch {args.batch:,}, median of {args.runs} (CPU: seconds of our process / "
          f"of the PostgreSQL backend):")
    for name, ms in times.items():
        r = median([n / m[0] for m in ms])
        print(f"  {name:<24} {r:>10,.0f} rows/s  ({spread([n / m[0] for m in ms])})  ratio to COPY {r / copy:.2f}x"
              f"   CPU ours {median([m[1] for m in ms]):5.2f} s, server {median([m[2] for m in ms]):5.2f} s")


if __name__ == "__main__":
    main()
