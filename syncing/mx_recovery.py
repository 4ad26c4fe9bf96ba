"""The seed's emergency mode ("recovery"): re-read up to 1,000 MX payments created in a date range,
and their invoices, and repair what differs in the warehouse.

MX lists payments newest first by offset, with no date filter, so the range's newest end is found
by bisecting the offsets with one-payment pages (about log2(recordCount) calls: 20 for a million
payments), then pages are read down from there until the range's oldest end or the limit. Rows go
through the stream's ``StreamWriter`` like an incremental sync's (the idempotent upsert writes only
rows that differ, records that read again leave the quarantine), but no checkpoint is written: a
recovery is not a sync of the stream, and the next incremental run goes on where the last one
stopped. Invoices referenced by the recovered payments are fetched again whether loaded or not,
and linked. It reports the same steps and counts as ``syncing.mx`` (see ``syncing.progress``).

Payments that arrive while a recovery reads shift the offsets: a page may repeat payments (the
upsert absorbs that) or, at the range's newest end, miss as many as arrived; run it again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from resources.http import ProviderError
from resources.mx_merchant import MxInvoice, MxMerchantClient
from syncing.mx import (
    INVOICE_STREAM, TX_STREAM, MxSyncOptions, _Meter, _step, describe, invoice_rows, link_invoices, map_numbers,
    parse_payments,
)
from syncing.progress import NO_PROGRESS, Progress
from syncing.result import SyncResult
from syncing.stream import StreamWriter
from warehouse.sync_progress import RECOVERY_LIMIT
from warehouse.syncs import Rejected
from warehouse.tables.mx import invoice_lines, invoices, transactions
from warehouse.upsert import upsert


def _created(raw: Any) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(raw.get("created")).replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def newest_offset(client: MxMerchantClient, date_to: dt.datetime) -> int:
    """The offset of the newest payment created before ``date_to`` (list newest first)."""
    lo, hi = 0, client.payments_page(0, 1).record_count
    while lo < hi:
        mid = (lo + hi) // 2
        page = client.payments_page(mid, 1)
        when = _created(page.records[0]) if page.records else None
        if page.records and (when is None or when >= date_to):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _known(engine: sa.Engine, tenant_id: str, rows: list[dict[str, Any]]) -> int:
    """How many of ``rows`` are loaded already (the rest are new payments)."""
    if not rows:
        return 0
    t = transactions.c
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(transactions).where(
            t.tenant_id == tenant_id, t.id.in_([r["id"] for r in rows]))).scalar_one()


def recover_transactions(engine: sa.Engine, client: MxMerchantClient, tenant_id: str, opts: MxSyncOptions,
                         run_id: str | None = None, progress: Progress | None = None, *,
                         date_from: dt.datetime, date_to: dt.datetime, limit: int = RECOVERY_LIMIT) -> SyncResult:
    """Steps 1–2 in recovery mode: the payments created in [date_from, date_to), at most ``limit``."""
    progress = progress or NO_PROGRESS
    date_from, date_to = _aware(date_from), _aware(date_to)
    stats, meter, calls_before = SyncResult(), _Meter(client, progress), client.calls
    writer = StreamWriter(engine, tenant_id, TX_STREAM, transactions, ("id",), stats, run_id)
    _step(progress, 1)
    progress.add(payments_expected=limit)
    offset, taken = newest_offset(client, date_to), 0
    meter.report()
    while taken < limit:
        page = client.payments_page(offset, min(opts.page_size, limit - taken))
        if not page.records:
            meter.report()
            break
        offset += len(page.records)
        inside = [r for r in page.records if (w := _created(r)) is None or date_from <= w < date_to]
        rows, rejected = parse_payments(tenant_id, inside)
        new = len(rows) - _known(engine, tenant_id, rows)
        written = writer.write(rows, rejected).written  # no cursor update: the incremental cursor stays
        taken += len(inside)
        stats.rows += len(inside)
        meter.report(payments_read=len(inside), quarantined=len(rejected), payments_new=new,
                     payments_updated=max(0, written - new))
        oldest = _created(page.records[-1])
        if oldest is not None and oldest < date_from:
            break
    _step(progress, 2)
    stats.api_calls = client.calls - calls_before
    stats.extra.update(mode="recovery", date_from=date_from.isoformat(), date_to=date_to.isoformat(), limit=limit)
    return stats


def recovered_refs(conn: sa.Connection, tenant_id: str, date_from: dt.datetime, date_to: dt.datetime,
                   limit: int = RECOVERY_LIMIT) -> tuple[list[int], list[str]]:
    """Invoice ids and (unloaded) numbers referenced by the newest ``limit`` payments in the range."""
    t, i = transactions.c, invoices.c
    recent = (sa.select(t.mx_invoice_id, t.invoice_number)
              .where(t.tenant_id == tenant_id, t.created_at >= _aware(date_from), t.created_at < _aware(date_to))
              .order_by(t.created_at.desc(), t.id.desc()).limit(limit).subquery())
    ids, numbers = set(), set()
    for invoice_id, number in conn.execute(sa.select(recent.c.mx_invoice_id, recent.c.invoice_number)):
        if invoice_id is not None:
            ids.add(invoice_id)
        elif number is not None:
            numbers.add(number)
    if numbers:
        known = dict(conn.execute(sa.select(i.invoice_number, i.id).where(
            i.tenant_id == tenant_id, i.invoice_number.in_(sorted(numbers)))).all())
        ids.update(known.values())
        numbers -= set(known)
    return sorted(ids), sorted(numbers)


def recover_invoices(engine: sa.Engine, client: MxMerchantClient, tenant_id: str, opts: MxSyncOptions,
                     run_id: str | None = None, progress: Progress | None = None, *,
                     date_from: dt.datetime, date_to: dt.datetime, limit: int = RECOVERY_LIMIT) -> SyncResult:
    """Steps 3–6 and the link of step 8 in recovery mode: every invoice the range's payments name,
    fetched again and upserted (only what differs is written)."""
    progress = progress or NO_PROGRESS
    stats, meter, calls_before = SyncResult(), _Meter(client, progress), client.calls
    writer = StreamWriter(engine, tenant_id, INVOICE_STREAM, invoices, ("id",), stats, run_id)
    _step(progress, 3)
    with engine.connect() as conn:
        ids, numbers = recovered_refs(conn, tenant_id, date_from, date_to, limit)
    _step(progress, 4)
    mapped, _ = map_numbers(client, numbers, opts.invoice_list_page_size)
    wanted = sorted(set(ids) | set(mapped.values()))
    rejected = [Rejected({"invoice_number": n}, "invoice number not found in the invoice list", f"number:{n}")
                for n in numbers if n not in mapped]
    meter.report(invoices_wanted=len(wanted))
    _step(progress, 5)
    heads, lines = [], []
    for invoice_id, body in client.invoices(wanted):
        stats.rows += 1
        if isinstance(body, ProviderError):
            if not body.retryable:
                rejected.append(Rejected({"invoice_id": invoice_id}, f"detail call failed: {body}", f"id:{invoice_id}"))
            meter.report(errors=1)
            continue
        try:
            head, inv_lines = invoice_rows(tenant_id, MxInvoice.model_validate(body))
        except ValidationError as exc:
            rejected.append(Rejected(body, describe(exc), f"id:{invoice_id}"))
            meter.report(invoices_fetched=1)
            continue
        meter.report(invoices_fetched=1)
        heads.append(head)
        lines.extend(inv_lines)
    _step(progress, 6)
    with engine.begin() as conn:
        for at in range(0, len(heads), opts.invoice_batch):
            writer.write_in(conn, heads[at:at + opts.invoice_batch])
        if lines:
            upsert(conn, invoice_lines, lines)
        writer.write_in(conn, [], rejected)
        stats.extra["transactions_linked"] = link_invoices(conn, tenant_id)
    meter.report(quarantined=len(rejected))
    stats.api_calls = client.calls - calls_before
    stats.extra.update(mode="recovery", invoices_wanted=len(wanted), numbers_mapped=len(mapped))
    return stats
