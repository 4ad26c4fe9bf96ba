"""The staff API: an authorised 50-row transactions page per second beside the very same page
without authorisation (target ≥ 0.7×), and the export of 1,000,000 transactions as CSV and as
Parquet (rows/s, and the API process's peak RSS; target < 300 MiB).

The API runs as one uvicorn process (``bench/_staff_app.py``: the real app plus a bench-only
route running the page route's own handler without authorisation, so both pass the same
middleware and run the same query). The driver is one httpx client, keep-alive, one request at a
time, the two routes taking turns in blocks of 20 pages, so both meet the same load on a shared
machine; each round gives both rates and their ratio, and the medians over the rounds are shown.
Then the server's CPU time per page of each route (the API process, plus its PostgreSQL backends):
the work authorisation adds, which a loaded machine's waits do not blur as they blur the rates.
The authorised calls use an API key in one run and an access token in another.

    python bench/staff_api_bench.py                     # SQLite, 1,000,000 transactions
    python bench/staff_api_bench.py --pg                # a scratch PostgreSQL database
    python bench/staff_api_bench.py --rows 100000 --seconds 3 --rounds 5 --no-export
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DEFAULT_PG, ROOT, free_port, load_avg, machine, median, proc_cpu_seconds, proc_peak_rss_mib, scratch_pg,
)

import httpx  # noqa: E402

from warehouse.db import make_engine  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402

TENANT = "bench-clinic"
PASSWORD = "bench password 123"


def seed(url: str, rows: int) -> str:
    """The tenant, ``rows`` transactions (as the sync makes them), and a clinic_staff user; returns an API key."""
    from syncing.mx import parse_payments
    from people.credentials import Passwords
    from people.users import create_key, create_user, grant
    from sandbox.mx_merchant import Merchant, MerchantSpec
    from warehouse.tables.mx import transactions
    from warehouse.tenants import add_tenant
    from warehouse.upsert import upsert

    engine = make_engine(url)
    with engine.begin() as conn:
        add_tenant(conn, TENANT, "Bench Clinic")
    m = Merchant(MerchantSpec(merchant_id=1_000_777, consumer_key="k", consumer_secret="s", transactions=rows, seed=5))
    t0 = time.perf_counter()
    for start in range(0, rows, 50_000):
        parsed, rejected = parse_payments(TENANT, [m.payment(k) for k in range(start, min(rows, start + 50_000))])
        with engine.begin() as conn:
            upsert(conn, transactions, parsed)
    print(f"seeded {rows:,} transactions in {time.perf_counter() - t0:.1f} s")
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # planner statistics now, not whenever autovacuum gets to it
            conn.exec_driver_sql("ANALYZE transactions")
    with engine.begin() as conn:
        user = create_user(conn, Passwords(19 * 1024, 2), "staff@bench.test", "Staff", PASSWORD)
        grant(conn, user, TENANT, "clinic_staff")
        key = create_key(conn, user, "bench").key
    engine.dispose()
    return key


@contextlib.contextmanager
def api_process(url: str, home: str):
    port = free_port()
    env = {**os.environ, "STOREHOUSE_SHOP_DATABASE_URL": url, "STOREHOUSE_SHOP_SECRET_KEY": "bench-secret",
           "STOREHOUSE_SHOP_WORKER_ENABLED": "false", "STOREHOUSE_HOME": home,
           "STOREHOUSE_SHOP_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "_staff_app:create", "--factory", "--app-dir", "bench",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                            cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


def get_page(client: httpx.Client, url: str, headers: dict) -> float:
    """One page; the seconds it took."""
    t0 = time.perf_counter()
    answer = client.get(url, headers=headers)
    took = time.perf_counter() - t0
    assert answer.status_code == 200 and len(answer.json()["items"]) == 50, answer.text[:200]
    return took


BLOCK = 20  # pages of one route before the other's turn


def taking_turns(client: httpx.Client, authed: tuple[str, dict], bare: tuple[str, dict], seconds: float
                 ) -> tuple[float, float]:
    """Pages per second of each route over ``2 × seconds``, the two taking turns in short blocks: both
    meet the same load, and what a request leaves for the server to finish after its answer (a
    connection returned, garbage collected) lands on its own route, not the other's."""
    n, spent, t0 = 0, [0.0, 0.0], time.perf_counter()
    while time.perf_counter() - t0 < 2 * seconds:
        for i in ((0, 1) if n % 2 else (1, 0)):  # spent[0]: authorised, spent[1]: unauthorised
            url, headers = (authed, bare)[i]
            spent[i] += sum(get_page(client, url, headers) for _ in range(BLOCK))
        n += 1
    return n * BLOCK / spent[0], n * BLOCK / spent[1]


def server_cpu(api_pid: int, url: str):
    """A function giving the CPU seconds used so far by the API process and, on PostgreSQL, by the
    backends of its database (the server is local; the pool keeps its connections open)."""
    if not url.startswith("postgresql"):
        return lambda: proc_cpu_seconds(api_pid)
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    def cpu() -> float:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                               " AND pid <> pg_backend_pid()")]
        return proc_cpu_seconds(api_pid) + sum(proc_cpu_seconds(p) for p in pids)

    return cpu


def cpu_per_page(client: httpx.Client, cpu, routes: list[tuple[str, dict]], rounds: int, n: int = 150) -> list[float]:
    """Server CPU milliseconds per page of each route: blocks of ``n`` pages, the routes in turn."""
    spent = [0.0] * len(routes)
    for _ in range(rounds):
        for i, (url, headers) in enumerate(routes):
            before = cpu()
            for _ in range(n):
                get_page(client, url, headers)
            spent[i] += cpu() - before
    return [1000 * x / (rounds * n) for x in spent]


def pages(base: str, key: str, seconds: float, rounds: int, cpu) -> None:
    with httpx.Client(timeout=30) as client:
        token = client.post(f"{base}/auth/token", data={"username": "staff@bench.test", "password": PASSWORD}
                            ).json()["access_token"]
        authed = f"{base}/tenants/{TENANT}/transactions?limit=50"
        bare = f"{base}/bench/tenants/{TENANT}/transactions?limit=50"
        for name, credential in (("API key", key), ("access token", token)):
            headers = {"Authorization": f"Bearer {credential}"}
            taking_turns(client, (authed, headers), (bare, {}), 1.0)  # warm both
            a, b = zip(*(taking_turns(client, (authed, headers), (bare, {}), seconds) for _ in range(rounds)))
            ratios = sorted(x / y for x, y in zip(a, b))
            print(f"50-row page, authorised by {name}: {median(a):,.0f}/s; unauthorised: {median(b):,.0f}/s "
                  f"→ {median(ratios):.2f}× (target ≥ 0.7×; per round {'/'.join(f'{r:.2f}' for r in ratios)}; "
                  f"rounds {'/'.join(f'{x:.0f}' for x in a)} vs {'/'.join(f'{x:.0f}' for x in b)}) · load {load_avg()}")
            ms_a, ms_b = cpu_per_page(client, cpu, [(authed, headers), (bare, {})], rounds)
            print(f"   server CPU per page: authorised {ms_a:.2f} ms, unauthorised {ms_b:.2f} ms → {ms_b / ms_a:.2f}×")


def export(base: str, key: str, pid: int, rows: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    for fmt in ("csv", "parquet"):
        size, t0 = 0, time.perf_counter()
        with httpx.stream("GET", f"{base}/tenants/{TENANT}/exports/transactions", params={"format": fmt},
                          headers=headers, timeout=600) as answer:
            assert answer.status_code == 200
            lines = 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if fmt == "csv":
                    lines += chunk.count(b"\n")
        took = time.perf_counter() - t0
        if fmt == "csv":
            assert lines == rows + 1, (lines, rows)
        print(f"export {fmt}: {rows:,} rows in {took:.1f} s = {rows / took:,.0f} rows/s, {size / 2**20:,.0f} MiB; "
              f"API peak RSS so far {proc_peak_rss_mib(pid):.0f} MiB (target < 300 MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", nargs="?", const=DEFAULT_PG, default=None, help="PostgreSQL server URL")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per round and route")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-export", action="store_true", help="the pages only (no 1,000,000-row exports)")
    args = parser.parse_args()
    print(machine(), "· load", load_avg())
    with tempfile.TemporaryDirectory() as home, (scratch_pg(args.pg) if args.pg else contextlib.nullcontext(
            f"sqlite:///{home}/warehouse.db")) as url:
        upgrade(url)
        key = seed(url, args.rows)
        with api_process(url, home) as (base, pid):
            pages(base, key, args.seconds, args.rounds, server_cpu(pid, url))
            if not args.no_export:
                export(base, key, pid, args.rows)


if __name__ == "__main__":
    main()
