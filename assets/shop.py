"""The eSIM shop's hourly work per tenant: recovery, then the two marts analysts query (seed 001).

``shop/stuck_orders`` runs ``shop.recovery`` (seed 001's workflow 5): checkouts whose payment we
never heard about are settled with Stripe, orders paid over an hour ago without their eSIMs are
provisioned (or failed and refunded) by the same services the API runs, what is still stuck
raises one Slack alert, and the tenant's pending emails, notices and refunds are delivered, so
the shop recovers even while no API process is up.
"""

import statistics
from collections import Counter, defaultdict
from decimal import Decimal

import dagster as dg
import sqlalchemy as sa

from assets.common import OWNERS, markdown_table, not_connected, table_metadata, tenant_connection
from assets.partitions import tenant_check, tenant_partitions
from resources.esim import EsimProvidersResource
from resources.warehouse import WarehouseResource
from shop import orders as states
from shop.recovery import recover
from shop.services import Services
from shop.settings import ShopSettings
from warehouse.tables.shop import (
    mart_orders_daily,
    mart_provisioning_daily,
    order_esims,
    orders,
    payments,
    provisioning_attempts,
)
from warehouse.upsert import upsert

GROUP, KINDS, SYSTEM = "shop", {"sql", "stripe"}, "stripe"
STUCK_KEY = dg.AssetKey(["shop", "stuck_orders"])
ORDERS_MART_KEY = dg.AssetKey(["shop", "mart_orders_daily"])
PROVISIONING_MART_KEY = dg.AssetKey(["shop", "mart_provisioning_daily"])
RECONCILES, PAID_IN_FULL = "mart_totals_match_orders", "mart_revenue_matches_payments"
NONE_STUCK, ATTEMPTS_ADD_UP = "no_order_still_stuck", "mart_attempts_match_attempts"


@dg.asset(
    key=STUCK_KEY, partitions_def=tenant_partitions, group_name=GROUP, kinds=KINDS, owners=OWNERS,
    metadata=table_metadata(orders),
    pool="esim_providers",
    check_specs=[tenant_check(NONE_STUCK, asset=STUCK_KEY, description="after recovery, no paid order is still "
                              "waiting for its eSIMs past the hour (each such order also alerts Slack once)")],
    description="Checkouts never confirmed settled with Stripe; orders paid or processing for over an hour "
    "checked with their provider and completed, retried or failed; pending emails, notices and refunds delivered.",
)
def shop_stuck_orders(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                      esim_providers: EsimProvidersResource) -> dg.MaterializeResult:
    tenant = context.partition_key
    if tenant_connection(warehouse, tenant, SYSTEM) is None:
        return not_connected(SYSTEM, [NONE_STUCK])
    services = Services(ShopSettings(), warehouse.engine, esim_providers)
    try:
        report = recover(services, tenant, context.log.info)
    finally:
        services.close()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": report.stuck, "stuck": report.stuck, "still_stuck": report.still_stuck,
        "unconfirmed_checkouts": report.unconfirmed,
        **{f"payment_{k}": v for k, v in report.payments.items()},
        **{f"outcome_{k.replace(' ', '_')}": v for k, v in report.outcomes.items()},
        **{f"effects_{k}": v for k, v in report.effects.items()},
    }, check_results=[dg.AssetCheckResult(check_name=NONE_STUCK, passed=report.still_stuck == 0,
                                          severity=dg.AssetCheckSeverity.WARN,
                                          metadata={"still_stuck": report.still_stuck})])


def orders_daily(engine: sa.Engine, tenant: str) -> list[dict]:
    """Per UTC day of creation and currency: order counts by outcome, eSIMs, revenue and refunds."""
    o, e = orders.c, order_esims.c
    esims = sa.select(e.order_id, sa.func.count().label("n")).where(e.tenant_id == tenant).group_by(e.order_id).subquery()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(o.created_at, o.currency, o.status, o.paid_at, o.amount_total, o.amount_refunded,
                      sa.func.coalesce(esims.c.n, 0).label("esims"))
            .select_from(orders.outerjoin(esims, esims.c.order_id == o.order_id)).where(o.tenant_id == tenant)
        ).mappings().all()
    days: dict[tuple, dict] = {}
    for r in rows:  # in Python: Money is exact Decimal here, and text on SQLite where SQL SUM would use floats
        d = days.setdefault((r["created_at"].date(), r["currency"]), {
            "tenant_id": tenant, "day": r["created_at"].date(), "currency": r["currency"], "orders": 0,
            "paid_orders": 0, "provisioned": 0, "failed": 0, "expired": 0, "refunded": 0, "esims": 0,
            "revenue": Decimal(0), "refunds": Decimal(0)})
        d["orders"] += 1
        d["esims"] += r["esims"]
        d["refunds"] += r["amount_refunded"]
        if r["paid_at"] is not None:
            d["paid_orders"] += 1
            d["revenue"] += r["amount_total"]
        key = {states.PROVISIONED: "provisioned", states.PARTIALLY_PROVISIONED: "provisioned",
               states.FAILED: "failed", states.EXPIRED: "expired", states.REFUNDED: "refunded"}.get(r["status"])
        if key:
            d[key] += 1
    return [{**d, "net_revenue": d["revenue"] - d["refunds"]} for d in days.values()]


def _percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def provisioning_daily(engine: sa.Engine, tenant: str) -> list[dict]:
    """Per UTC day and provider: calls made, successes, breaker skips, latency p50/p95, error classes."""
    a = provisioning_attempts.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(a.started_at, a.provider, a.outcome, a.error_class, a.latency_ms)
                            .where(a.tenant_id == tenant)).mappings().all()
    groups: dict[tuple, list] = defaultdict(list)
    for r in rows:
        groups[(r["started_at"].date(), r["provider"])].append(r)
    out = []
    for (day, provider), group in groups.items():
        calls = [r for r in group if r["outcome"] != "skipped"]
        succeeded = sum(r["outcome"] == "succeeded" for r in calls)
        latencies = [r["latency_ms"] for r in calls if r["latency_ms"] is not None]
        out.append({
            "tenant_id": tenant, "day": day, "provider": provider, "attempts": len(calls), "succeeded": succeeded,
            "skipped_open": sum(r["error_class"] == "circuit_open" for r in group if r["outcome"] == "skipped"),
            "success_rate": round(succeeded / len(calls), 4) if calls else None,
            "p50_latency_ms": _percentile(latencies, 50), "p95_latency_ms": _percentile(latencies, 95),
            "error_classes": dict(Counter(r["error_class"] for r in group if r["error_class"])),
        })
    return out


@dg.asset(
    key=ORDERS_MART_KEY, deps=[STUCK_KEY], partitions_def=tenant_partitions, group_name=GROUP, kinds={"sql"},
    metadata=table_metadata(mart_orders_daily),
    owners=OWNERS, check_specs=[
        tenant_check(RECONCILES, asset=ORDERS_MART_KEY, description="mart order counts add up to the orders table"),
        tenant_check(PAID_IN_FULL, asset=ORDERS_MART_KEY, description="the mart's revenue per currency is what "
                     "Stripe's succeeded PaymentIntents behind the tenant's orders captured (table `payments`)"),
    ],
    description="Orders and revenue per day (table `mart_orders_daily`).",
)
def shop_mart_orders_daily(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    tenant = context.partition_key
    rows = orders_daily(warehouse.engine, tenant)
    with warehouse.engine.begin() as conn:
        written = upsert(conn, mart_orders_daily, rows).written if rows else 0
        stored = stored_mart(conn, mart_orders_daily, tenant)  # what analysts read, stale days included
        total = conn.execute(sa.select(sa.func.count()).select_from(orders).where(orders.c.tenant_id == tenant)).scalar_one()
        captured = captured_by_currency(conn, tenant)
    in_mart = sum(r["orders"] for r in stored)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for r in stored:
        revenue[r["currency"]] += r["revenue"]
    mismatched = {c: (revenue.get(c, Decimal(0)), captured.get(c, Decimal(0))) for c in {*revenue, *captured}
                  if revenue.get(c, Decimal(0)) != captured.get(c, Decimal(0))}
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(stored), "rows_written": written, "preview": dg.MetadataValue.md(markdown_table(
            ["day", "currency", "orders", "provisioned", "failed", "net_revenue"],
            [[r["day"], r["currency"], r["orders"], r["provisioned"], r["failed"], r["net_revenue"]] for r in stored[:7]]))},
        check_results=[
            dg.AssetCheckResult(check_name=RECONCILES, passed=in_mart == total,
                                metadata={"orders": total, "orders_in_mart": in_mart}),
            dg.AssetCheckResult(check_name=PAID_IN_FULL, passed=not mismatched, severity=dg.AssetCheckSeverity.WARN,
                                metadata={**{f"revenue_{c}": str(v) for c, v in sorted(revenue.items())},
                                          **{f"mismatch_{c}": f"mart {m} vs captured {p}"
                                             for c, (m, p) in sorted(mismatched.items())}}),
        ],
    )


def stored_mart(conn: sa.Connection, mart: sa.Table, tenant: str) -> list[dict]:
    """The tenant's stored mart rows, newest day first."""
    return [dict(r) for r in conn.execute(sa.select(mart).where(mart.c.tenant_id == tenant)
                                          .order_by(mart.c.day.desc())).mappings()]


def captured_by_currency(conn: sa.Connection, tenant: str) -> dict[str, Decimal]:
    """What succeeded PaymentIntents captured for the tenant's paid orders, per currency."""
    p, o = payments.c, orders.c
    rows = conn.execute(sa.select(p.currency, p.amount).select_from(payments.join(
        orders, sa.and_(o.tenant_id == p.tenant_id, o.order_id == p.order_id)))
        .where(p.tenant_id == tenant, p.status == "succeeded", o.paid_at.is_not(None))).all()
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for currency, amount in rows:  # in Python: Money is text on SQLite
        totals[currency.upper()] += amount
    return dict(totals)


@dg.asset(
    key=PROVISIONING_MART_KEY, deps=[STUCK_KEY], partitions_def=tenant_partitions, group_name=GROUP, kinds={"sql"},
    metadata=table_metadata(mart_provisioning_daily),
    owners=OWNERS,
    check_specs=[tenant_check(ATTEMPTS_ADD_UP, asset=PROVISIONING_MART_KEY,
                              description="the mart's attempts add up to the provider calls in `provisioning_attempts`")],
    description="Provisioning attempts per provider per day: success rate, p50/p95 latency, error classes "
    "(table `mart_provisioning_daily`).",
)
def shop_mart_provisioning_daily(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    tenant = context.partition_key
    rows = provisioning_daily(warehouse.engine, tenant)
    a = provisioning_attempts.c
    with warehouse.engine.begin() as conn:
        written = upsert(conn, mart_provisioning_daily, rows).written if rows else 0
        stored = stored_mart(conn, mart_provisioning_daily, tenant)
        calls = conn.execute(sa.select(sa.func.count()).select_from(provisioning_attempts)
                             .where(a.tenant_id == tenant, a.outcome != "skipped")).scalar_one()
    in_mart = sum(r["attempts"] for r in stored)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(stored), "rows_written": written, "preview": dg.MetadataValue.md(
            markdown_table(["day", "provider", "attempts", "success_rate", "p95_latency_ms"],
                           [[r["day"], r["provider"], r["attempts"], r["success_rate"], r["p95_latency_ms"]]
                            for r in stored[:7]]))},
        check_results=[dg.AssetCheckResult(check_name=ATTEMPTS_ADD_UP, passed=in_mart == calls,
                                           metadata={"provider_calls": calls, "attempts_in_mart": in_mart})],
    )


shop_assets = [shop_stuck_orders, shop_mart_orders_daily, shop_mart_provisioning_daily]
