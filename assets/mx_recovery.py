"""The seed's emergency mode ("recovery"): re-read up to 1,000 MX payments created in a date range,
and their invoices, and repair what differs in the warehouse.

MX lists payments newest first by offset, with no date filter, so the range's newest end is found
by bisecting the offsets with one-payment pages (about log2(recordCount) calls: 20 for a million
payments), then pages are read down from there until the range's oldest end or the limit. The
idempotent upsert writes only rows that differ (``payments_written``), so a recovery over data
that is right changes nothing. Invoices referenced by the recovered payments are fetched again
whether loaded or not, and linked; the incremental cursor is left alone (a recovery is not a
sync of the stream: the next incremental run goes on where the last one stopped).

Payments that arrive while a recovery reads shift the offsets: a page may repeat payments (the
upsert absorbs that) or, at the range's newest end, miss as many as arrived; run it again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from assets.mx_sync import (
    INVOICE_STREAM, TX_STREAM, MxSyncOptions, describe, invoice_rows, link_invoices, map_numbers, parse_payments,
)
from resources.http import ProviderError
from resources.mx_merchant import MxInvoice, MxMerchantClient
from warehouse.sync_progress import NO_PROGRESS, RECOVERY_LIMIT, STEPS, Progress
from warehouse.syncs import Rejected, SyncStats, quarantine_records
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


def newest_offset(client: MxMerchantClient, date_to: dt.datetime, progress: Progress) -> int:
    """The offset of the newest payment created before ``date_to`` (list newest first)."""
    first = client.payments_page(0, 1)
    progress.add(api_calls=1)
    lo, hi = 0, first.record_count
    while lo < hi:
        mid = (lo + hi) // 2
        page = client.payments_page(mid, 1)
        progress.add(api_calls=1)
        when = _created(page.records[0]) if page.records else None
        if page.records and (when is None or when >= date_to):
            lo = mid + 1
        else:
            hi = mid
    return lo


def recover_transactions(engine: sa.Engine, client: MxMerchantClient, tenant_id: str, opts: MxSyncOptions,
                         run_id: str | None = None, progress: Progress = NO_PROGRESS, *,
                         date_from: dt.datetime, date_to: dt.datetime, limit: int = RECOVERY_LIMIT) -> SyncStats:
    """Steps 1–2 in recovery mode: the payments created in [date_from, date_to), at most ``limit``."""
    date_from, date_to = _aware(date_from), _aware(date_to)
    stats = SyncStats()
    calls_before = client.calls
    progress.step(1, STEPS[1])
    progress.add(payments_expected=limit)
    offset, taken = newest_offset(client, date_to, progress), 0
    while taken < limit:
        page = client.payments_page(offset, min(opts.page_size, limit - taken))
        progress.add(api_calls=1)
        if not page.records:
            break
        offset += len(page.records)
        inside = [r for r in page.records if (w := _created(r)) is None or date_from <= w < date_to]
        rows, rejected = parse_payments(tenant_id, inside)
        with engine.begin() as conn:
            written = upsert(conn, transactions, rows).written if rows else 0
            stats.quarantined += quarantine_records(conn, tenant_id, TX_STREAM, rejected, run_id)
        taken += len(inside)
        stats.rows += len(inside)
        stats.rows_written += written
        progress.add(payments_read=len(inside), payments_written=written, quarantined=len(rejected))
        oldest = _created(page.records[-1])
        if oldest is not None and oldest < date_from:
            break
    progress.step(2, STEPS[2])
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
                     run_id: str | None = None, progress: Progress = NO_PROGRESS, *,
                     date_from: dt.datetime, date_to: dt.datetime, limit: int = RECOVERY_LIMIT) -> SyncStats:
    """Steps 3–6 and the link of step 8 in recovery mode: every invoice the range's payments name,
    fetched again and upserted (only what differs is written)."""
    stats = SyncStats()
    calls_before = client.calls
    progress.step(3, STEPS[3])
    with engine.connect() as conn:
        ids, numbers = recovered_refs(conn, tenant_id, date_from, date_to, limit)
    progress.step(4, STEPS[4])
    mapped, _ = map_numbers(client, numbers, opts.invoice_list_page_size)
    wanted = sorted(set(ids) | set(mapped.values()))
    rejected = [Rejected({"invoice_number": n}, "invoice number not found in the invoice list", f"number:{n}")
                for n in numbers if n not in mapped]
    progress.add(api_calls=client.calls - calls_before, invoices_wanted=len(wanted))
    progress.step(5, STEPS[5])
    heads, lines = [], []
    for invoice_id, body in client.invoices(wanted):
        stats.rows += 1
        progress.add(api_calls=1, invoices_fetched=1, errors=int(isinstance(body, ProviderError)))
        if isinstance(body, ProviderError):
            if not body.retryable:
                rejected.append(Rejected({"invoice_id": invoice_id}, f"detail call failed: {body}", f"id:{invoice_id}"))
            continue
        try:
            head, inv_lines = invoice_rows(tenant_id, MxInvoice.model_validate(body))
        except ValidationError as exc:
            rejected.append(Rejected(body, describe(exc), f"id:{invoice_id}"))
            continue
        heads.append(head)
        lines.extend(inv_lines)
    progress.step(6, STEPS[6])
    with engine.begin() as conn:
        for at in range(0, len(heads), opts.invoice_batch):
            stats.rows_written += upsert(conn, invoices, heads[at:at + opts.invoice_batch]).written
        if lines:
            upsert(conn, invoice_lines, lines)
        stats.quarantined += quarantine_records(conn, tenant_id, INVOICE_STREAM, rejected, run_id)
        stats.extra["transactions_linked"] = link_invoices(conn, tenant_id)
    progress.add(quarantined=len(rejected), transactions_linked=stats.extra["transactions_linked"])
    stats.api_calls = client.calls - calls_before
    stats.extra.update(mode="recovery", invoices_wanted=len(wanted), numbers_mapped=len(mapped))
    return stats
