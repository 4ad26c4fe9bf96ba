"""The eSIM shop's hourly work per tenant: recovery (seed 001); its marts are dbt models (``analytics/``).

``shop/stuck_orders`` runs ``shop.recovery`` (seed 001's workflow 5): checkouts whose payment we
never heard about are settled with Stripe, orders paid over an hour ago without their eSIMs are
provisioned (or failed and refunded) by the same services the API runs, what is still stuck
raises one Slack alert, and the tenant's pending emails, notices and refunds are delivered, so
the shop recovers even while no API process is up.
"""

from collections import defaultdict
from decimal import Decimal

import dagster as dg
import sqlalchemy as sa

from assets.common import OWNERS, not_connected, table_metadata, tenant_connection
from assets.partitions import tenant_check, tenant_partitions
from resources.esim import EsimProvidersResource
from resources.warehouse import WarehouseResource
from shop.recovery import recover
from shop.services import Services
from shop.settings import ShopSettings
from warehouse.tables.shop import orders, payments

GROUP, KINDS, SYSTEM = "shop", {"sql", "stripe"}, "stripe"
STUCK_KEY = dg.AssetKey(["shop", "stuck_orders"])
ORDERS_MART_KEY = dg.AssetKey(["shop", "mart_orders_daily"])  # the dbt model (assets/marts.py)
PAID_IN_FULL, NONE_STUCK = "mart_revenue_matches_payments", "no_order_still_stuck"
FOUR_PLACES = Decimal("0.0001")


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


@dg.asset_check(asset=ORDERS_MART_KEY, name=PAID_IN_FULL, blocking=False,
                description="per tenant, the mart's revenue per currency is what Stripe's succeeded PaymentIntents "
                "behind the tenant's paid orders captured (table `payments`)")
def mart_revenue_matches_payments(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Stays a Dagster check beside the dbt model it reconciles: it compares with the provider."""
    with warehouse.engine.connect() as conn:
        mart = mart_revenue(conn)
        captured = captured_by_currency(conn)
    mismatched = {k: (mart.get(k, Decimal(0)), captured.get(k, Decimal(0))) for k in {*mart, *captured}
                  if mart.get(k, Decimal(0)) != captured.get(k, Decimal(0))}
    return dg.AssetCheckResult(
        passed=not mismatched, severity=dg.AssetCheckSeverity.WARN,
        metadata={"tenant_currencies": len(mart), **{f"mismatch_{t}_{c}": f"mart {m} vs captured {p}"
                                                    for (t, c), (m, p) in sorted(mismatched.items())}})


def _money(value) -> Decimal:
    """A money total as the mart stores it (NUMERIC on PostgreSQL, a float on SQLite) to four places."""
    return Decimal(str(value)).quantize(FOUR_PLACES)


def mart_revenue(conn: sa.Connection) -> dict[tuple[str, str], Decimal]:
    """Revenue per (tenant, currency) in the dbt-built ``mart_orders_daily``."""
    rows = conn.execute(sa.text("select tenant_id, currency, revenue from mart_orders_daily")).all()
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for tenant, currency, revenue in rows:
        totals[(tenant, currency.upper())] += _money(revenue)
    return dict(totals)


def captured_by_currency(conn: sa.Connection) -> dict[tuple[str, str], Decimal]:
    """What succeeded PaymentIntents captured for each tenant's paid orders, per currency."""
    p, o = payments.c, orders.c
    rows = conn.execute(sa.select(p.tenant_id, p.currency, p.amount).select_from(payments.join(
        orders, sa.and_(o.tenant_id == p.tenant_id, o.order_id == p.order_id)))
        .where(p.status == "succeeded", o.paid_at.is_not(None))).all()
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for tenant, currency, amount in rows:  # in Python: Money is text on SQLite
        totals[(tenant, currency.upper())] += amount
    return dict(totals)


shop_assets = [shop_stuck_orders]
shop_checks = [mart_revenue_matches_payments]
