"""The MX Merchant sync of seed 003, as three steps the assets call.

1. ``sync_transactions`` (steps 1–2): page payments newest first into ``transactions``.
   Incremental: only pages holding ids above the high-water mark are read, so a re-sync with
   nothing new costs one call. A first sync reads pages by position from the oldest payment
   (stable while new ones arrive at the newest end and shift every offset), reads again any gap
   a page served out of order left, and checkpoints after every page; a killed run resumes where
   it stopped, and the idempotent upsert means overlaps create no duplicates. The stream is
   complete only when loaded + quarantined equals the newest ``recordCount`` seen; arrivals
   during the sync are fetched by walking the newest end again, and a sync that still cannot
   reconcile says so and resumes next run.
2. ``sync_invoices`` (steps 3–6, and the link of step 8): fetch each invoice referenced by a
   transaction and not loaded yet, exactly once: directly by ``invoiceIds`` when payments carry
   them, else through the invoice list (paged only until every wanted number is mapped; a
   payment's ``invoice`` that is not an integer is another code, not looked up). Quarantined
   invoices are skipped, but up to ``QUARANTINE_RETRIES`` of them are asked for again per run.
3. ``sync_products`` (steps 7–8): extract products from invoice lines, categorise them per
   tenant ('Uncategorized' when no rule matches; manual assignments are kept), and set each
   linked transaction's primary product (highest-value line) and category.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from resources.http import ProviderError
from resources.mx_merchant import SYSTEM, MxInvoice, MxMerchantClient, MxPayment, Page
from syncing.progress import MX_STEPS, NO_PROGRESS, Progress
from syncing.result import SyncResult
from syncing.runs import connection_of, sync_each
from syncing.state import load_cursor, quarantine_records, release_quarantined
from syncing.stream import StreamWriter
from warehouse.syncs import Rejected
from warehouse.tables.core import quarantine
from warehouse.tables.mx import invoice_lines, invoices, product_categories, transactions
from warehouse.tenants import TenantConnection
from warehouse.types import utc_now
from warehouse.upsert import upsert

TX_STREAM, INVOICE_STREAM, PRODUCT_STREAM = "mx_transactions", "mx_invoices", "mx_products"
QUARANTINE_RETRIES = 20  # quarantined records asked for again per run, per stream
GAP_ATTEMPTS = 3  # reads of one gap that came back past it before a first sync pauses till next run
CATCH_UP_WALKS = 3  # walks from the newest end for payments that arrived while a first sync read
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
        "invoice_number": p.invoice_number, "invoice_code": p.invoice_code, "mx_invoice_id": p.invoice_ids[0] if p.invoice_ids else None,
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


def span(page: Page) -> tuple[int, int] | None:
    """The positions a page holds, counted from the oldest payment (0). The list is newest first,
    so new payments shift every offset, but a payment's position from the oldest end stays put:
    a page read at offset ``o`` while the list held ``recordCount`` payments starts at position
    ``recordCount - 1 - o``, whatever arrived before or after."""
    if not page.records:
        return None
    top = page.record_count - 1 - page.offset
    return top - len(page.records) + 1, top


class _Meter:
    """Reports a client's calls to a ``Progress`` as they grow (from the caller's thread)."""

    def __init__(self, client: MxMerchantClient, progress: Progress) -> None:
        self.client, self.progress, self.reported = client, progress, client.calls

    def report(self, **counts: int) -> None:
        calls = self.client.calls
        self.progress.add(api_calls=calls - self.reported, **counts)
        self.reported = calls


def _step(progress: Progress, index: int) -> None:
    progress.step(index, MX_STEPS[index])


def tally(conn: sa.Connection, tenant_id: str) -> tuple[int, int]:
    """(payments loaded, payments quarantined) for the tenant."""
    t, q = transactions.c, quarantine.c
    loaded = conn.execute(sa.select(sa.func.count()).select_from(transactions)
                          .where(t.tenant_id == tenant_id)).scalar_one()
    held = conn.execute(sa.select(sa.func.count()).select_from(quarantine)
                        .where(q.tenant_id == tenant_id, q.stream == TX_STREAM)).scalar_one()
    return loaded, held


@dataclass(frozen=True)
class Reconciliation:
    """The transactions stream's counts: complete when loaded + quarantined = MX's recordCount."""

    loaded: int
    quarantined: int
    record_count: int

    @property
    def reconciled(self) -> bool:
        return self.loaded + self.quarantined == self.record_count


def reconciliation(engine: sa.Engine, tenant_id: str) -> Reconciliation:
    """The counts as they stand in the warehouse (the record count is the one the last sync saw)."""
    with engine.connect() as conn:
        loaded, held = tally(conn, tenant_id)
        cursor = load_cursor(conn, tenant_id, TX_STREAM) or {}
    return Reconciliation(loaded, held, cursor.get("record_count", 0))


class _TransactionSync:
    """One run over the tenant's payments.

    The cursor holds ``high`` (the newest payment id loaded: a re-sync reads down to it),
    ``below`` (positions from the oldest end not read yet by the first sync; 0 once it reached
    the oldest payment), ``complete`` (the first sync is done and the counts reconcile) and
    ``record_count`` (the newest ``recordCount`` seen, which the reconcile check compares with)
    and ``reread`` (a shortfall no arrival explains sent the whole list to be read again).
    """

    def __init__(self, engine: sa.Engine, client: MxMerchantClient, tenant_id: str, opts: MxSyncOptions,
                 run_id: str | None, progress: Progress | None = None):
        self.engine, self.client, self.tenant_id, self.opts, self.run_id = engine, client, tenant_id, opts, run_id
        self.stats = SyncResult()
        self.count = 0  # the newest recordCount seen
        self.top_count = 0  # the recordCount when the newest end was last read
        self._count_lock = threading.Lock()
        self.writer = StreamWriter(engine, tenant_id, TX_STREAM, transactions, ("id",), self.stats, run_id)
        self.cursor = self.writer.cursor
        # new vs changed payments cost one lookup per page: only counted when someone watches
        self.progress, self.split_new = progress or NO_PROGRESS, progress is not None
        self.meter = _Meter(client, self.progress)

    def read(self, offset: int) -> Page:
        page = self.client.payments_page(offset, self.opts.page_size)
        with self._count_lock:
            self.count = max(self.count, page.record_count)
        return page

    def store(self, page: Page, cursor_update: dict[str, Any] | None = None) -> None:
        """Upsert one page (and quarantine its bad records) and checkpoint, in one transaction."""
        rows, rejected = parse_payments(self.tenant_id, page.records)
        known = self._known(rows) if self.split_new else 0
        written = self.writer.write(rows, rejected, cursor_update or None).written
        self.stats.rows += len(page.records)
        new = len(rows) - known
        self.meter.report(payments_read=len(page.records), quarantined=len(rejected),
                          payments_new=new if self.split_new else 0,
                          payments_updated=max(0, written - new) if self.split_new else 0)

    def _known(self, rows: list[dict[str, Any]]) -> int:
        """How many of ``rows`` are loaded already (the rest are new payments)."""
        if not rows:
            return 0
        t = transactions.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(transactions).where(
                t.tenant_id == self.tenant_id, t.id.in_([r["id"] for r in rows]))).scalar_one()

    def retry_quarantined(self) -> None:
        """Ask again for payments quarantined earlier (a few per run): the newest-first walk never
        passes them again, and MX may have put them right since."""
        asked = sorted((i for i in self.writer.in_quarantine if i.isdigit()), reverse=True)[:QUARANTINE_RETRIES]
        self.stats.extra.update(quarantine_retry_limit=QUARANTINE_RETRIES, quarantine_retried=len(asked))
        for source_id in asked:
            try:
                body = self.client.payment(int(source_id))
            except ProviderError:
                continue  # still unreadable, or gone: it stays quarantined
            rows, _ = parse_payments(self.tenant_id, [body])
            if rows:
                self.writer.write(rows)
                self.meter.report(payments_new=len(rows) if self.split_new else 0)

    def run(self) -> SyncResult:
        _step(self.progress, 1)
        first = self.read(0)
        self.top_count = first.record_count
        high = self.cursor.get("high")
        if high is not None:
            self.walk_new(first, high, self.opts.lookback_pages)
        if not self.cursor.get("complete"):
            self.progress.add(payments_expected=first.record_count)
            self.backfill(first, stored=high is not None)
        _step(self.progress, 2)
        self.retry_quarantined()
        reconciled = self.settle()
        self.writer.save({"record_count": self.count, "complete": reconciled})
        self.meter.report()
        self.stats.api_calls = self.client.calls
        self.stats.extra.update(self.client.call_stats())  # retries and this client's retry budget (resources.http.CallPolicy)
        self.stats.extra.update(record_count=self.count, reconciled=reconciled)
        return self.stats

    def walk_new(self, first: Page, high: int, extra_pages: int = 0) -> None:
        """Read from the newest end down to the high-water mark (plus ``extra_pages`` below it),
        each page asked for right below the positions read so far: payments arriving meanwhile
        make pages overlap, never leave a gap. The mark moves up only once the walk reached it;
        a walk outrun by arrivals (a page no further down than the one before) stops short, so
        the next walk covers the same ground."""
        page, newest, lowest = first, high, None
        while page.records:
            self.store(page)
            ids = [r["id"] for r in page.records if isinstance(r.get("id"), int)]
            newest = max([newest, *ids])
            if any(i <= high for i in ids):
                if extra_pages <= 0:
                    break
                extra_pages -= 1
            lo, _ = span(page)
            if lo == 0:
                break  # the oldest payment
            if lowest is not None and lo >= lowest:
                self.stats.extra["walk_outrun"] = True
                return
            lowest = lo
            page = self.read(self.count - 1 - (lo - 1))
        self.writer.save({"high": newest})

    def backfill(self, first: Page, stored: bool) -> None:
        """Load every position below ``below`` down to the oldest payment, ``page_concurrency``
        pages in flight, checkpointing after each page.

        Each page is planned by position and asked for at the offset the count of the pages
        taken so far gives; if more payments arrived before MX served it, it comes back shifted
        towards the newer ones. Pages are taken in order: one that overlaps what is loaded extends
        it; one that left a gap (served shifted less than the page before it) has the gap read
        first, by position again; each page taken re-plans the next from where the loaded
        positions end. With nothing arriving this reads each page once: ``ceil(recordCount /
        page_size)`` calls. Arrivals faster than the pages can follow pause it till next run."""
        frontier = self.cursor.get("below")
        if frontier is None and self.cursor.get("offset"):  # a cursor written before positions
            frontier = max(0, self.cursor.get("offset_total", self.count) - self.cursor["offset"] + self.opts.page_size)
        if frontier is None:
            ids = [r.get("id") for r in first.records if isinstance(r.get("id"), int)]
            if self.cursor.get("high") is None:
                self.cursor["high"] = max(ids) if ids else None
            first_span = span(first)
            frontier = first_span[0] if first_span else 0
            if stored:
                self.writer.save({"below": frontier})
            else:
                self.store(first, {"below": frontier})
        for key in ("offset", "offset_total"):
            self.cursor.pop(key, None)
        size, width = self.opts.page_size, max(1, self.opts.page_concurrency)
        next_top, window, taken_count, idle = frontier - 1, deque(), first.record_count, 0
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="mx-pages") as pool:
            try:
                while frontier > 0:
                    while len(window) < width and next_top >= 0:
                        window.append(pool.submit(self.read, taken_count - 1 - next_top))
                        next_top -= size
                    if not window:  # arrivals shifted the planned pages up: plan on from the frontier
                        next_top = frontier - 1
                        continue
                    page = window.popleft().result()
                    frontier = self._fill_gap(frontier, span(page))
                    if frontier is None:
                        self.stats.extra["backfill_stalled"] = True
                        return  # the list shrank under us: resume from the checkpoint next run
                    got = span(page)
                    before, frontier = frontier, min(frontier, got[0]) if got else frontier
                    self.store(page, {"below": frontier})
                    idle = 0 if frontier < before else idle + 1
                    if idle == width + GAP_ATTEMPTS:  # arrivals outrun every page asked for
                        self.stats.extra["backfill_stalled"] = True
                        return
                    # The pages in flight were asked for with the count of the pages taken before
                    # them, so they shift as far as this one did: plan the next one below them.
                    taken_count = max(taken_count, page.record_count)
                    next_top = frontier - 1 - len(window) * size
            finally:
                for future in window:
                    future.cancel()

    def _fill_gap(self, frontier: int, got: tuple[int, int] | None) -> int | None:
        """Read the positions between the frontier and a page that came back below it (each
        gap page is asked for at its position with the newest count, so it reaches the frontier
        unless more arrived than a page holds); the new frontier, or None when the list keeps
        coming back past it (or empty)."""
        misses = 0
        while frontier > 0 and (got is None or got[1] < frontier - 1):
            gap = self.read(self.count - 1 - (frontier - 1))
            gap_span = span(gap)
            if gap_span is None or gap_span[0] >= frontier:  # empty, or shifted past the frontier
                misses += 1
                if misses == GAP_ATTEMPTS:
                    return None
                continue
            misses = 0
            frontier = gap_span[0]
            self.store(gap, {"below": frontier})
            self.stats.bump("gap_pages")
            if got is None:
                break
        return frontier

    def tally(self) -> tuple[int, int]:
        """(payments loaded, payments quarantined) for the tenant."""
        with self.engine.connect() as conn:
            return tally(conn, self.tenant_id)

    def settle(self) -> bool:
        """Whether loaded + quarantined equals the newest recordCount seen. Payments that arrived
        after the newest end was read are fetched by walking it again (``CATCH_UP_WALKS`` times
        at most); a shortfall with nothing arrived is a gap the walk cannot see, so the next run
        reads the list again from the top. Either way an unreconciled stream stays incomplete."""
        walks = 0
        while True:
            loaded, held = self.tally()
            short = self.count - loaded - held
            self.stats.extra.update(loaded=loaded, short=short)
            if short == 0:
                self.cursor.pop("reread", None)
                return True
            if short < 0 or (self.cursor.get("below") or 0) > 0:
                return False  # more than MX counts (nothing to read), or the first sync is not through
            if self.count == self.top_count:
                if not self.cursor.get("reread"):  # nothing arrived: read the whole list again next run
                    self.cursor.update(below=None, reread=True)  # once: a reread short too is reported, not looped
                return False
            if walks == CATCH_UP_WALKS:
                return False  # still arriving: the next run's walk from the top picks them up
            walks += 1
            self.stats.extra["catch_up_walks"] = walks
            first = self.read(0)
            self.top_count = first.record_count
            self.walk_new(first, self.cursor.get("high") or 0)


def sync_transactions(engine, client, tenant_id, opts: MxSyncOptions, run_id=None,
                      progress: Progress | None = None) -> SyncResult:
    """Steps 1–2; ``progress`` hears them and the payments' counts (see ``syncing.progress``)."""
    return _TransactionSync(engine, client, tenant_id, opts, run_id, progress).run()


# -- steps 3–6: invoices ------------------------------------------------------------------

def _quarantined_refs(conn: sa.Connection, tenant_id: str) -> tuple[set[str], list[tuple[str, int | None]]]:
    """The quarantined invoices: their keys (``id:…``, or ``number:…`` for those reached through
    a number, so the number is skipped without walking the invoice list) plus the numbers their
    stored bodies carry; and (key, invoice id) of each, the least recently asked first."""
    q = quarantine.c
    rows = conn.execute(
        sa.select(q.source_id, q.raw).where(q.tenant_id == tenant_id, q.stream == INVOICE_STREAM,
                                            q.source_id.is_not(None)).order_by(q.updated_at, q.source_id)
    ).all()
    skip, held = set(), []
    for source_id, raw in rows:
        skip.add(source_id)
        body = raw if isinstance(raw, dict) else {}
        if body.get("invoiceNumber") is not None:
            skip.add(f"number:{body['invoiceNumber']}")
        kind, _, ref = source_id.partition(":")
        invoice_id = int(ref) if kind == "id" and ref.isdigit() else body.get("id", body.get("invoice_id"))
        held.append((source_id, invoice_id if isinstance(invoice_id, int) else None))
    return skip, held


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
    skip, _ = _quarantined_refs(conn, tenant_id)
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


def quarantined_to_retry(conn: sa.Connection, tenant_id: str, limit: int = QUARANTINE_RETRIES) -> dict[int, str]:
    """Invoice id → quarantine key of the quarantined invoices to ask for again this run: at most
    ``limit``, the least recently asked first, so every one comes round in turn."""
    _, held = _quarantined_refs(conn, tenant_id)
    out: dict[int, str] = {}
    for source_id, invoice_id in held:
        if invoice_id is not None and invoice_id not in out and len(out) < limit:
            out[invoice_id] = source_id
    return out


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


def sync_invoices(engine, client: MxMerchantClient, tenant_id: str, opts: MxSyncOptions, run_id=None,
                  progress: Progress | None = None) -> SyncResult:
    """Steps 3–6; ``progress`` hears them and the invoices' counts (see ``syncing.progress``)."""
    progress = progress or NO_PROGRESS
    meter = _Meter(client, progress)
    stats = SyncResult()
    calls_before = client.calls
    _step(progress, 3)
    with engine.connect() as conn:
        ids, numbers = unresolved_refs(conn, tenant_id)
        retry = quarantined_to_retry(conn, tenant_id)
    _step(progress, 4)
    mapped, _ = map_numbers(client, numbers, opts.invoice_list_page_size)
    rejected = [Rejected({"invoice_number": n}, "invoice number not found in the invoice list", f"number:{n}")
                for n in numbers if n not in mapped]
    meter.report(quarantined=len(rejected))
    # Each invoice is quarantined under the reference its payments hold, so the next run skips it
    # before it looks anything up; a quarantined one asked for again keeps its key.
    key_of = {**{i: f"number:{n}" for n, i in mapped.items()}, **retry, **{i: f"id:{i}" for i in ids}}
    wanted = sorted(key_of)
    heads, lines, done = [], [], []
    writer = _BackgroundWriter()
    stats.extra.update(quarantine_retry_limit=QUARANTINE_RETRIES, quarantine_retried=len(retry))

    def write(heads: list[dict], lines: list[dict], rejected: list[Rejected], done: list[str]) -> None:
        with engine.begin() as conn:
            if heads:
                stats.rows_written += upsert(conn, invoices, heads).written
                upsert(conn, invoice_lines, lines)
            # what was asked for again leaves the quarantine: loaded, or back in with today's body
            still_bad = {r.source_id for r in rejected}
            loaded = [k for k in done if k not in still_bad]
            if loaded:
                stats.bump("released_from_quarantine", release_quarantined(conn, tenant_id, INVOICE_STREAM, loaded))
            release_quarantined(conn, tenant_id, INVOICE_STREAM, still_bad & set(done))
            stats.quarantined += quarantine_records(conn, tenant_id, INVOICE_STREAM, rejected, run_id)

    def flush() -> None:
        nonlocal heads, lines, rejected, done
        writer.submit(write, heads, lines, rejected, done)
        heads, lines, rejected, done = [], [], [], []

    progress.add(invoices_wanted=len(wanted))
    _step(progress, 5)
    with writer:
        for invoice_id, body in client.invoices(wanted):
            stats.rows += 1
            key = key_of[invoice_id]
            if isinstance(body, ProviderError):
                if body.retryable:  # still unresolved, so the next run asks again
                    stats.bump("detail_calls_failed")
                    meter.report(errors=1)
                else:  # e.g. 404: kept with its reason, asked for again only in the bounded retries
                    done.append(key)
                    rejected.append(Rejected({"invoice_id": invoice_id}, f"detail call failed: {body}", key))
                    meter.report(errors=1, quarantined=1)
                continue
            done.append(key)
            try:
                head, inv_lines = invoice_rows(tenant_id, MxInvoice.model_validate(body))
            except ValidationError as exc:
                rejected.append(Rejected(body, describe(exc), key))
                meter.report(invoices_fetched=1, quarantined=1)
                continue
            meter.report(invoices_fetched=1)
            heads.append(head)
            lines.extend(inv_lines)
            if len(heads) >= opts.invoice_batch:
                flush()
        _step(progress, 6)
        flush()
    with engine.begin() as conn:
        stats.extra["transactions_linked"] = link_invoices(conn, tenant_id)
    stats.api_calls = client.calls - calls_before
    stats.extra.update(client.call_stats())  # retries and this client's retry budget (resources.http.CallPolicy)
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


def sync_products(engine, tenant_id: str, rules: dict[str, str], progress: Progress | None = None) -> SyncResult:
    """Steps 7–8 (``progress`` hears them)."""
    progress = progress or NO_PROGRESS
    _step(progress, 7)
    stats = SyncResult()
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
    # step 8 in a transaction of its own: a progress writer writes to the same database (on SQLite
    # it would wait for this transaction); it is idempotent, so a run that stops in between redoes it
    _step(progress, 8)
    with engine.begin() as conn:
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


# -- the whole sync, without Dagster ----------------------------------------------------------

def sync_tenant(engine: sa.Engine, tenant_id: str, client_for: Callable[[TenantConnection], MxMerchantClient],
                run_id: str | None = None, progress: Progress | None = None) -> dict[str, SyncResult] | None:
    """Steps 1–8 for one tenant, as the three assets run them (each part with its own client and
    its own ``sync_runs`` row), reporting to ``progress``; the first part that fails raises its
    error and the rest do not run. None when the tenant has no MX connection (a configuration
    error raises)."""
    connection = connection_of(engine, tenant_id, SYSTEM)
    if connection is None:
        return None
    opts = MxSyncOptions.from_connection(connection.options)
    parts = {
        TX_STREAM: lambda client, _: sync_transactions(engine, client, tenant_id, opts, run_id, progress),
        INVOICE_STREAM: lambda client, _: sync_invoices(engine, client, tenant_id, opts, run_id, progress),
        PRODUCT_STREAM: lambda _, c: sync_products(engine, tenant_id, c.options.get("category_rules", {}), progress),
    }
    results = {}
    for stream, part in parts.items():
        [outcome] = sync_each(engine, tenant_id, run_id, [connection], lambda _: stream,
                              client_for if stream != PRODUCT_STREAM else (lambda _: None), part)
        if outcome.exc is not None:
            raise outcome.exc
        results[stream] = outcome.stats
    return results
