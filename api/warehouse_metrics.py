"""Metrics read from the warehouse when Prometheus scrapes: syncs, stuck orders, low stock.

Syncs run in short-lived Dagster run processes (or ``storehouse sync``), so counters kept in
their memory would die with them. Every sync already writes its ``sync_runs`` row (rows, API
calls, duration, status), and that ledger is the truth the staff page shows too, so the API's
``/metrics`` turns it into counters at scrape time, the way breaker state is read from
``circuit_breakers``. Every API worker computes the same values from the same table.

The ledger grows by a row per stream per sync, so a scrape must not re-read it whole: each
process keeps running totals and reads only rows past its watermark (the highest id below which
every row has finished and is counted). Rows still running, or started in the last few minutes
(an id handed out before a row committed could otherwise be passed over), stay above the
watermark and are looked at again next time. A new process starts from zero and reads the
ledger once, which Prometheus sees as a counter reset, as it would for any restart.

Labels: ``system`` (the provider) and ``stream``, bounded by our code; ``tenant`` only on the
failure counter, which has one series per tenant and system, so an alert can name the shop.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import defaultdict
from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from commerce import orders as states
from commerce.recovery import STUCK_AFTER
from resources.mx_merchant import SYSTEM as MX
from warehouse.tables.core import sync_runs
from warehouse.tables.esim import esim_packages, esim_stock
from warehouse.tables.orders import orders
from warehouse.types import now_utc

DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
SETTLE = dt.timedelta(minutes=5)  # rows younger than this are never passed by the watermark
FAILED = ("failed", "abandoned")
PREFIX_SYSTEMS = {"mx": MX}  # streams named without their system ("mx_transactions")


def split_stream(stream: str) -> tuple[str, str]:
    """``(system, stream kind)`` of a ledger stream: ``pos_products:dutchie`` → ``(dutchie,
    pos_products)``, ``mx_invoices`` → ``(mx_merchant, mx_invoices)``."""
    kind, _, system = stream.partition(":")
    if not system:
        prefix = kind.split("_", 1)[0]
        system = PREFIX_SYSTEMS.get(prefix, prefix)
    return system[:64], kind[:64]


class SyncTotals:
    """Running totals of the finished ``sync_runs`` rows, advanced incrementally."""

    def __init__(self, settle: dt.timedelta = SETTLE) -> None:
        self.settle, self.watermark = settle, 0
        self.counted: set[int] = set()  # finished rows above the watermark, already added
        self.runs: defaultdict[tuple[str, str, str], int] = defaultdict(int)  # (system, stream, status)
        self.values: defaultdict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * 5)
        # cumulative counts per bucket, then +Inf: the rows that have a duration
        self.buckets: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(DURATION_BUCKETS) + 1))
        self.failures: defaultdict[tuple[str, str], int] = defaultdict(int)  # (system, tenant)
        self.running: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.lock = threading.Lock()

    def add(self, tenant: str, stream: str, status: str, duration: float | None, calls: int, rows: int,
            written: int, quarantined: int) -> None:
        key = split_stream(stream)
        self.runs[(*key, status)] += 1
        # api calls, rows, rows written, quarantined, seconds
        for i, value in enumerate((calls, rows, written, quarantined, duration or 0.0)):
            self.values[key][i] += value or 0
        if duration is not None:
            counts = self.buckets[key]
            for i, bound in enumerate((*DURATION_BUCKETS, float("inf"))):
                counts[i] += duration <= bound
        self.failures[(key[0], tenant)] += status in FAILED  # 0 for a tenant that never failed: a series to rise from

    def advance(self, engine: sa.Engine) -> None:
        r = sync_runs.c
        settled_before = now_utc() - self.settle
        self.running.clear()
        with engine.connect() as conn:
            rows = conn.execute(sa.select(r.id, r.tenant_id, r.stream, r.status, r.started_at, r.duration_s,
                                          r.api_calls, r.rows, r.rows_written, r.quarantined)
                                .where(r.id > self.watermark).order_by(r.id)).all()
        settled = True
        for row in rows:
            if row.status == "running":
                self.running[split_stream(row.stream)] += 1
            elif row.id not in self.counted:
                self.add(row.tenant_id, row.stream, row.status, row.duration_s, row.api_calls, row.rows,
                         row.rows_written, row.quarantined)
                self.counted.add(row.id)
            settled = settled and row.status != "running" and row.started_at < settled_before
            if settled:
                self.watermark = row.id
        self.counted = {i for i in self.counted if i > self.watermark}

    def families(self) -> Iterator:
        runs = CounterMetricFamily("storehouse_sync_runs", "Finished stream syncs by system, stream and status "
                                   "(success, failed, skipped: breaker open, abandoned: its process died).",
                                   labels=["system", "stream", "status"])
        for labels, n in sorted(self.runs.items()):
            runs.add_metric(labels, n)
        yield runs
        names = [("storehouse_sync_api_calls", "Provider API calls made by syncs."),
                 ("storehouse_sync_rows", "Records received by syncs."),
                 ("storehouse_sync_rows_written", "Records inserted or changed by syncs."),
                 ("storehouse_sync_quarantined", "Records syncs put in quarantine.")]
        for i, (name, doc) in enumerate(names):
            family = CounterMetricFamily(name, doc, labels=["system", "stream"])
            for labels, values in sorted(self.values.items()):
                family.add_metric(labels, values[i])
            yield family
        duration = HistogramMetricFamily("storehouse_sync_duration_seconds", "How long a stream sync took.",
                                         labels=["system", "stream"])
        for labels, counts in sorted(self.buckets.items()):
            bounds = [*(str(b) for b in DURATION_BUCKETS), "+Inf"]
            duration.add_metric(list(labels), list(zip(bounds, counts)), self.values[labels][4])
        yield duration
        failures = CounterMetricFamily("storehouse_sync_failures", "Stream syncs that failed or were abandoned, "
                                       "by system and tenant.", labels=["system", "tenant"])
        for labels, n in sorted(self.failures.items()):
            failures.add_metric(labels, n)
        yield failures
        running = GaugeMetricFamily("storehouse_sync_running", "Stream syncs running now.", labels=["system", "stream"])
        for labels, n in sorted(self.running.items()):
            running.add_metric(labels, n)
        yield running


class WarehouseCollector(Collector):
    """The families above, plus two read whole at each scrape from small indexed sets: paid orders
    stuck without their eSIMs (``commerce.recovery``'s rule) and eSIM packages low or out of stock."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.syncs = engine, SyncTotals()

    def describe(self) -> list:
        return []  # nothing fixed to declare: every family is read at scrape time

    def collect(self) -> Iterator:
        with self.syncs.lock:
            self.syncs.advance(self.engine)
            yield from self.syncs.families()
        yield self._stuck_orders()
        yield self._low_stock()

    def _stuck_orders(self) -> GaugeMetricFamily:
        o = orders.c
        family = GaugeMetricFamily("storehouse_orders_stuck", f"Paid orders still without their eSIMs "
                                   f"{int(STUCK_AFTER.total_seconds() // 60)} minutes after payment.", labels=["tenant"])
        with self.engine.connect() as conn:
            for tenant, n in conn.execute(sa.select(o.tenant_id, sa.func.count()).where(
                    o.status.in_((states.PAID, states.PROCESSING)),
                    sa.func.coalesce(o.paid_at, o.status_changed_at) < now_utc() - STUCK_AFTER).group_by(o.tenant_id)):
                family.add_metric([tenant], n)
        return family

    def _low_stock(self) -> GaugeMetricFamily:
        p, s = esim_packages.c, esim_stock.c
        family = GaugeMetricFamily("storehouse_esim_packages_low_stock", "Active eSIM packages whose stock is low "
                                   "(below the connection's threshold) or out, by shop and provider.",
                                   labels=["tenant", "provider", "status"])
        on = sa.and_(s.tenant_id == p.tenant_id, s.provider == p.provider, s.provider_package_id == p.provider_package_id)
        with self.engine.connect() as conn:
            for tenant, provider, status, n in conn.execute(
                    sa.select(s.tenant_id, s.provider, s.status, sa.func.count()).select_from(esim_stock.join(esim_packages, on))
                    .where(s.status.in_(("low", "out_of_stock")), p.active.is_(True))
                    .group_by(s.tenant_id, s.provider, s.status)):
                family.add_metric([tenant, provider, status], n)
        return family


_COLLECTORS: weakref.WeakKeyDictionary[sa.Engine, WarehouseCollector] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def collector_for(engine: sa.Engine) -> WarehouseCollector:
    """This process's collector of ``engine``'s warehouse (its sync totals live as long as it)."""
    with _LOCK:
        found = _COLLECTORS.get(engine)
        if found is None:
            found = _COLLECTORS[engine] = WarehouseCollector(engine)
        return found
