"""The eSIM shop's marts as they were computed in Python before they moved to dbt (assets/orders.py,
up to issue 10), kept word for word as the reference the dbt models must equal."""

import statistics
from collections import Counter, defaultdict
from decimal import Decimal

import sqlalchemy as sa

from commerce import orders as states
from warehouse.tables.orders import order_esims, orders, provisioning_attempts


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
