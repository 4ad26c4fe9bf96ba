"""Benchmark 1: the write path (``warehouse.upsert.upsert``) against a bare bulk load of the same rows.

PostgreSQL: upsert vs a bare psycopg binary ``COPY`` into an identical empty table (target ≥ 0.8×).
SQLite: upsert vs a bare ``sqlite3`` ``executemany`` plain INSERT into an identical empty table,
WAL and the warehouse's pragmas (target ≥ 0.6×). Also: the re-upsert of the same rows (nothing
changes, nothing written), a 10 %-changed pass, and page-sized upserts (1,000 rows, commit each)
as the sync does them.

Rows are built once, before any timing, exactly as the sync builds them (the sandbox generator's
payments through ``syncing.mx.parse_payments``). Only the write (and its commit) is timed.

    python bench/upsert_bench.py                       # both databases, 1,000,000 rows, 3 runs
    python bench/upsert_bench.py --only pg --pg postgresql://postgres@127.0.0.1:5432/postgres
    python bench/upsert_bench.py --only sqlite --rows 200000 --runs 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DEFAULT_PG, load_avg, machine, median, own_cpu_seconds, peak_rss_mib, proc_cpu_seconds, scratch_pg, spread,
    sync_rows, timed,
)

import sqlalchemy as sa  # noqa: E402

from warehouse.db import make_engine  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402
from warehouse.tables.mx import transactions  # noqa: E402
from warehouse.types import Money, UTCDateTime  # noqa: E402
from warehouse.upsert import _pg_type, upsert  # noqa: E402

PAGE = 1_000


def changed_rows(rows: list[dict], every: int = 10) -> list[dict]:
    """The same rows with every ``every``-th one's status changed (a 10 % changed pass)."""
    return [{**r, "status": "Refunded"} if k % every == 0 else r for k, r in enumerate(rows)]


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def report(label: str, n: int, measured: list, extra: str = "") -> float:
    """Median rows/s of (wall, our CPU[, server CPU]) measurements, with each run and the CPU."""
    rates = [rate(n, m[0]) for m in measured]
    med = median(rates)
    cpu = f"CPU ours {median([m[1] for m in measured]):.2f} s"
    if len(measured[0]) > 2:
        cpu += f", server {median([m[2] for m in measured]):.2f} s"
    print(f"  {label:<44} {med:>10,.0f} rows/s  (runs: {spread(rates)}; wall {median([m[0] for m in measured]):.2f} s; "
          f"{cpu}){extra}", flush=True)
    return med


# -- PostgreSQL ---------------------------------------------------------------------------------

class CpuMeter:
    """Wall time, our CPU and the CPU of every PostgreSQL backend the engine handed out (read from
    /proc: the server is local), around one measured operation. CPU is the robust figure on a
    shared machine: other processes stretch wall time but not the work done."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.start: dict[int, float] = {}
        self.active = False
        sa.event.listen(engine, "checkout", self._checkout)

    def _checkout(self, dbapi_conn, _record, _proxy) -> None:
        if self.active:
            pid = dbapi_conn.info.backend_pid
            self.start.setdefault(pid, proc_cpu_seconds(pid))

    def __call__(self, fn):
        self.start, self.active = {}, True
        c0, t0 = own_cpu_seconds(), time.perf_counter()
        out = fn()
        wall, ours = time.perf_counter() - t0, own_cpu_seconds() - c0
        self.active = False
        server = sum(proc_cpu_seconds(pid) - s for pid, s in self.start.items())
        return (wall, ours, server), out


def pg_bench(base_url: str, rows: list[dict], runs: int) -> dict:
    n = len(rows)
    cols = list(rows[0].keys())
    col_list = ", ".join(cols)
    types = [_pg_type(transactions.c[c]) for c in cols]
    tuples = [tuple(r[c] for c in cols) for r in rows]
    changed = changed_rows(rows)
    keys = ("copy", "upsert", "upsert_tuples", "reupsert", "changed", "pages")
    times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in keys}
    written: dict[str, list[int]] = {k: [] for k in ("upsert", "reupsert", "changed", "pages")}

    with scratch_pg(base_url) as url:
        upgrade(url)
        engine = make_engine(url)
        meter = CpuMeter(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE transactions_copy (LIKE transactions INCLUDING ALL)")

        def admin(*sql: str) -> None:
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                for s in sql:
                    conn.exec_driver_sql(s)

        def bare_copy() -> None:
            with engine.begin() as conn:
                with conn.connection.driver_connection.cursor() as cur:
                    with cur.copy(f"COPY transactions_copy ({col_list}) FROM STDIN (FORMAT BINARY)") as cp:
                        cp.set_types(types)
                        for t in tuples:
                            cp.write_row(t)

        def up(data, **kw) -> int:
            with engine.begin() as conn:
                return upsert(conn, transactions, data, **kw).written

        def up_pages(data) -> int:
            total = 0
            for k in range(0, len(data), PAGE):
                with engine.begin() as conn:
                    total += upsert(conn, transactions, data[k:k + PAGE]).written
            return total

        def record(what: str, fn) -> None:
            m, w = meter(fn)
            times[what].append(m)
            if what in written:
                written[what].append(w)

        for run in range(runs):
            admin("TRUNCATE transactions, transactions_copy", "CHECKPOINT")
            order = ["copy", "upsert"] if run % 2 == 0 else ["upsert", "copy"]
            for what in order:
                record(what, bare_copy if what == "copy" else (lambda: up(rows)))
                admin("CHECKPOINT")
            with engine.connect() as conn:
                a = conn.exec_driver_sql("SELECT count(*) FROM transactions").scalar_one()
                b = conn.exec_driver_sql("SELECT count(*) FROM transactions_copy").scalar_one()
            assert a == b == n, (a, b, n)
            admin("VACUUM ANALYZE transactions", "CHECKPOINT")  # as autovacuum would, before re-syncs
            record("reupsert", lambda: up(rows))
            admin("CHECKPOINT")
            record("changed", lambda: up(changed))
            admin("TRUNCATE transactions", "CHECKPOINT")
            record("upsert_tuples", lambda: up(tuples, columns=cols))
            admin("TRUNCATE transactions", "CHECKPOINT")
            record("pages", lambda: up_pages(rows))
            print(f"  run {run + 1}/{runs} (wall s): " + ", ".join(f"{k} {times[k][-1][0]:.2f}" for k in keys)
                  + f" [load {load_avg()}]", flush=True)
        engine.dispose()

    print(f"PostgreSQL, {n:,} rows, median of {runs} (CPU = seconds of our process / of the PostgreSQL backend):")
    copy = report("bare binary COPY (pre-built tuples)", n, times["copy"])
    ups = report("upsert (dicts, as the sync passes them)", n, times["upsert"], f"  written {written['upsert'][0]:,}")
    upt = report("upsert (the same pre-built tuples)", n, times["upsert_tuples"])
    re_ = report("re-upsert, nothing changed", n, times["reupsert"], f"  written {written['reupsert'][0]:,}")
    ch = report("10 % changed", n, times["changed"], f"  written {written['changed'][0]:,}")
    pg = report(f"upsert in {PAGE:,}-row pages, commit each", n, times["pages"], f"  written {written['pages'][0]:,}")
    print(f"  ratio upsert(dicts) / COPY   = {ups / copy:.2f}x   (target >= 0.8x)")
    print(f"  ratio upsert(tuples) / COPY  = {upt / copy:.2f}x   (same input on both sides)")
    cpu = lambda k, i: median([m[i] for m in times[k]])  # noqa: E731
    print(f"  CPU per 1M rows: COPY ours {cpu('copy', 1) * 1e6 / n:.2f} s + server {cpu('copy', 2) * 1e6 / n:.2f} s; "
          f"upsert ours {cpu('upsert', 1) * 1e6 / n:.2f} s + server {cpu('upsert', 2) * 1e6 / n:.2f} s; "
          f"server-CPU ratio COPY/upsert = {cpu('copy', 2) / cpu('upsert', 2):.2f}x")
    return {"copy": copy, "upsert": ups, "upsert_tuples": upt, "reupsert": re_, "changed": ch, "pages": pg,
            "written": written}


# -- SQLite -------------------------------------------------------------------------------------

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=30000",
           "PRAGMA foreign_keys=ON")  # the same as warehouse.db.make_engine sets


def sqlite_template(directory: Path) -> Path:
    """A migrated warehouse file plus ``transactions_copy``: the same DDL, indexes included."""
    path = directory / "template.db"
    upgrade(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    ddl = con.execute("SELECT type, sql FROM sqlite_master WHERE tbl_name = 'transactions' AND sql IS NOT NULL").fetchall()
    for kind, sql in ddl:
        con.execute(sql.replace("transactions", "transactions_copy", 1) if kind == "table"
                    else sql.replace(" ON transactions ", " ON transactions_copy ").replace("ix_", "ixc_", 1))
    con.commit()
    con.close()
    return path


def sqlite_bench(rows: list[dict], runs: int) -> dict:
    n = len(rows)
    cols = list(rows[0].keys())
    col_list = ", ".join(cols)
    # "The same rows" for a bare sqlite3 insert: the dicts themselves, bound by name, with the
    # sqlite3 adapters that let it take Decimal and datetime at all.
    sqlite3.register_adapter(Decimal, str)
    sqlite3.register_adapter(dt.datetime, lambda v: v.isoformat(" "))
    named_sql = f"INSERT INTO transactions_copy ({col_list}) VALUES ({', '.join(':' + c for c in cols)})"
    # The strictest ceiling: tuples already holding exactly what upsert binds (text money/time).
    money = [i for i, c in enumerate(cols) if isinstance(transactions.c[c].type, Money)]
    times_ = [i for i, c in enumerate(cols) if isinstance(transactions.c[c].type, UTCDateTime)]
    converted = []
    for r in rows:
        t = [r[c] for c in cols]
        for i in money:
            t[i] = Money.raw(t[i], "sqlite")
        for i in times_:
            t[i] = UTCDateTime.raw(t[i], "sqlite")
        converted.append(tuple(t))
    tuple_sql = f"INSERT INTO transactions_copy ({col_list}) VALUES ({', '.join('?' for _ in cols)})"
    changed = changed_rows(rows)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in
                                                   ("bare", "bare_tuples", "upsert", "reupsert", "changed", "pages")}
    written: dict[str, list[int]] = {k: [] for k in ("upsert", "reupsert", "changed", "pages")}

    with tempfile.TemporaryDirectory(prefix="storehouse-bench-") as tmp:
        template = sqlite_template(Path(tmp))

        def bare(path: Path, sql: str, data) -> tuple[float, float]:
            con = sqlite3.connect(path)
            for p in PRAGMAS:
                con.execute(p)
            c0, t0 = own_cpu_seconds(), time.perf_counter()
            con.executemany(sql, data)
            con.commit()
            measured = (time.perf_counter() - t0, own_cpu_seconds() - c0)
            assert con.execute("SELECT count(*) FROM transactions_copy").fetchone()[0] == n
            con.close()
            return measured

        def measure(fn):
            c0, t0 = own_cpu_seconds(), time.perf_counter()
            out = fn()
            return (time.perf_counter() - t0, own_cpu_seconds() - c0), out

        for run in range(runs):
            db = Path(tmp) / f"run{run}.db"
            shutil.copy(template, db)
            engine = make_engine(f"sqlite:///{db}")

            def up(data) -> int:
                with engine.begin() as conn:
                    return upsert(conn, transactions, data).written

            order = ["bare", "upsert"] if run % 2 == 0 else ["upsert", "bare"]
            for what in order:
                if what == "bare":
                    times["bare"].append(bare(db, named_sql, rows))
                else:
                    t, w = measure(lambda: up(rows))
                    times["upsert"].append(t), written["upsert"].append(w)
            t, w = measure(lambda: up(rows))
            times["reupsert"].append(t), written["reupsert"].append(w)
            t, w = measure(lambda: up(changed))
            times["changed"].append(t), written["changed"].append(w)
            engine.dispose()
            # the pre-converted ceiling and page-sized upserts, each on a fresh copy
            db2 = Path(tmp) / f"run{run}b.db"
            shutil.copy(template, db2)
            times["bare_tuples"].append(bare(db2, tuple_sql, converted))
            engine = make_engine(f"sqlite:///{db2}")

            def up_pages(data) -> int:
                total = 0
                for k in range(0, len(data), PAGE):
                    with engine.begin() as conn:
                        total += upsert(conn, transactions, data[k:k + PAGE]).written
                return total

            t, w = measure(lambda: up_pages(rows))
            times["pages"].append(t), written["pages"].append(w)
            engine.dispose()
            for p in Path(tmp).glob(f"run{run}*"):
                p.unlink()
            print(f"  run {run + 1}/{runs} (wall s): " + ", ".join(f"{k} {v[-1][0]:.2f}" for k, v in times.items())
                  + f" [load {load_avg()}]", flush=True)

    print(f"SQLite, {n:,} rows, median of {runs} (CPU = seconds of this process, SQLite included):")
    bare_ = report("bare sqlite3 executemany (same dicts, named)", n, times["bare"])
    baret = report("bare sqlite3 executemany (pre-converted)", n, times["bare_tuples"])
    ups = report("upsert (dicts, as the sync passes them)", n, times["upsert"], f"  written {written['upsert'][0]:,}")
    re_ = report("re-upsert, nothing changed", n, times["reupsert"], f"  written {written['reupsert'][0]:,}")
    ch = report("10 % changed", n, times["changed"], f"  written {written['changed'][0]:,}")
    pg = report(f"upsert in {PAGE:,}-row pages, commit each", n, times["pages"])
    print(f"  ratio upsert / bare (same dicts)     = {ups / bare_:.2f}x   (target >= 0.6x)")
    print(f"  ratio upsert / bare (pre-converted)  = {ups / baret:.2f}x")
    cpu = lambda k: median([m[1] for m in times[k]])  # noqa: E731
    print(f"  CPU-time ratios (robust to other load): bare(same dicts)/upsert = {cpu('bare') / cpu('upsert'):.2f}x, "
          f"bare(pre-converted)/upsert = {cpu('bare_tuples') / cpu('upsert'):.2f}x")
    return {"bare": bare_, "bare_tuples": baret, "upsert": ups, "reupsert": re_, "changed": ch, "pages": pg}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", default=os.environ.get("DATABASE_URL") or DEFAULT_PG,
                    help="PostgreSQL server to create a scratch database on (default DATABASE_URL or %(default)s)")
    ap.add_argument("--only", choices=["pg", "sqlite"])
    args = ap.parse_args()
    if sa.engine.make_url(args.pg).get_backend_name() != "postgresql":
        args.pg = DEFAULT_PG
    print(f"upsert_bench · {dt.datetime.now():%Y-%m-%d %H:%M} · {machine()} · load {load_avg()}")
    t, rows = timed(lambda: sync_rows(args.rows))
    print(f"built {len(rows):,} rows as the sync does in {t:.1f} s (not timed below); RSS {peak_rss_mib():,.0f} MiB",
          flush=True)
    if args.only in (None, "pg"):
        pg_bench(args.pg, rows, args.runs)
    if args.only in (None, "sqlite"):
        sqlite_bench(rows, args.runs)
    print(f"peak RSS {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
