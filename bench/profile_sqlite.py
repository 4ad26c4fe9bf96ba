"""Where the SQLite upsert's time goes, and a measured prototype (nothing outside bench/ changes).

Splits ``warehouse.upsert.upsert`` on SQLite into Python row preparation (``_Plan.tuples``:
dict → tuple, ``Money`` to numbers and ``UTCDateTime`` to text, key de-dup) and the ``executemany``
itself, and times a prototype ``_Plan`` whose SQLite adapters produce the same text faster
(``isoformat`` instead of ``strftime``; ``itemgetter`` rows; column-wise adapters). All figures
are CPU-bound in this one process, so CPU seconds are given beside wall seconds.

    python bench/profile_sqlite.py --rows 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import operator
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_avg, machine, median, own_cpu_seconds, spread, sync_rows, timed  # noqa: E402

import warehouse.upsert as U  # noqa: E402
from upsert_bench import PRAGMAS, sqlite_template  # noqa: E402
from warehouse.db import make_engine  # noqa: E402
from warehouse.tables.mx import transactions  # noqa: E402
from warehouse.types import UTC, Money, UTCDateTime, sqlite_money  # noqa: E402


def _sqlite_money(v):
    return sqlite_money(v)


def _sqlite_time(v):
    """The same text as ``sqlite_time`` ('%Y-%m-%d %H:%M:%S.%f+00:00' in UTC), via isoformat."""
    if v is None:
        return None
    if type(v) is str or v.tzinfo is None or not (1000 <= v.year <= 9999):
        return UTCDateTime.raw(v, "sqlite")
    return v.astimezone(UTC).isoformat(" ", "microseconds")


class FastSqlitePlan(U._Plan):
    def __init__(self, table, columns, key, dialect):
        super().__init__(table, columns, key, dialect)
        if dialect == "sqlite":
            fast = []
            for i, adapt in self.adapters:
                t = table.c[self.columns[i]].type
                fast.append((i, _sqlite_money if isinstance(t, Money) else _sqlite_time if isinstance(t, UTCDateTime) else adapt))
            self.adapters = fast
        self.getter = operator.itemgetter(*self.columns)
        self.key_getter = operator.itemgetter(*self.key_idx)

    def tuples(self, batch, from_mappings):
        rows = list(map(self.getter, batch)) if from_mappings else [tuple(r) for r in batch]
        if self.adapters:
            columns = list(zip(*rows))
            for i, adapt in self.adapters:
                columns[i] = list(map(adapt, columns[i]))
            rows = list(zip(*columns))
        deduped = dict(zip(map(self.key_getter, rows), rows))
        return list(deduped.values()) if len(deduped) != len(rows) else rows


def fast_upsert(conn, table, rows, **kw):
    saved = U._Plan
    U._Plan = FastSqlitePlan
    try:
        return U.upsert(conn, table, rows, **kw)
    finally:
        U._Plan = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"profile_sqlite · {dt.datetime.now():%Y-%m-%d %H:%M} · {machine()} · load {load_avg()}")
    t, rows = timed(lambda: sync_rows(args.rows))
    n = len(rows)
    cols = list(rows[0].keys())
    print(f"built {n:,} rows in {t:.1f} s", flush=True)

    plan = U._Plan(transactions, cols, ["tenant_id", "id"], "sqlite")
    fplan = FastSqlitePlan(transactions, cols, ["tenant_id", "id"], "sqlite")
    assert fplan.tuples(rows[:5000], True) == plan.tuples(rows[:5000], True), "prototype must bind identical values"
    for label, p in (("current _Plan.tuples", plan), ("FastSqlitePlan.tuples", fplan)):
        ts = []
        for _ in range(args.runs):
            c0 = own_cpu_seconds()
            for k in range(0, n, 20_000):
                p.tuples(rows[k:k + 20_000], True)
            ts.append(own_cpu_seconds() - c0)
        print(f"  python row preparation, {label:<24} CPU {median(ts):.2f} s ({'/'.join(f'{x:.2f}' for x in ts)})")
    converted = plan.tuples(rows, True)
    col_list = ", ".join(cols)
    tuple_sql = f"INSERT INTO transactions_copy ({col_list}) VALUES ({', '.join('?' for _ in cols)})"

    results: dict[str, list[tuple[float, float]]] = {"bare (pre-converted)": [], "upsert (current)": [],
                                                     "upsert (FastSqlitePlan)": []}
    with tempfile.TemporaryDirectory(prefix="storehouse-bench-") as tmp:
        template = sqlite_template(Path(tmp))
        for run in range(args.runs):
            names = list(results) if run % 2 == 0 else list(reversed(results))
            for name in names:
                db = Path(tmp) / "run.db"
                shutil.copy(template, db)
                if name.startswith("bare"):
                    con = sqlite3.connect(db)
                    for p in PRAGMAS:
                        con.execute(p)
                    c0, t0 = own_cpu_seconds(), time.perf_counter()
                    con.executemany(tuple_sql, converted)
                    con.commit()
                    results[name].append((time.perf_counter() - t0, own_cpu_seconds() - c0))
                    con.close()
                else:
                    engine = make_engine(f"sqlite:///{db}")
                    fn = U.upsert if name == "upsert (current)" else fast_upsert
                    c0, t0 = own_cpu_seconds(), time.perf_counter()
                    with engine.begin() as conn:
                        res = fn(conn, transactions, rows)
                    results[name].append((time.perf_counter() - t0, own_cpu_seconds() - c0))
                    assert res.written == n
                    engine.dispose()
                for p in Path(tmp).glob("run.db*"):
                    p.unlink()
            print(f"  run {run + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f} s" for k, v in results.items())
                  + f" [load {load_avg()}]", flush=True)
    base = median([n / w for w, _ in results["bare (pre-converted)"]])
    print(f"SQLite, {n:,} rows, median of {args.runs}:")
    for name, ms in results.items():
        r = median([n / w for w, _ in ms])
        print(f"  {name:<26} {r:>10,.0f} rows/s ({spread([n / w for w, _ in ms])})  ratio to bare(pre-converted) "
              f"{r / base:.2f}x   CPU {median([c for _, c in ms]):.2f} s")


if __name__ == "__main__":
    main()
