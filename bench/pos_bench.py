"""POS catalog + inventory refresh at scale: 50 tenants x 5,000 products over the seven systems.

    python bench/pos_bench.py [--tenants 50] [--products 5000] [--workers 8] [--pg postgresql://...]

The sandbox runs in its own process (its CPU is not on our GIL); each tenant gets a fresh
account on its system (round-robin over the seven). Phase 1 refreshes every tenant's catalog
then inventory, tenants side by side on ``--workers`` threads as separate runs would; it calls
``syncing.pos.sync_stream``, the asset's own work minus Dagster's bookkeeping. Phase 2
changes 1 % of each tenant's products at the source (stock) and refreshes again: systems with
an updated-since feed read only the changes, the others re-read in full and write only the
changes. Prints wall time, rows/s, API calls and peak RSS; it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import SandboxProcess, machine, peak_rss_mib, proc_peak_rss_mib, scratch_pg  # noqa: E402
from syncing.pos import sync_stream  # noqa: E402
from resources.dagster_resources import PosClientsResource  # noqa: E402
from resources.pos import POS_SYSTEMS  # noqa: E402
from resources.warehouse import engine_for  # noqa: E402
from tests.pos_accounts import Account, native_id, new_account  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402
from warehouse.tables.pos import products  # noqa: E402
from warehouse.tenants import add_tenant, set_connection  # noqa: E402

import sqlalchemy as sa  # noqa: E402

CLIENTS = PosClientsResource()


def refresh(engine: sa.Engine, tenant: str, account: Account) -> dict[str, int | str]:
    """Catalog then inventory of one tenant, as the pos_sync job orders them."""
    out: dict[str, int | str] = {"system": account.system}
    client = CLIENTS.client_for(account.connection(tenant))
    try:
        for kind in ("products", "inventory"):
            stats = sync_stream(engine, client, tenant, kind, account.options)
            out[f"{kind}_rows"], out[f"{kind}_written"] = stats.rows, stats.rows_written
            out[f"{kind}_calls"], out[f"{kind}_mode"] = stats.api_calls, stats.extra["mode"]
    finally:
        client.close()
    return out


def run_phase(engine: sa.Engine, accounts: dict[str, Account], workers: int) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tenant") as pool:
        results = list(pool.map(lambda item: refresh(engine, *item), accounts.items()))
    return time.perf_counter() - started, results


def report(title: str, seconds: float, results: list[dict]) -> None:
    rows = sum(r["products_rows"] + r["inventory_rows"] for r in results)
    written = sum(r["products_written"] + r["inventory_written"] for r in results)
    calls = sum(r["products_calls"] + r["inventory_calls"] for r in results)
    print(f"\n{title}")
    print(f"  wall time        {seconds:8.1f} s")
    print(f"  rows read        {rows:8,}   ({rows / seconds:,.0f} rows/s)   written {written:,}")
    print(f"  API calls        {calls:8,}")
    per = defaultdict(Counter)
    for r in results:
        per[r["system"]].update({"tenants": 1, "calls": r["products_calls"] + r["inventory_calls"],
                                 "read": r["products_rows"] + r["inventory_rows"],
                                 "written": r["products_written"] + r["inventory_written"]})
        per[r["system"]][f"{r['products_mode']}/{r['inventory_mode']}"] += 1
    for system in POS_SYSTEMS:
        c = per[system]
        modes = ", ".join(k for k in c if "/" in k)
        print(f"    {system:8} tenants {c['tenants']:2}  calls {c['calls']:6,}  read {c['read']:8,}  "
              f"written {c['written']:8,}  modes {modes}")


def change_one_percent(engine: sa.Engine, accounts: dict[str, Account], fraction: float, seed: int = 7) -> int:
    """Change the stock of ``fraction`` of every tenant's products at the source."""
    rng = random.Random(seed)
    jobs = []
    with engine.connect() as conn:
        for tenant, account in accounts.items():
            loaded = conn.execute(sa.select(products.c.product_id, products.c.attributes)
                                  .where(products.c.tenant_id == tenant)).mappings().all()
            for row in rng.sample(list(loaded), max(1, int(len(loaded) * fraction))):
                jobs.append((account, native_id(dict(row)), rng.randrange(1, 500)))
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda j: j[0].set_stock(j[1], j[2]), jobs))
    return len(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--pg", help="a PostgreSQL server URL: the warehouse goes to a scratch database on it")
    args = parser.parse_args()
    with ExitStack() as stack:
        sandbox = stack.enter_context(SandboxProcess())
        url = stack.enter_context(scratch_pg(args.pg)) if args.pg else \
            f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/warehouse.db"
        upgrade(url)
        engine = engine_for(url)
        print(f"{machine()}\nwarehouse: {engine.dialect.name}; {args.tenants} tenants x {args.products:,} products; "
              f"{args.workers} tenants at a time")
        started = time.perf_counter()
        accounts: dict[str, Account] = {}
        for n in range(args.tenants):
            system = POS_SYSTEMS[n % len(POS_SYSTEMS)]
            accounts[f"bench-{system}-{n:02d}"] = new_account(sandbox.url, system, products=args.products, customers=0)
        with engine.begin() as conn:
            for tenant, account in accounts.items():
                add_tenant(conn, tenant, tenant)
                set_connection(conn, tenant, account.system, account.base_url, account.credentials, account.options)
        print(f"accounts created in {time.perf_counter() - started:.1f} s")

        seconds, results = run_phase(engine, accounts, args.workers)
        report("Full refresh: catalog + inventory", seconds, results)
        print(f"  peak RSS         {peak_rss_mib():8.0f} MiB (this process)   "
              f"{proc_peak_rss_mib(sandbox.proc.pid) or 0:,.0f} MiB (sandbox)")

        changed = change_one_percent(engine, accounts, args.changed)
        seconds, results = run_phase(engine, accounts, args.workers)
        report(f"Incremental refresh after {changed:,} products changed ({args.changed:.0%})", seconds, results)
        print(f"  peak RSS         {peak_rss_mib():8.0f} MiB (this process)")


if __name__ == "__main__":
    main()
