"""One POS stream (products, inventory, customers, SAQ branches) of one tenant into the warehouse.

``sync_stream`` reads the client's generator, normalises each record, upserts in batches (the
idempotent ``warehouse.upsert``), quarantines what cannot be read, marks deletions and saves
the cursor last, so a run that dies half-way is simply re-read next time.

Incremental or full: incremental (records changed since the cursor) when the client supports
it for the stream and the last full read is younger than ``full_refresh_hours``; full
otherwise. Deletions are detected either way: incremental feeds that report them (Blaze
``deleted``, COVA ``IsDeleted``, deactivations) set ``deleted_at`` directly; a full read marks
every live row it did not see. A full read that would delete more than
``max_delete_fraction`` of the live rows is not trusted (an empty page is likelier than an
emptied store): the deletions are withheld and the metadata says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from resources.pos.base import PosClient
from syncing.deletions import confirmed_gone, gone_rows, mark_gone
from syncing.pos_normalise import NormaliseOptions, customer_row, inventory_row, product_row
from syncing.progress import NO_PROGRESS, Progress
from syncing.result import SyncResult
from syncing.stream import Stream, StreamWriter
from warehouse.syncs import Rejected
from warehouse.tables.pos import customers, inventory, products, saq_branches
from warehouse.types import now_utc, utc_now

FULL, INCREMENTAL = "full", "incremental"


STREAMS = {s.kind: s for s in (
    Stream("products", products, ("product_id",), {"status": "deleted"}),
    Stream("inventory", inventory, ("location_id", "product_id", "lot_id"),
           {"quantity": 0, "available": False, "low_stock": False}),
    Stream("customers", customers, ("customer_id",), {"status": "deleted"}),
    Stream("saq_branches", saq_branches, ("branch_number",), {}),
)}


def stream_name(kind: str, system: str) -> str:
    return f"pos_{kind}:{system}"


@dataclass
class PosSyncOptions:
    full_refresh_hours: float = 24.0
    batch_size: int = 2000
    max_delete_fraction: float = 0.5

    @classmethod
    def from_connection(cls, options: dict[str, Any]) -> "PosSyncOptions":
        return cls(**{k: type(getattr(cls, k))(v) for k, v in options.items() if k in cls.__dataclass_fields__})


def plan(cursor: dict[str, Any] | None, incremental_ok: bool, opts: PosSyncOptions, now: dt.datetime) -> tuple[str, dt.datetime | None]:
    """(mode, since) for this run."""
    if not incremental_ok or not cursor or not cursor.get("since") or not cursor.get("last_full"):
        return FULL, None
    if now - dt.datetime.fromisoformat(cursor["last_full"]) >= dt.timedelta(hours=opts.full_refresh_hours):
        return FULL, None
    return INCREMENTAL, dt.datetime.fromisoformat(cursor["since"])


def _records(client: PosClient, kind: str, since: dt.datetime | None) -> Iterator[Any]:
    if kind == "saq_branches":
        return client.iter_saq_branches()
    return getattr(client, f"iter_{kind}")(since)


class _StockRefs:
    """Shopify-style stock ids -> product ids, from the products already loaded (read once)."""

    def __init__(self, engine: sa.Engine, tenant_id: str, source: str) -> None:
        self.engine, self.tenant_id, self.source, self._map = engine, tenant_id, source, None

    def __call__(self, ref: str) -> str:
        if self._map is None:
            p = products.c
            with self.engine.connect() as conn:
                self._map = dict(conn.execute(sa.select(p.stock_ref, p.product_id).where(
                    p.tenant_id == self.tenant_id, p.source == self.source, p.stock_ref.is_not(None))).all())
        return self._map.get(ref, f"stock:{ref}")  # unresolved stays visible to the orphan check


def _row_builder(engine: sa.Engine, tenant_id: str, kind: str, source: str, norm: NormaliseOptions) -> Callable[[Any], dict]:
    if kind == "products":
        return lambda r: product_row(tenant_id, r, norm)
    if kind == "customers":
        return lambda r: customer_row(tenant_id, r)
    if kind == "inventory":
        refs = _StockRefs(engine, tenant_id, source)
        return lambda r: inventory_row(tenant_id, r, norm, refs(r.product_id) if r.by_stock_ref else None)
    return lambda b: {"tenant_id": tenant_id, "source": source, "branch_number": b.number, "name": b.name,
                      "city": b.city, "address": b.address, "phone": b.phone, "deleted_at": None}


def sync_stream(engine: sa.Engine, client: PosClient, tenant_id: str, kind: str, options: dict[str, Any] | None = None,
                run_id: str | None = None, progress: Progress = NO_PROGRESS) -> SyncResult:
    """Sync one stream of one tenant's POS account; returns what it did (mode, rows, calls, deletions)."""
    options = options or {}
    stream, source, now = STREAMS[kind], client.system, now_utc()
    opts, norm = PosSyncOptions.from_connection(options), NormaliseOptions.from_connection(options)
    stats, calls_before = SyncResult(), client.calls
    writer = StreamWriter(engine, tenant_id, stream_name(kind, source), stream.table, stream.key, stats, run_id)
    mode, since = plan(writer.cursor, kind in client.supports_incremental, opts, now)
    build = _row_builder(engine, tenant_id, kind, source, norm)
    seen: set[tuple] = set()
    unread: set[str] | None = set()  # ids of quarantined records; None once one had no usable id
    touched: set[str] = set()
    newest = since
    rows, rejected = [], []

    def flush() -> None:
        nonlocal unread
        writer.write(rows, rejected)
        progress.add(rows=len(rows), quarantined=len(rejected))
        for r in rejected:  # a one-column key is the record's own id; a wider one cannot be told from it
            if unread is not None and r.source_id and len(stream.key) == 1:
                unread.add(str(r.source_id))
            else:
                unread = None
        rows.clear()
        rejected.clear()

    for record in _records(client, kind, since):
        stats.rows += 1
        if isinstance(record, Rejected):
            rejected.append(record)
        else:
            try:
                row = build(record)
            except (ValueError, ArithmeticError) as exc:
                rejected.append(Rejected(record.model_dump(mode="json"), f"normalise: {exc}"[:300],
                                         getattr(record, "source_id", None)))
            else:
                rows.append(row)
                seen.add(tuple(row[k] for k in stream.key))
                touched.add(row.get("product_id"))
                stamp = getattr(record, "updated_at", None)
                newest = max(newest, stamp) if newest and stamp else (stamp or newest)
        if len(rows) + len(rejected) >= opts.batch_size:
            flush()
    flush()
    scope = None if mode == FULL else (touched if kind == "inventory" else set())
    t = stream.table
    live = [t.c.tenant_id == tenant_id, t.c.source == source, t.c.deleted_at.is_(None)]
    gone, withheld = [], 0
    if scope != set():
        with engine.connect() as conn:
            gone, withheld = gone_rows(conn, stream, live, seen, scope, opts.max_delete_fraction, unread)
    if gone and mode == FULL:  # outside any transaction: this may call the POS
        gone = confirmed_gone(client.still_listed, stream, gone, touched, stats)
    with engine.begin() as conn:
        marked = mark_gone(conn, stream, live, gone, {"deleted_at": now, "updated_at": utc_now()})
        writer.checkpoint(conn, {"since": newest.isoformat() if newest else writer.cursor.get("since"),
                                 "last_full": now.isoformat() if mode == FULL else writer.cursor.get("last_full"),
                                 "mode": mode})
    stats.api_calls = client.calls - calls_before
    stats.extra.update(client.call_stats())  # retries and this client's retry budget (per asset step)
    stats.extra.update(mode=mode, marked_deleted=marked, deletions_withheld=withheld)
    return stats
