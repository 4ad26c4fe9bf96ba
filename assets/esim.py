"""eSIM catalog and stock of each eSIM-selling tenant, from every provider it buys from (seed 001).

``esim/packages``: each provider's packages normalised into ``esim_packages`` and priced by the
tenant's margin rule; packages a provider stopped listing are marked inactive. ``esim/stock``:
units per active package into ``esim_stock`` (below the threshold: low, 0: out of stock), with one
Slack message per run naming every package that crossed (each crossing is told once). A provider
that fails keeps its last good rows and is named in the metadata; the others still load.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import dagster as dg
import sqlalchemy as sa

from assets.common import (
    API_RETRY, OWNERS, count, markdown_table, not_connected, preview, sync_connections, table_metadata,
    tenant_connection,
)
from assets.partitions import esim_partitions, tenant_check
from resources.dagster_resources import EsimProvidersResource
from resources.dagster_resources import SlackResource
from resources.esim import PROVIDERS
from resources.esim.client import EsimClientBase
from resources.warehouse import WarehouseResource
from syncing.esim import mark_alerted, stock_join, stock_message, sync_packages, sync_stock
from syncing.result import SyncResult
from syncing.runs import Outcome
from warehouse.tables.esim import esim_packages, esim_stock
from warehouse.tenants import TenantConnection
from warehouse.types import now_utc

GROUP, KINDS, POOL = "esim", {"esim", "sql"}, "esim_providers"
PACKAGES_KEY, STOCK_KEY = dg.AssetKey(["esim", "packages"]), dg.AssetKey(["esim", "stock"])
PRICED, REFRESHED = "every_package_priced_above_cost", "every_provider_refreshed"
STOCKED, STOCK_READ = "every_active_package_has_stock", "every_provider_stock_read"


def per_provider(context: dg.AssetExecutionContext, warehouse: WarehouseResource, resource: EsimProvidersResource,
                 stream: str, work: Callable[[EsimClientBase, TenantConnection], SyncResult]) -> dict[str, Outcome]:
    """Run ``work`` for each of the tenant's providers, each in its own ``sync_runs`` row; fail the
    run only when every provider failed (the others keep serving their last good rows)."""
    connections = [c for p in PROVIDERS if (c := tenant_connection(warehouse, context.partition_key, p)) is not None]
    runs = {o.system: o for o in sync_connections(context, warehouse, connections, lambda system: f"{stream}:{system}",
                                                  resource.client_for, work)}
    if runs and all(r.error for r in runs.values()):
        raise dg.Failure(description=f"Tenant '{context.partition_key}': every eSIM provider failed: "
                         + "; ".join(f"{p}: {r.error}" for p, r in runs.items()),
                         allow_retries=False)  # retried per call already (assets.common.API_RETRY)
    return runs


def run_metadata(runs: dict[str, Outcome], counts: dict[str, int], rows: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "dagster/row_count": rows, "api_calls": sum(r.stats.api_calls for r in runs.values()),
        "rows_received": sum(r.stats.rows for r in runs.values()),
        "rows_written": sum(r.stats.rows_written for r in runs.values()),
        "quarantined": sum(r.stats.quarantined for r in runs.values()),
        "providers_failed": ", ".join(sorted(p for p, r in runs.items() if r.error)) or "none",
    }
    for provider, run in runs.items():
        meta[f"{provider}_rows"] = counts.get(provider, 0)
        meta[f"{provider}_api_calls"] = run.stats.api_calls
        meta.update({f"{provider}_{k}": v for k, v in run.stats.extra.items() if k.startswith("api_retr")})
    table = [(p, "kept last good rows: " + r.error if r.error else "ok", counts.get(p, 0), r.stats.rows,
              r.stats.rows_written, r.stats.extra.get("deactivated", r.stats.extra.get("crossings", 0)),
              r.stats.api_calls) for p, r in runs.items()]
    meta["providers"] = dg.MetadataValue.md(markdown_table(
        ["provider", "outcome", "rows", "received", "written", "deactivated / crossings", "api calls"], table))
    return meta


def count_by_provider(warehouse: WarehouseResource, table: sa.Table, tenant: str, *where) -> dict[str, int]:
    query = sa.select(table.c.provider, sa.func.count()).where(table.c.tenant_id == tenant, *where)
    with warehouse.engine.connect() as conn:
        return dict(conn.execute(query.group_by(table.c.provider)).all())


def all_providers_check(name: str, runs: dict[str, Outcome]) -> dg.AssetCheckResult:
    """A warning, not an error: a provider that failed keeps serving its last good rows."""
    failed = ", ".join(f"{p}: {r.error}" for p, r in runs.items() if r.error)
    return dg.AssetCheckResult(check_name=name, passed=not failed, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"failed": failed or "none"})


# -- esim/packages --------------------------------------------------------------------------

@dg.asset(
    key=PACKAGES_KEY, partitions_def=esim_partitions, group_name=GROUP, kinds=KINDS, owners=OWNERS,
    metadata=table_metadata(esim_packages),
    pool=POOL, retry_policy=API_RETRY,
    check_specs=[
        tenant_check(PRICED, asset=PACKAGES_KEY, partitions_def=esim_partitions, blocking=True,
                     description="every active package costs > 0, sells above cost"),
        tenant_check(REFRESHED, asset=PACKAGES_KEY, partitions_def=esim_partitions,
                     description="every connected provider's catalog was read"),
    ],
    description="Every eSIM package of the tenant's providers, normalised into `esim_packages`, priced by the "
    "tenant's margin rule; packages no longer listed are marked inactive.",
)
def esim_catalog_packages(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                          esim_providers: EsimProvidersResource) -> dg.MaterializeResult:
    tenant = context.partition_key
    runs = per_provider(context, warehouse, esim_providers, "esim_packages",
                        lambda client, connection: sync_packages(warehouse.engine, client, connection, context.run.run_id))
    if not runs:
        return not_connected("eSIM provider", [PRICED, REFRESHED])
    c = esim_packages.c
    active = count_by_provider(warehouse, esim_packages, tenant, c.active.is_(True))
    with warehouse.engine.connect() as conn:
        # Compared as Decimals here: SQLite keeps Money as text, where "10.00" < "9.00".
        prices = conn.execute(sa.select(c.cost, c.price).where(c.tenant_id == tenant, c.active.is_(True))).all()
    mispriced = sum(1 for cost, price in prices if not Decimal(0) < cost < price)
    meta = run_metadata(runs, active, sum(active.values()))
    meta["inactive"] = count(warehouse, esim_packages, tenant) - sum(active.values())
    columns = ["provider", "name", "country_code", "data_mb", "validity_days", "cost", "price"]
    meta["preview"] = dg.MetadataValue.md(preview(warehouse, esim_packages, tenant, columns, "updated_at"))
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(check_name=PRICED, passed=mispriced == 0, metadata={"mispriced": mispriced}),
        all_providers_check(REFRESHED, runs),
    ])


# -- esim/stock -----------------------------------------------------------------------------

def tenant_slack(warehouse: WarehouseResource, tenant: str, default: SlackResource) -> SlackResource:
    """The tenant's own Slack hook (connection ``slack``), else the platform's."""
    connection = tenant_connection(warehouse, tenant, "slack")
    if connection is None:
        return default
    creds = connection.credentials
    url = creds.get("webhook_url") or connection.base_url.rstrip("/") + str(creds.get("hook_path", ""))
    return SlackResource(webhook_url=url, timeout_s=default.timeout_s)


@dg.asset(
    key=STOCK_KEY, deps=[PACKAGES_KEY], partitions_def=esim_partitions, group_name=GROUP, kinds=KINDS,
    metadata=table_metadata(esim_stock),
    owners=OWNERS, pool=POOL, retry_policy=API_RETRY,
    check_specs=[
        tenant_check(STOCKED, asset=STOCK_KEY, partitions_def=esim_partitions, blocking=True,
                     description="every active package has a stock row"),
        tenant_check(STOCK_READ, asset=STOCK_KEY, partitions_def=esim_partitions,
                     description="every connected provider's stock was read"),
    ],
    description="Units left per active eSIM package (`esim_stock`): low below the threshold, out of stock at 0, "
    "one Slack message per run for the packages that crossed.",
)
def esim_catalog_stock(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                       esim_providers: EsimProvidersResource, slack: SlackResource) -> dg.MaterializeResult:
    tenant, now, crossings = context.partition_key, now_utc(), []
    runs = per_provider(context, warehouse, esim_providers, "esim_stock",
                        lambda client, connection: sync_stock(warehouse.engine, client, connection, now, crossings))
    if not runs:
        return not_connected("eSIM provider", [STOCKED, STOCK_READ])
    delivered = bool(crossings) and tenant_slack(warehouse, tenant, slack).post(stock_message(tenant, crossings))
    if delivered:
        mark_alerted(warehouse.engine, tenant, crossings)
    p, s = esim_packages.c, esim_stock.c
    active = sa.and_(p.tenant_id == tenant, p.active.is_(True))
    with warehouse.engine.connect() as conn:
        by_status = dict(conn.execute(sa.select(s.status, sa.func.count()).select_from(stock_join())
                                      .where(active).group_by(s.status)).all())
        unstocked = conn.execute(sa.select(sa.func.count()).select_from(stock_join(True))
                                 .where(active, s.status.is_(None))).scalar_one()
        lowest = conn.execute(sa.select(s.provider, p.name, s.available, s.status, s.status_since)
                              .select_from(stock_join()).where(active).order_by(s.available, p.name).limit(8)).all()
    counts = count_by_provider(warehouse, esim_stock, tenant)
    meta = run_metadata(runs, counts, sum(counts.values()))
    meta.update({status: by_status.get(status, 0) for status in ("in_stock", "low", "out_of_stock")})
    meta.update(crossings=len(crossings), slack_alert_sent=delivered,
                missing_from_feed=sum(r.stats.extra.get("missing_from_feed", 0) for r in runs.values()))
    meta["lowest"] = dg.MetadataValue.md(markdown_table(["provider", "name", "available", "status", "since"], lowest))
    return dg.MaterializeResult(metadata=meta, check_results=[
        dg.AssetCheckResult(check_name=STOCKED, passed=unstocked == 0, metadata={"active_without_stock": unstocked}),
        all_providers_check(STOCK_READ, runs),
    ])


esim_assets = [esim_catalog_packages, esim_catalog_stock]
