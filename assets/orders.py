"""The eSIM shop's hourly work per tenant: recovery (seed 001); its marts are dbt models (``analytics/``).

``recover_stuck_orders`` (the op of the ``orders_hourly`` job) runs ``commerce.recovery`` (seed 001's
workflow 5): checkouts whose payment we never heard about are settled with Stripe, orders paid over
an hour ago without their eSIMs are provisioned (or failed and refunded) by the same services the
API runs, what is still stuck raises one Slack alert, and the tenant's pending emails, notices and
refunds are delivered, so the shop recovers even while no API process is up. It is an operation on
the API's tables, not an asset of its own: it produces no table, and the tables it changes are the
API's (declared as external assets in ``assets/api_tables.py``). It lives here, not in
``pipelines/``, because only this layer may reach the shop's services.
"""

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import dagster as dg
import sqlalchemy as sa

from assets.api_tables import api_key
from assets.common import tenant_connection
from commerce.recovery import Recovery, recover
from commerce.services import Services
from commerce.settings import CommerceSettings
from resources.dagster_resources import EsimProvidersResource
from resources.warehouse import WarehouseResource
from warehouse.tables.orders import orders, payments

SYSTEM = "stripe"
ORDERS_MART_KEY = dg.AssetKey(["orders", "mart_orders_daily"])  # the dbt model (assets/marts.py)
PAID_IN_FULL = "mart_revenue_matches_payments"
FOUR_PLACES = Decimal("0.0001")


class CommerceServicesResource(dg.ConfigurableResource):
    """The shop's services, the very ones the API runs, for a job: on the run's warehouse and eSIM
    providers, with the shop's settings (``STOREHOUSE_SHOP_*``) read when the run asks for them."""

    warehouse: WarehouseResource
    esim_providers: EsimProvidersResource

    @contextmanager
    def services(self) -> Iterator[Services]:
        services = Services(CommerceSettings(), self.warehouse.engine, self.esim_providers)
        try:
            yield services
        finally:
            services.close()


def recovery_metadata(report: Recovery) -> dict[str, int]:
    return {
        "stuck": report.stuck, "still_stuck": report.still_stuck, "unconfirmed_checkouts": report.unconfirmed,
        **{f"payment_{k}": v for k, v in report.payments.items()},
        **{f"outcome_{k.replace(' ', '_')}": v for k, v in report.outcomes.items()},
        **{f"effects_{k}": v for k, v in report.effects.items()},
    }


@dg.op(
    out=dg.Out(dg.Nothing), pool="esim_providers", tags={"storehouse/system": SYSTEM},
    description="Checkouts never confirmed settled with Stripe; orders paid or processing for over an hour "
    "checked with their provider and completed, retried or failed; pending emails, notices and refunds delivered. "
    "Its output's metadata counts them; an order still stuck afterwards is a warning and one Slack alert.",
)
def recover_stuck_orders(context: dg.OpExecutionContext, commerce: CommerceServicesResource):
    tenant = context.partition_key
    if tenant_connection(commerce.warehouse, tenant, SYSTEM) is None:
        context.log.info(f"tenant {tenant} has no {SYSTEM} connection; no shop to recover")
        yield dg.Output(None, metadata={"skipped": f"tenant has no {SYSTEM} connection"})
        return
    with commerce.services() as services:
        report = recover(services, tenant, context.log.info)
    if report.still_stuck:
        context.log.warning(f"tenant {tenant}: {report.still_stuck} paid order(s) still without their eSIMs")
    context.log_event(dg.AssetObservation(asset_key=api_key(orders), description="stuck orders after recovery",
                                          metadata={"tenant": tenant, "stuck": report.stuck,
                                                    "still_stuck": report.still_stuck}))
    yield dg.Output(None, metadata=recovery_metadata(report))


@dg.asset_check(asset=ORDERS_MART_KEY, name=PAID_IN_FULL, blocking=False,
                additional_deps=[api_key(payments), api_key(orders)],
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


orders_checks = [mart_revenue_matches_payments]
