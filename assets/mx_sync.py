"""The MX Merchant sync of seed 003, as three steps the assets call.

1. ``sync_transactions`` (steps 1–2): page payments newest first into ``transactions``.
   Incremental: only pages holding ids above the high-water mark are read, so a re-sync with
   nothing new costs one call. A first sync checkpoints after every page; a killed run resumes
   where it stopped (offset shifted by what arrived meanwhile, one page of overlap so nothing
   slips through), and the idempotent upsert means the overlap creates no duplicates.
2. ``sync_invoices`` (steps 3–6, and the link of step 8): fetch each invoice referenced by a
   transaction and not loaded yet, exactly once: directly by ``invoiceIds`` when payments carry
   them, else through the invoice list (paged only until every wanted number is mapped).
3. ``sync_products`` (steps 7–8): extract products from invoice lines, categorise them per
   tenant ('Uncategorized' when no rule matches; manual assignments are kept), and set each
   linked transaction's primary product (highest-value line) and category.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from resources.http import ProviderError
from resources.mx_merchant import MxInvoice, MxMerchantClient, MxPayment, Page
from warehouse.syncs import (
    Rejected, SyncStats, load_cursor, quarantine_records, quarantined_ids, release_quarantined, save_cursor,
)
from warehouse.tables.core import quarantine
from warehouse.tables.mx import invoice_lines, invoices, product_categories, transactions
from warehouse.types import utc_now
from warehouse.upsert import upsert

TX_STREAM, INVOICE_STREAM, PRODUCT_STREAM = "mx_transactions", "mx_invoices", "mx_products"
QUARANTINE_RETRIES = 20  # quarantined payments asked for again per run
UNCATEGORIZED = "Uncategorized"


@dataclass
class MxSyncOptions:
    page_size: int = 1000
    page_concurrency: int = 4
    invoice_list_page_size: int = 500
    lookback_pages: int = 0
    invoice_batch: int = 500

    @classmethod
    def from_connection(cls, options: dict[str, Any]) -> "MxSyncOptions":
        known = {k: int(v) for k, v in options.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def describe(reason: ValidationError) -> str:
    first = reason.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    return f"{where}: {first['msg']}"


# -- step 1–2: transactions ---------------------------------------------------------------

def transaction_row(tenant_id: str, p: MxPayment) -> dict[str, Any]:
    card = p.card_account
    return {
        "tenant_id": tenant_id, "id": p.id, "merchant_id": p.merchant_id, "amount": p.amount,
        "status": p.status, "type": p.type, "source": p.source, "tender_type": p.tender_type,
        "auth_code": p.auth_code, "card_type": card.card_type if card else None,
        "card_last4": card.last4 if card else None, "customer_name": p.customer_name,
        "invoice_number": p.invoice, "mx_invoice_id": p.invoice_ids[0] if p.invoice_ids else None,
        "created_at": p.created,
    }


def parse_payments(tenant_id: str, records: list[dict]) -> tuple[list[dict], list[Rejected]]:
    rows, rejected = [], []
    for raw in records:
        try:
            rows.append(transaction_row(tenant_id, MxPayment.model_validate(raw)))
        except ValidationError as exc:
            rejected.append(Rejected(raw, describe(exc), raw.get("id") if isinstance(raw, dict) else None))
    return rows, rejected


class _TransactionSync:
    def __init__(self, engine: sa.Engine, client: MxMerchantClient, tenant_id: str, opts: MxSyncOptions, run_id: str | None):
        self.engine, self.client, self.tenant_id, self.opts, self.run_id = engine, client, tenant_id, opts, run_id
        self.stats = SyncStats()
        with engine.connect() as conn:
            self.cursor: dict[str, Any] = load_cursor(conn, tenant_id, TX_STREAM) or {}
            self.in_quarantine = quarantined_ids(conn, tenant_id, TX_STREAM)

    def store(self, page: Page, cursor_update: dict[str, Any] | None = None) -> None:
        """Upsert one page (and quarantine its bad records) and checkpoint, in one transaction."""
        rows, rejected = parse_payments(self.tenant_id, page.records)
        with self.engine.begin() as conn:
            result = upsert(conn, transactions, rows)
            self._release(conn, rows)
            self.stats.quarantined += quarantine_records(conn, self.tenant_id, TX_STREAM, rejected, self.run_id)
            if cursor_update:
                self.cursor.update(cursor_update)
                save_cursor(conn, self.tenant_id, TX_STREAM, self.cursor)
        self.stats.rows += len(page.records)
        self.stats.rows_written += result.written

    def _release(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        loaded = {str(r["id"]) for r in rows} & self.in_quarantine if self.in_quarantine else set()
        if loaded:
            self.stats.extra["released_from_quarantine"] = self.stats.extra.get("released_from_quarantine", 0) + \
                release_quarantined(conn, self.tenant_id, TX_STREAM, loaded)
            self.in_quarantine -= loaded

    def retry_quarantined(self) -> None:
        """Ask again for payments quarantined earlier (a few per run): the newest-first walk never
        passes them again, and MX may have put them right since."""
        for source_id in sorted((i for i in self.in_quarantine if i.isdigit()), reverse=True)[:QUARANTINE_RETRIES]:
            try:
                body = self.client.payment(int(source_id))
            except ProviderError:
                continue  # still unreadable, or gone: it stays quarantined
            rows, _ = parse_payments(self.tenant_id, [body])
            if rows:
                with self.engine.begin() as conn:
                    self.stats.rows_written += upsert(conn, transactions, rows).written
                    self._release(conn, rows)

    def pages_from(self, first: Page, offset: int, total: int) -> Iterator[Page]:
        """Pages from ``offset`` to the end, fetched ``page_concurrency`` ahead, yielded in order."""
        size = self.opts.page_size
        offsets = list(range(offset, total, size))
        if not offsets:
            return
        with ThreadPoolExecutor(max_workers=max(1, self.opts.page_concurrency), thread_name_prefix="mx-pages") as pool:
            window = max(1, self.opts.page_concurrency)
            futures = {}
            for k, o in enumerate(offsets):
                for ahead in offsets[k:k + window]:
                    if ahead not in futures:
                        futures[ahead] = first if ahead == first.offset else pool.submit(self.client.payments_page, ahead, size)
                page = futures.pop(o)
                yield page if isinstance(page, Page) else page.result()

    def run(self) -> SyncStats:
        size = self.opts.page_size
        first = self.client.payments_page(0, size)
        total = first.record_count
        high = self.cursor.get("high")
        if high is not None:
            self.walk_new(first, high)
        if not self.cursor.get("complete"):
            self.backfill(first, total)
        self.retry_quarantined()
        with self.engine.begin() as conn:
            self.cursor["record_count"] = total
            save_cursor(conn, self.tenant_id, TX_STREAM, self.cursor)
        self.stats.api_calls = self.client.calls
        self.stats.extra["record_count"] = total
        return self.stats

    def walk_new(self, first: Page, high: int) -> None:
        """Read from the newest end down to the high-water mark (plus any lookback pages)."""
        page, offset, newest, extra_pages = first, 0, high, self.opts.lookback_pages
        while page.records:
            self.store(page)
            ids = [r["id"] for r in page.records if isinstance(r.get("id"), int)]
            newest = max([newest, *ids])
            reached_known = any(i <= high for i in ids)
            if reached_known:
                if extra_pages <= 0:
                    break
                extra_pages -= 1
            offset += len(page.records)
            if offset >= page.record_count:
                break
            page = self.client.payments_page(offset, self.opts.page_size)
        with self.engine.begin() as conn:
            self.cursor["high"] = newest
            save_cursor(conn, self.tenant_id, TX_STREAM, self.cursor)

    def backfill(self, first: Page, total: int) -> None:
        """Load everything below the high-water mark, checkpointing after each page."""
        saved_offset, saved_total = self.cursor.get("offset", 0), self.cursor.get("offset_total", total)
        start = saved_offset + (total - saved_total)  # new payments at the top shift the list down
        if saved_offset:
            start = max(0, start - self.opts.page_size)  # one page of overlap: nothing slips through
        if self.cursor.get("high") is None:
            ids = [r.get("id") for r in first.records if isinstance(r.get("id"), int)]
            self.cursor["high"] = max(ids) if ids else None
        for page in self.pages_from(first, start, total):
            self.store(page, {"offset": page.offset + len(page.records), "offset_total": total})
        self.cursor.update(complete=True, offset=0, offset_total=total)


def sync_transactions(engine, client, tenant_id, opts: MxSyncOptions, run_id=None) -> SyncStats:
    return _TransactionSync(engine, client, tenant_id, opts, run_id).run()


# -- steps 3–6: invoices ------------------------------------------------------------------

def _quarantined_refs(conn: sa.Connection, tenant_id: str) -> set[str]:
    q = quarantine.c
    return set(conn.execute(
        sa.select(q.source_id).where(q.tenant_id == tenant_id, q.stream == INVOICE_STREAM)
    ).scalars())


def unresolved_refs(conn: sa.Connection, tenant_id: str) -> tuple[list[int], list[str]]:
    """Invoice ids and numbers to fetch, from the transactions not linked yet: the invoices they
    name that are not loaded (nor quarantined), and the loaded ones too (a new payment on a known
    invoice changed its paid amount, balance and status). Both queries walk the unlinked
    transactions and look each invoice up by key, so a re-sync costs what the new payments do."""
    t, i = transactions.c, invoices.c
    unlinked = (t.tenant_id == tenant_id, t.invoice_id.is_(None))
    by_id = sa.select(t.mx_invoice_id, sa.exists().where(i.tenant_id == tenant_id, i.id == t.mx_invoice_id)
                      .label("loaded")).distinct().where(*unlinked, t.mx_invoice_id.is_not(None))
    loaded_id = sa.select(i.id).where(i.tenant_id == tenant_id, i.invoice_number == t.invoice_number).limit(1)
    by_number = sa.select(t.invoice_number, loaded_id.scalar_subquery().label("loaded_id")).distinct().where(
        *unlinked, t.mx_invoice_id.is_(None), t.invoice_number.is_not(None))
    skip = _quarantined_refs(conn, tenant_id)
    ids, numbers = set(), []
    for invoice_id, loaded in conn.execute(by_id):
        if loaded or f"id:{invoice_id}" not in skip:
            ids.add(invoice_id)
    for number, invoice_id in conn.execute(by_number):
        if invoice_id is not None:
            ids.add(invoice_id)
        elif f"number:{number}" not in skip:
            numbers.append(number)
    return sorted(ids), sorted(numbers)


def invoice_rows(tenant_id: str, inv: MxInvoice) -> tuple[dict, list[dict]]:
    primary = inv.primary_purchase()
    head = {
        "tenant_id": tenant_id, "id": inv.id, "invoice_number": inv.invoice_number, "status": inv.status,
        "total_amount": inv.total_amount, "balance": inv.balance, "paid_amount": inv.paid_amount,
        "customer_id": inv.customer.id if inv.customer else None,
        "customer_name": inv.customer.name if inv.customer else None,
        "invoice_date": inv.invoice_date, "line_count": len(inv.purchases),
        "primary_product": primary.product_name if primary else None,
    }
    lines = [{
        "tenant_id": tenant_id, "invoice_id": inv.id, "line_id": p.id, "product_id": p.product_id,
        "product_name": p.product_name, "quantity": p.quantity, "price": p.price,
        "tax_amount": p.tax_amount, "total_amount": p.total_amount,
    } for p in inv.purchases]
    return head, lines


def map_numbers(client: MxMerchantClient, numbers: list[str], page_size: int) -> tuple[dict[str, int], int]:
    """Invoice number → id from the invoice list, paging only until every number is found."""
    wanted, found, seen = set(numbers), {}, 0
    if not wanted:
        return found, 0
    for summary in client.iter_invoice_summaries(page_size):
        seen += 1
        number = str(summary.get("invoiceNumber"))
        if number in wanted and isinstance(summary.get("id"), int):
            found[number] = summary["id"]
            if len(found) == len(wanted):
                break
    return found, seen


def sync_invoices(engine, client: MxMerchantClient, tenant_id: str, opts: MxSyncOptions, run_id=None) -> SyncStats:
    stats = SyncStats()
    calls_before = client.calls
    with engine.connect() as conn:
        ids, numbers = unresolved_refs(conn, tenant_id)
    mapped, _ = map_numbers(client, numbers, opts.invoice_list_page_size)
    rejected = [Rejected({"invoice_number": n}, "invoice number not found in the invoice list", f"number:{n}")
                for n in numbers if n not in mapped]
    wanted = sorted(set(ids) | set(mapped.values()))
    heads, lines = [], []
    writer = _BackgroundWriter()

    def write(heads: list[dict], lines: list[dict], rejected: list[Rejected]) -> None:
        with engine.begin() as conn:
            if heads:
                stats.rows_written += upsert(conn, invoices, heads).written
                upsert(conn, invoice_lines, lines)
            stats.quarantined += quarantine_records(conn, tenant_id, INVOICE_STREAM, rejected, run_id)

    def flush() -> None:
        nonlocal heads, lines, rejected
        writer.submit(write, heads, lines, rejected)
        heads, lines, rejected = [], [], []

    with writer:
        for invoice_id, body in client.invoices(wanted):
            stats.rows += 1
            if isinstance(body, ProviderError):
                if body.retryable:  # still unresolved, so the next run asks again
                    stats.extra["detail_calls_failed"] = stats.extra.get("detail_calls_failed", 0) + 1
                else:  # e.g. 404: kept with its reason, not asked for again
                    rejected.append(Rejected({"invoice_id": invoice_id}, f"detail call failed: {body}", f"id:{invoice_id}"))
                continue
            try:
                head, inv_lines = invoice_rows(tenant_id, MxInvoice.model_validate(body))
            except ValidationError as exc:
                rejected.append(Rejected(body, describe(exc), f"id:{invoice_id}"))
                continue
            heads.append(head)
            lines.extend(inv_lines)
            if len(heads) >= opts.invoice_batch:
                flush()
        flush()
    with engine.begin() as conn:
        stats.extra["transactions_linked"] = link_invoices(conn, tenant_id)
    stats.api_calls = client.calls - calls_before
    stats.extra.update(invoices_wanted=len(wanted), numbers_mapped=len(mapped))
    return stats


class _BackgroundWriter:
    """Writes batches on one background thread so detail calls keep flowing meanwhile.

    At most one batch waits behind the one being written (memory stays bounded); the first
    error is raised in the caller at the next submit or on exit.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mx-writer")
        self._pending: list = []

    def submit(self, fn, *args) -> None:
        for future in [f for f in self._pending if f.done()]:
            self._pending.remove(future)
            future.result()  # a failed write surfaces here
        while len(self._pending) >= 2:
            self._pending.pop(0).result()
        self._pending.append(self._pool.submit(fn, *args))

    def __enter__(self) -> "_BackgroundWriter":
        return self

    def __exit__(self, *exc) -> None:
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pool.shutdown(wait=True)


def _distinct(a, b):
    return a.is_distinct_from(b)


def link_invoices(conn: sa.Connection, tenant_id: str) -> int:
    """Step 8: point each invoice-linked transaction at its loaded invoice (by id, else number)."""
    t, i = transactions.c, invoices.c
    linked = 0
    for match in (
        sa.and_(t.mx_invoice_id.is_not(None), i.id == t.mx_invoice_id),
        sa.and_(t.mx_invoice_id.is_(None), i.invoice_number == t.invoice_number),
    ):
        stmt = (
            sa.update(transactions)
            .where(t.tenant_id == tenant_id, i.tenant_id == tenant_id, match,
                   sa.or_(_distinct(t.invoice_id, i.id), t.has_invoice.is_(False)))
            .values(invoice_id=i.id, has_invoice=True, updated_at=utc_now())
        )
        linked += conn.execute(stmt).rowcount
    return linked


# -- steps 7–8: products and categories -------------------------------------------------------

def categorise(product_name: str, rules: dict[str, str]) -> tuple[str, str]:
    """(category, assigned_by): the first rule whose keyword the name contains, else the fallback."""
    lowered = product_name.lower()
    for keyword, category in rules.items():
        if keyword.lower() in lowered:
            return category, "rule"
    return UNCATEGORIZED, "fallback"


def sync_products(engine, tenant_id: str, rules: dict[str, str]) -> SyncStats:
    stats = SyncStats()
    l, pc, t, i = invoice_lines.c, product_categories.c, transactions.c, invoices.c
    with engine.begin() as conn:
        names = conn.execute(
            sa.select(l.product_name).distinct().where(
                l.tenant_id == tenant_id,
                ~sa.exists().where(pc.tenant_id == tenant_id, pc.product_name == l.product_name),
            )
        ).scalars().all()
        stats.rows = len(names)
        rows = []
        for name in names:
            category, assigned_by = categorise(name, rules)
            rows.append({"tenant_id": tenant_id, "product_name": name, "category": category, "assigned_by": assigned_by})
        stats.rows_written = upsert(conn, product_categories, rows).written if rows else 0
        category = sa.func.coalesce(
            sa.select(pc.category).where(pc.tenant_id == tenant_id, pc.product_name == i.primary_product)
            .scalar_subquery(),
            UNCATEGORIZED,
        )
        stmt = (
            sa.update(transactions)
            .where(t.tenant_id == tenant_id, i.tenant_id == tenant_id, i.id == t.invoice_id,
                   sa.or_(_distinct(t.primary_product, i.primary_product), _distinct(t.product_category, category)))
            .values(primary_product=i.primary_product, product_category=category, updated_at=utc_now())
        )
        stats.extra["transactions_categorised"] = conn.execute(stmt).rowcount
    return stats
