"""What live progress costs a manual sync: the MX first sync (transactions → invoices → products)
of one tenant with no progress, then with the ``sync_progress`` writer, alternating, each on its
own fresh warehouse, same sandbox merchant.

Prints per mode the median wall time, the progress row's writes (step changes plus counts, at
most every 0.5 s) and the ratio. The sandbox runs in its own process (``bench/_common.py``).

    python bench/manual_sync_progress.py                      # SQLite, 20,000 transactions, 3 runs each
    python bench/manual_sync_progress.py --pg --transactions 50000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_PG, SandboxProcess, load_avg, machine, median  # noqa: E402
from mx_end_to_end import connect, create_merchant, warehouse_for  # noqa: E402

from resources.dagster_resources import MxMerchantResource  # noqa: E402
from syncing.mx import MxSyncOptions, sync_invoices, sync_products, sync_transactions  # noqa: E402
from syncing.progress_writer import ProgressWriter  # noqa: E402
from warehouse import sync_progress  # noqa: E402


class CountingWriter(ProgressWriter):
    writes = 0

    def flush(self) -> None:
        CountingWriter.writes += 1
        super().flush()


def one(engine, merchant, tenant: str, with_progress: bool) -> tuple[float, int, dict]:
    connection = connect(engine, merchant, tenant, page_concurrency=4)
    opts = MxSyncOptions(page_size=1000, page_concurrency=4)
    progress, request_id = None, None  # none: the sync reports nowhere
    if with_progress:
        request_id = sync_progress.request_manual_sync(engine, tenant, "mx_merchant_sync", None, run_here=True)
        progress = CountingWriter(engine, request_id, "bench")
    CountingWriter.writes = 0
    client = MxMerchantResource().client_for(connection)
    started = time.perf_counter()
    try:
        sync_transactions(engine, client, tenant, opts, None, progress)
        sync_invoices(engine, client, tenant, opts, None, progress)
        sync_products(engine, tenant, {}, progress)
        if progress is not None:
            progress.succeed()
    finally:
        client.close()
    wall = time.perf_counter() - started
    stats = {}
    if request_id:
        with engine.connect() as conn:
            stats = sync_progress.get(conn, tenant, request_id)["stats"]
    return wall, CountingWriter.writes, stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", action="store_true")
    args = parser.parse_args()
    print(machine(), "· load", load_avg())
    walls: dict[bool, list[float]] = {False: [], True: []}
    with SandboxProcess() as sandbox, tempfile.TemporaryDirectory(prefix="storehouse-bench-") as tmp:
        merchant = create_merchant(sandbox, args.transactions, args.latency_ms)
        for run in range(args.runs):
            for with_progress in (False, True):
                with ExitStack() as stack:
                    engine = warehouse_for(stack, DEFAULT_PG if args.pg else None, tmp, f"w{run}{int(with_progress)}")
                    wall, writes, stats = one(engine, merchant, f"bench-{run}-{int(with_progress)}", with_progress)
                walls[with_progress].append(wall)
                extra = (f" · {writes} progress writes · read {stats.get('payments_read')}, "
                         f"invoices {stats.get('invoices_fetched')}, calls {stats.get('api_calls')}") if with_progress else ""
                print(f"run {run + 1} {'with progress   ' if with_progress else 'without progress'}: {wall:6.2f} s{extra}")
    plain, watched = median(walls[False]), median(walls[True])
    print(f"median: without {plain:.2f} s · with {watched:.2f} s · ratio {watched / plain:.3f} "
          f"({args.transactions:,} transactions, {'PostgreSQL' if args.pg else 'SQLite'})")


if __name__ == "__main__":
    main()
