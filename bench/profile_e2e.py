"""Where the end-to-end sync's wall time goes (instrumented by wrapping, nothing outside bench/ changes).

Runs one first sync like ``mx_end_to_end.py`` (sandbox in its own process, added latency, detail
concurrency 16) with timers around the pieces of ``syncing.mx``: each ``upsert`` call (by
table, commit not included), ``quarantine_records``, ``save_cursor``, ``parse_payments``,
``unresolved_refs``, ``map_numbers`` (the invoice list) and ``link_invoices``; the step times
(transactions / invoices / products) come from the driver. What is left of the invoices step is
the detail calls themselves.

``--prototype NAME`` (repeatable) also runs the same sync with a proposed change applied by
monkeypatching (``analyze``, ``writer``, ``analyze+writer``: see ``PROTOTYPES`` below), each on a
fresh warehouse, to measure its effect.

    python bench/profile_e2e.py --pg --transactions 50000
    python bench/profile_e2e.py --pg --transactions 200000 --prototype analyze --prototype analyze+writer
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_PG, SandboxProcess, load_avg, machine  # noqa: E402
from mx_end_to_end import connect, create_merchant, reset_calls, run_sync, warehouse_for  # noqa: E402

import sqlalchemy as sa  # noqa: E402

import syncing.mx as S  # noqa
import syncing.stream as W  # noqa: E402
from syncing.mx import MxSyncOptions  # noqa: E402

TIMES: dict[str, list[float]] = {}


def _acc(name: str, dt_: float) -> None:
    t = TIMES.setdefault(name, [0.0, 0])
    t[0] += dt_
    t[1] += 1


def wrap(module, attr: str, label=None):
    real = getattr(module, attr)

    def timed(*a, **k):
        name = label(*a, **k) if callable(label) else (label or attr)
        t0 = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            _acc(name, time.perf_counter() - t0)

    setattr(module, attr, timed)
    return real


@contextmanager
def instrumented():
    saved = {}
    label = lambda conn, table, rows, **k: f"upsert {table.name}"  # noqa: E731
    saved[S, "upsert"] = wrap(S, "upsert", label)
    saved[W, "upsert"] = wrap(W, "upsert", label)  # the transactions' pages go through the stream writer
    for module, attr in ((W, "quarantine_records"), (W, "save_cursor"), (S, "quarantine_records"),
                         (S, "map_numbers"), (S, "link_invoices"), (S, "unresolved_refs"), (S, "parse_payments")):
        saved[module, attr] = wrap(module, attr)
    try:
        yield
    finally:
        for (module, attr), real in saved.items():
            setattr(module, attr, real)


def report(wall: float) -> None:
    for name, (total, count) in sorted(TIMES.items(), key=lambda kv: -kv[1][0]):
        print(f"    {name:<28} {total:7.2f} s in {count:>6,} calls ({total / max(count, 1) * 1000:7.2f} ms each)"
              f"  {total / wall:5.1%} of wall")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transactions", type=int, default=50_000)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--detail-concurrency", type=int, default=16)
    ap.add_argument("--pg", nargs="?", const=os.environ.get("DATABASE_URL") or DEFAULT_PG, default=None)
    ap.add_argument("--prototype", action="append", choices=["analyze", "writer", "analyze+writer"], default=[],
                    help="also run with these proposed changes patched in (repeatable)")
    args = ap.parse_args()
    opts = MxSyncOptions()
    print(f"profile_e2e · {dt.datetime.now():%Y-%m-%d %H:%M} · {machine()} · load {load_avg()}")
    print(f"  {args.transactions:,} transactions, latency {args.latency_ms:g} ms, detail concurrency "
          f"{args.detail_concurrency}, {'PostgreSQL' if args.pg else 'SQLite'}", flush=True)
    variants = [("current", None)] + [(name, PROTOTYPES[name]) for name in args.prototype]
    with SandboxProcess() as sandbox, tempfile.TemporaryDirectory(prefix="storehouse-bench-") as tmp:
        m = create_merchant(sandbox, args.transactions, args.latency_ms)
        for label, patch in variants:
            TIMES.clear()
            with ExitStack() as stack:
                engine = warehouse_for(stack, args.pg, tmp, label.replace("+", "-"))
                tenant_id = f"profile-{label.replace('+', '-')}"
                connection = connect(engine, m, tenant_id, opts.page_concurrency)
                reset_calls(m)
                if patch:
                    stack.enter_context(patch())
                with instrumented():
                    r = run_sync(engine, connection, tenant_id, opts, args.detail_concurrency, sandbox, progress=False)
                with engine.connect() as conn:
                    n_inv = conn.execute(sa.text("SELECT count(*) FROM invoices WHERE tenant_id = :t"),
                                         {"t": tenant_id}).scalar_one()
            print(f"  {label}: {r.wall:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in r.steps.items())}), "
                  f"{r.calls:,} calls, {n_inv:,} invoices; CPU ours {r.cpu:.1f} s, sandbox {r.sandbox_cpu or 0:.1f} s",
                  flush=True)
            report(r.wall)


# -- prototypes of proposed changes ------------------------------------------------------------

@contextmanager
def analyze_before_link():
    """Proposed: on PostgreSQL, keep planner statistics current while a sync loads: after an upsert,
    ``ANALYZE`` the table when it was never analysed or the rows written since our last ANALYZE
    exceed its ``reltuples`` (i.e. it has doubled) — autovacuum does the same, but up to a minute
    or more later. Without statistics, plans made while a table was empty stay cached: the
    foreign-key check of every ``invoice_lines`` row (RI trigger on ``invoices``) and the by-id
    UPDATE of ``link_invoices`` then scan whole tables per row (quadratic). At most ~log2(n)
    ANALYZEs per table per load (each samples 30,000 rows: ~0.1 s)."""
    real = S.upsert
    since: dict[str, int] = {}

    def upsert(conn, table, rows, **kw):
        result = real(conn, table, rows, **kw)
        if conn.dialect.name == "postgresql" and result.written:
            since[table.name] = since.get(table.name, 0) + result.written
            reltuples = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = %(t)s::regclass", {"t": table.name}).scalar_one()
            if reltuples < 0 or since[table.name] > max(reltuples, 500):
                conn.exec_driver_sql(f"ANALYZE {table.name}")
                since[table.name] = 0
        return result

    S.upsert = upsert
    try:
        yield
    finally:
        S.upsert = real


@contextmanager
def background_writer():
    """Proposed: keep detail calls flowing while invoices are written — the invoice writes run
    on a single background writer thread (one batch in flight), so the main loop keeps consuming
    the detail generator (and so keeps ``detail_concurrency`` calls in flight) during each flush."""
    from concurrent.futures import ThreadPoolExecutor

    real_sync_invoices = S.sync_invoices

    def sync_invoices(engine, client, tenant_id, opts, run_id=None):
        stats = S.SyncResult()
        calls_before = client.calls
        with engine.connect() as conn:
            ids, numbers = S.unresolved_refs(conn, tenant_id)
        mapped, _ = S.map_numbers(client, numbers, opts.invoice_list_page_size)
        rejected = [S.Rejected({"invoice_number": n}, "invoice number not found in the invoice list", f"number:{n}")
                    for n in numbers if n not in mapped]
        wanted = sorted(set(ids) | set(mapped.values()))
        heads, lines = [], []
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mx-writer")
        pending = []

        def write(h, l, rej):
            with engine.begin() as conn:
                written = S.upsert(conn, S.invoices, h).written if h else 0
                if h:
                    S.upsert(conn, S.invoice_lines, l)
                q = S.quarantine_records(conn, tenant_id, S.INVOICE_STREAM, rej, run_id)
            return written, q

        def drain():
            while pending:  # at most one batch in flight: memory stays flat
                w, q = pending.pop(0).result()
                stats.rows_written += w
                stats.quarantined += q

        def flush():
            nonlocal heads, lines, rejected
            drain()
            pending.append(writer.submit(write, heads, lines, rejected))
            heads, lines, rejected = [], [], []

        try:
            for invoice_id, body in client.invoices(wanted):
                stats.rows += 1
                if isinstance(body, S.ProviderError):
                    rejected.append(S.Rejected({"invoice_id": invoice_id}, f"detail call failed: {body}", f"id:{invoice_id}"))
                    continue
                try:
                    head, inv_lines = S.invoice_rows(tenant_id, S.MxInvoice.model_validate(body))
                except S.ValidationError as exc:
                    rejected.append(S.Rejected(body, S.describe(exc), f"id:{invoice_id}"))
                    continue
                heads.append(head)
                lines.extend(inv_lines)
                if len(heads) >= opts.invoice_batch:
                    flush()
            flush()
            drain()
        finally:
            writer.shutdown(wait=True)
        with engine.begin() as conn:
            stats.extra["transactions_linked"] = S.link_invoices(conn, tenant_id)
        stats.api_calls = client.calls - calls_before
        stats.extra.update(invoices_wanted=len(wanted), numbers_mapped=len(mapped))
        return stats

    S.sync_invoices = sync_invoices
    try:
        yield
    finally:
        S.sync_invoices = real_sync_invoices


@contextmanager
def analyze_and_writer():
    with analyze_before_link(), background_writer():
        yield


PROTOTYPES = {"analyze": analyze_before_link, "writer": background_writer, "analyze+writer": analyze_and_writer}


if __name__ == "__main__":
    main()
