"""Benchmark 2: one MX Merchant tenant end to end, sandbox → warehouse, beside a bare httpx ceiling.

The sandbox runs in its own process (``uvicorn sandbox.app:create_app``) so its CPU is not under
our GIL. One merchant with ``--transactions`` payments (60 % invoice-linked, 5 payments per
invoice, invoice numbers only on payments, as seed 003), ``--latency-ms`` added to every call,
detail concurrency ``--detail-concurrency``; the sync is driven directly, as
``tests/test_mx_sync.py`` does (``sync_transactions`` → ``sync_invoices`` → ``sync_products``).

Prints: wall time per step and in total, rows/s, API calls beside the expected
pages + invoice-list pages + unique invoices (and the sandbox's own counter), peak RSS, then a
bare concurrent httpx fetch of the SAME URLs (checked against what the sync fetched) as the
ceiling and the ratio, then the no-change re-sync (calls, rows written, time).

    python bench/mx_end_to_end.py                    # SQLite, 200,000 transactions, 50 ms, 16
    python bench/mx_end_to_end.py --pg               # PostgreSQL (DATABASE_URL or 127.0.0.1:5432)
    python bench/mx_end_to_end.py --transactions 20000 --runs 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DEFAULT_PG, SandboxProcess, load_avg, machine, median, own_cpu_seconds, peak_rss_mib,
    proc_peak_rss_mib, scratch_pg,
)

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import syncing.mx as mx_sync  # noqa: E402  (looked up at call time, so bench prototypes can patch it)
from syncing.mx import MxSyncOptions  # noqa: E402
from resources.mx_merchant import client_for  # noqa: E402
from warehouse.db import make_engine  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402
from warehouse.tables.mx import invoice_lines, invoices, transactions  # noqa: E402
from warehouse.tenants import add_tenant, get_connection, set_connection  # noqa: E402

MERCHANT_ID = 1_000_555_001
RULES = {"botox": "Injectables", "filler": "Injectables", "facial": "Skin", "peel": "Skin"}


@dataclass
class Merchant:
    sandbox: SandboxProcess
    merchant_id: int
    key: str
    secret: str
    transactions: int
    stats: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"{self.sandbox.url}/mx/checkout/v3"

    def refresh(self) -> dict:
        self.stats = httpx.get(f"{self.sandbox.url}/_sandbox/mx/merchants/{self.merchant_id}/stats", timeout=120).json()
        return self.stats


def create_merchant(sandbox: SandboxProcess, n: int, latency_ms: float, with_ids: bool = False) -> Merchant:
    m = Merchant(sandbox, MERCHANT_ID, f"bench-key-{MERCHANT_ID}", f"bench-secret-{MERCHANT_ID}", n)
    httpx.post(f"{sandbox.url}/_sandbox/mx/merchants", timeout=30, json={
        "merchant_id": m.merchant_id, "consumer_key": m.key, "consumer_secret": m.secret, "name": "Bench Clinic",
        "transactions": n, "linked_ratio": 0.6, "payments_per_invoice": 5, "invoice_ids_on_payments": with_ids,
        "seed": 42,
    }).raise_for_status()
    httpx.put(f"{sandbox.url}/_sandbox/faults/mx", json={"latency_ms": latency_ms}, timeout=30).raise_for_status()
    return m


def reset_calls(m: Merchant) -> None:
    httpx.post(f"{m.sandbox.url}/_sandbox/mx/merchants/{m.merchant_id}/calls/reset", timeout=30).raise_for_status()


def expected_urls(m: Merchant, opts: MxSyncOptions, invoice_count: int, with_ids: bool) -> dict[str, list[str]]:
    """The URLs a first sync must fetch, per phase, from the generator's own numbering."""
    from sandbox.mx_merchant import Merchant as Gen, MerchantSpec

    gen = Gen(MerchantSpec(merchant_id=m.merchant_id, consumer_key="-", consumer_secret="-", transactions=m.transactions))
    mid = m.merchant_id

    def url(path: str, **params) -> str:
        return str(httpx.URL(f"{m.base}{path}", params={"merchantId": mid, **params}))

    pages = [url("/payment", limit=opts.page_size, offset=o) for o in range(0, m.transactions, opts.page_size)]
    lists = [] if with_ids else [url("/invoice", limit=opts.invoice_list_page_size, offset=o)
                                 for o in range(0, invoice_count, opts.invoice_list_page_size)]
    details = [url(f"/invoice/{gen.invoice_base + g}") for g in range(invoice_count)]
    return {"payment pages": pages, "invoice-list pages": lists, "invoice details": details}


# -- the sync ------------------------------------------------------------------------------------

@dataclass
class SyncRun:
    wall: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    calls: int = 0
    attempts: int = 0
    tx_calls: int = 0
    inv_calls: int = 0
    rows_written: int = 0
    tx_written: int = 0
    urls: list[str] = field(default_factory=list)
    cpu: float = 0.0
    sandbox_cpu: float | None = None


def warehouse_for(stack: ExitStack, pg: str | None, tmp: str, name: str) -> sa.Engine:
    if pg:
        url = stack.enter_context(scratch_pg(pg))
    else:
        url = f"sqlite:///{Path(tmp) / f'{name}.db'}"
    upgrade(url)
    engine = make_engine(url)
    stack.callback(engine.dispose)
    return engine


def connect(engine: sa.Engine, m: Merchant, tenant_id: str, page_concurrency: int):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Bench Clinic")
        set_connection(conn, tenant_id, "mx_merchant", f"{m.sandbox.url}/mx",
                       {"merchant_id": m.merchant_id, "consumer_key": m.key, "consumer_secret": m.secret},
                       {"page_concurrency": page_concurrency})
        return get_connection(conn, tenant_id, "mx_merchant")


def run_sync(engine: sa.Engine, connection, tenant_id: str, opts: MxSyncOptions, detail_concurrency: int,
             sandbox: SandboxProcess, progress: bool = True) -> SyncRun:
    client = client_for(connection, detail_concurrency=detail_concurrency)
    out = SyncRun()
    client.session.client.event_hooks = {"request": [lambda req: out.urls.append(str(req.url))], "response": []}
    cpu0, sb0 = own_cpu_seconds(), sandbox.cpu_seconds()
    t0 = time.perf_counter()
    try:
        t = time.perf_counter()
        tx = mx_sync.sync_transactions(engine, client, tenant_id, opts)
        out.steps["transactions"] = time.perf_counter() - t
        if progress:
            print(f"    transactions: {out.steps['transactions']:.1f} s, {tx.api_calls} calls", flush=True)
        t = time.perf_counter()
        inv = mx_sync.sync_invoices(engine, client, tenant_id, opts)
        out.steps["invoices"] = time.perf_counter() - t
        if progress:
            print(f"    invoices: {out.steps['invoices']:.1f} s, {inv.api_calls} calls", flush=True)
        t = time.perf_counter()
        mx_sync.sync_products(engine, tenant_id, RULES)
        out.steps["products"] = time.perf_counter() - t
    finally:
        client.close()
    out.wall = time.perf_counter() - t0
    out.cpu = own_cpu_seconds() - cpu0
    sb1 = sandbox.cpu_seconds()
    out.sandbox_cpu = None if sb0 is None or sb1 is None else sb1 - sb0
    out.calls, out.attempts = client.calls, client.session.stats.attempts
    out.tx_calls, out.inv_calls = tx.api_calls, inv.api_calls
    out.rows_written, out.tx_written = tx.rows_written + inv.rows_written, tx.rows_written
    return out


def counts(engine: sa.Engine, tenant_id: str) -> dict[str, int]:
    out = {}
    with engine.connect() as conn:
        for table in (transactions, invoices, invoice_lines):
            out[table.name] = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.tenant_id == tenant_id)).scalar_one()
        out["linked"] = conn.execute(sa.select(sa.func.count()).select_from(transactions).where(
            transactions.c.tenant_id == tenant_id, transactions.c.has_invoice.is_(True))).scalar_one()
        out["categorised"] = conn.execute(sa.select(sa.func.count()).select_from(transactions).where(
            transactions.c.tenant_id == tenant_id, transactions.c.product_category.is_not(None))).scalar_one()
    return out


# -- the ceiling: a bare concurrent httpx fetch of the same URLs ------------------------------------

def bare_fetch(m: Merchant, phases: list[tuple[list[str], int]], max_connections: int) -> tuple[float, int]:
    """Fetch each phase's URLs with its concurrency (phases one after another), reading each body."""
    total = 0
    with httpx.Client(auth=(m.key, m.secret), timeout=60,
                      limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)) as client:
        def get(url: str) -> int:
            r = client.get(url)
            r.raise_for_status()
            return len(r.content)

        t0 = time.perf_counter()
        for urls, concurrency in phases:
            if not urls:
                continue
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                total += sum(pool.map(get, urls))
        return time.perf_counter() - t0, total


# -- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None, *, defaults: dict | None = None) -> dict:
    d = {"transactions": 200_000, "latency_ms": 50.0, "ceiling": True, "title": "mx_end_to_end", **(defaults or {})}
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transactions", type=int, default=d["transactions"])
    ap.add_argument("--latency-ms", type=float, default=d["latency_ms"])
    ap.add_argument("--detail-concurrency", type=int, default=16)
    ap.add_argument("--page-concurrency", type=int, default=MxSyncOptions.page_concurrency)
    ap.add_argument("--page-size", type=int, default=MxSyncOptions.page_size)
    ap.add_argument("--with-invoice-ids", action="store_true", help="payments carry invoiceIds (no invoice list)")
    ap.add_argument("--runs", type=int, default=1, help="first syncs (each on a fresh warehouse); medians printed")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false", default=d["ceiling"])
    ap.add_argument("--prototype", choices=["analyze", "writer", "analyze+writer"],
                    help="run the syncs with a proposed change patched in (see profile_e2e.py)")
    ap.add_argument("--pg", nargs="?", const=os.environ.get("DATABASE_URL") or DEFAULT_PG, default=None,
                    help="use PostgreSQL (a scratch database on this server) instead of SQLite")
    args = ap.parse_args(argv)
    if args.pg and sa.engine.make_url(args.pg).get_backend_name() != "postgresql":
        args.pg = DEFAULT_PG
    opts = MxSyncOptions(page_size=args.page_size, page_concurrency=args.page_concurrency)
    n = args.transactions
    print(f"{d['title']} · {dt.datetime.now():%Y-%m-%d %H:%M} · {machine()} · load {load_avg()}")
    print(f"  {n:,} transactions, linked 0.6, 5 payments/invoice, invoiceIds on payments: {args.with_invoice_ids}, "
          f"latency {args.latency_ms:g} ms, page size {opts.page_size} × concurrency {opts.page_concurrency}, "
          f"detail concurrency {args.detail_concurrency}, warehouse {'PostgreSQL' if args.pg else 'SQLite'}"
          + (f", PROTOTYPE {args.prototype}" if args.prototype else ""), flush=True)
    result: dict = {}
    with ExitStack() as patches:
        if args.prototype:
            from profile_e2e import PROTOTYPES

            patches.enter_context(PROTOTYPES[args.prototype]())
        return _run(args, opts, n, d, result)


def _run(args, opts: MxSyncOptions, n: int, d: dict, result: dict) -> dict:
    with SandboxProcess() as sandbox, tempfile.TemporaryDirectory(prefix="storehouse-bench-") as tmp:
        m = create_merchant(sandbox, n, args.latency_ms, args.with_invoice_ids)
        s = m.refresh()
        invoice_count = s["invoices"]
        phases = expected_urls(m, opts, invoice_count, args.with_invoice_ids)
        expected = {k: len(v) for k, v in phases.items()}
        all_urls = [u for v in phases.values() for u in v]
        print(f"  sandbox: {s['transactions']:,} payments, {s['linked_payments']:,} linked, {invoice_count:,} invoices; "
              f"expected calls = {expected['payment pages']} pages + {expected['invoice-list pages']} invoice-list pages"
              f" + {expected['invoice details']:,} unique invoices = {len(all_urls):,}", flush=True)

        runs: list[SyncRun] = []
        ceilings: list[float] = []
        ceilings_phased: list[float] = []
        rss_after_first = None
        resync: SyncRun | None = None
        for k in range(args.runs):
            with ExitStack() as stack:
                engine = warehouse_for(stack, args.pg, tmp, f"run{k}")
                tenant_id = f"bench-{k}"
                connection = connect(engine, m, tenant_id, opts.page_concurrency)
                reset_calls(m)
                print(f"  run {k + 1}/{args.runs}: first sync … [load {load_avg()}]", flush=True)
                r = run_sync(engine, connection, tenant_id, opts, args.detail_concurrency, sandbox)
                runs.append(r)
                if rss_after_first is None:
                    rss_after_first = peak_rss_mib()
                served = m.refresh()["calls"]
                c = counts(engine, tenant_id)
                same = Counter(r.urls) == Counter(all_urls)
                print(f"    first sync: {r.wall:.1f} s ({', '.join(f'{k2} {v:.1f} s' for k2, v in r.steps.items())}); "
                      f"{n / r.wall:,.0f} transactions/s; API calls {r.calls:,} (transactions {r.tx_calls}, "
                      f"invoices {r.inv_calls:,}; HTTP attempts {r.attempts:,}); sandbox counted "
                      f"{sum(served.values()):,} {dict(served)}; expected {len(all_urls):,} → "
                      f"{'EQUAL' if r.calls == len(all_urls) else 'DIFFERENT'}; same URLs as the ceiling: {same}",
                      flush=True)
                print(f"    loaded {c}; CPU: ours {r.cpu:.1f} s, sandbox {r.sandbox_cpu or 0:.1f} s "
                      f"(of {r.wall:.1f} s wall)", flush=True)
                if k == 0:
                    reset_calls(m)
                    resync = run_sync(engine, connection, tenant_id, opts, args.detail_concurrency, sandbox,
                                      progress=False)
                    print(f"    no-change re-sync: {resync.wall:.2f} s, {resync.calls} API calls "
                          f"({', '.join(resync.urls) or 'none'}), rows written {resync.rows_written} "
                          f"({', '.join(f'{k2} {v:.2f} s' for k2, v in resync.steps.items())})", flush=True)
            if args.ceiling:
                t, size = bare_fetch(m, [(all_urls, args.detail_concurrency)], max(8, args.detail_concurrency * 2))
                ceilings.append(t)
                tp, _ = bare_fetch(m, [(phases["payment pages"], opts.page_concurrency),
                                       (phases["invoice-list pages"], 1),
                                       (phases["invoice details"], args.detail_concurrency)],
                                   max(8, args.detail_concurrency * 2))
                ceilings_phased.append(tp)
                print(f"    ceiling: bare httpx fetch of the same {len(all_urls):,} URLs ({size / 2**20:,.0f} MiB) "
                      f"at concurrency {args.detail_concurrency}: {t:.1f} s; with the sync's per-step concurrency "
                      f"({opts.page_concurrency} / 1 / {args.detail_concurrency}): {tp:.1f} s", flush=True)

        wall = median([r.wall for r in runs])
        print(f"RESULT ({'PostgreSQL' if args.pg else 'SQLite'}, median of {len(runs)}):")
        print(f"  first sync wall            {wall:.1f} s   ({' / '.join(f'{r.wall:.1f}' for r in runs)})")
        for step in runs[0].steps:
            print(f"    {step:<24} {median([r.steps[step] for r in runs]):.1f} s")
        print(f"  rows/s                     {n / wall:,.0f} transactions/s "
              f"({(n + invoice_count) / wall:,.0f} transactions+invoices/s)")
        print(f"  API calls                  {runs[0].calls:,} = expected {len(all_urls):,} "
              f"({expected['payment pages']} + {expected['invoice-list pages']} + {expected['invoice details']:,})"
              f" → {'met' if all(r.calls == len(all_urls) for r in runs) else 'MISSED'}")
        print(f"  peak RSS (ours)            {rss_after_first:,.0f} MiB after the first sync; "
              f"{peak_rss_mib():,.0f} MiB overall; sandbox process {proc_peak_rss_mib(sandbox.proc.pid) or 0:,.0f} MiB")
        if ceilings:
            c_all, c_ph = median(ceilings), median(ceilings_phased)
            print(f"  ceiling (bare httpx, all URLs at {args.detail_concurrency})  {c_all:.1f} s → ratio {c_all / wall:.2f}x"
                  f" (target >= 0.7x)")
            print(f"  ceiling (bare httpx, per-step {opts.page_concurrency}/1/{args.detail_concurrency})     "
                  f"{c_ph:.1f} s → ratio {c_ph / wall:.2f}x")
            result.update(ceiling=c_all, ceiling_phased=c_ph)
        if resync:
            print(f"  no-change re-sync          {resync.wall:.2f} s, {resync.calls} calls, "
                  f"{resync.rows_written} rows written (target < 5 s, <= 2 calls)")
        result.update(wall=wall, runs=runs, resync=resync, expected=len(all_urls), rss=peak_rss_mib())
    return result


if __name__ == "__main__":
    main()
