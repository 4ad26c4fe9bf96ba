"""MX Merchant transactions, invoices and product categories per tenant (seed 003), with checks.

The three assets are one multi-asset that syncs, for each tenant of its run (one, or a range of
up to ``TENANTS_PER_RUN``: ``assets.tenant_batch``), the payments, then the invoices, then the
categories, each tenant's chain stopping where its own blocking check fails.
"""


import dagster as dg
import sqlalchemy as sa

from assets.common import API_RETRY, OWNERS, count, not_connected, preview, run_sync, table_metadata
from assets.partitions import mx_merchant_partitions, tenant_check
from assets.progress import for_mode, run_progress
from assets.tenant_batch import BATCH_POLICY, Tenant, hold, per_tenant
from resources.dagster_resources import MxMerchantResource
from resources.mx_merchant import SYSTEM
from resources.warehouse import WarehouseResource
from syncing.mx import (
    INVOICE_STREAM, PRODUCT_STREAM, TX_STREAM, MxSyncOptions, reconciliation, sync_invoices, sync_products,
    sync_transactions,
)
from syncing.mx_recovery import recover_invoices, recover_transactions
from warehouse.tables.mx import invoice_lines, invoices, product_categories, transactions

GROUP = "mx_merchant"
KINDS = {"mxmerchant", "sql"}
TX_KEY = dg.AssetKey(["mx_merchant", "transactions"])
INVOICES_KEY = dg.AssetKey(["mx_merchant", "invoices"])
CATEGORIES_KEY = dg.AssetKey(["mx_merchant", "product_categories"])
RECONCILES = "loaded_counts_reconcile_with_record_count"
MOSTLY_READ = "quarantined_share_within_limit"
QUARANTINE_LIMIT = 0.02  # above it, revenue in the marts would be visibly short: invoices and marts wait
LINKED = "invoice_linked_transactions_have_their_invoice"
NO_CROSS_TENANT = "no_row_links_across_tenants"


def _sync(context, warehouse: WarehouseResource, mx_merchant: MxMerchantResource, tenant: str, stream: str,
          incremental, recovery, progress):
    """One MX sync step for ``tenant`` with a client for its connection (closed after), reporting
    to the manual sync the run serves (in the mode it asked for), if any."""
    step = for_mode(progress, incremental, recovery)
    return run_sync(context, warehouse, stream, SYSTEM, mx_merchant.client_for, lambda client, connection: step(
        warehouse.engine, client, tenant, MxSyncOptions.from_connection(connection.options),
        context.run.run_id, progress), tenant=tenant)


def transactions_result(context, warehouse: WarehouseResource, mx_merchant: MxMerchantResource, tenant: str,
                        progress) -> dg.MaterializeResult:
    """Sync the tenant's payments; their metadata and the reconciliation and quarantine checks."""
    stats = _sync(context, warehouse, mx_merchant, tenant, TX_STREAM, sync_transactions, recover_transactions, progress)
    if stats is None:
        return not_connected(SYSTEM, [RECONCILES, MOSTLY_READ], TX_KEY)
    if not stats.extra.get("reconciled", True):
        context.log.warning(
            f"tenant {tenant}: loaded + quarantined payments are {stats.extra.get('short')} short of MX's "
            f"recordCount {stats.extra.get('record_count')}; the stream stays incomplete and the next run resumes it")
    counts = reconciliation(warehouse.engine, tenant)
    meta = stats.metadata(counts.loaded)
    meta["calls_per_transaction"] = round(stats.api_calls / max(stats.rows, 1), 4)
    meta["preview"] = dg.MetadataValue.md(
        preview(warehouse, transactions, tenant, ["id", "created_at", "amount", "status", "invoice_number"], "id")
    )
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[dg.AssetCheckResult(
            check_name=RECONCILES, asset_key=TX_KEY,
            passed=counts.reconciled,
            metadata={"loaded": counts.loaded, "quarantined": counts.quarantined, "record_count": counts.record_count},
        ), quarantine_share_check(counts.loaded, counts.quarantined)],
    )


def quarantine_share_check(loaded: int, quarantined: int) -> dg.AssetCheckResult:
    share = quarantined / max(loaded + quarantined, 1)
    return dg.AssetCheckResult(check_name=MOSTLY_READ, asset_key=TX_KEY, passed=share <= QUARANTINE_LIMIT,
                               metadata={"quarantined": quarantined, "loaded": loaded, "share": round(share, 4),
                                         "limit": QUARANTINE_LIMIT})


def _linked_without_invoice(conn: sa.Connection, tenant: str) -> int:
    t = transactions.c
    return conn.execute(
        sa.select(sa.func.count()).select_from(transactions).where(
            t.tenant_id == tenant, t.invoice_id.is_(None),
            sa.or_(t.invoice_number.is_not(None), t.mx_invoice_id.is_not(None)),
        )
    ).scalar_one()


def _cross_tenant_links(conn: sa.Connection, tenant: str) -> int:
    """Transactions or lines of this tenant pointing at an invoice this tenant does not have."""
    t, i, l = transactions.c, invoices.c, invoice_lines.c
    orphan_tx = sa.select(sa.func.count()).select_from(transactions).where(
        t.tenant_id == tenant, t.invoice_id.is_not(None),
        ~sa.exists().where(i.tenant_id == tenant, i.id == t.invoice_id),
    )
    orphan_lines = sa.select(sa.func.count()).select_from(invoice_lines).where(
        l.tenant_id == tenant, ~sa.exists().where(i.tenant_id == tenant, i.id == l.invoice_id),
    )
    return conn.execute(orphan_tx).scalar_one() + conn.execute(orphan_lines).scalar_one()


def invoices_result(context, warehouse: WarehouseResource, mx_merchant: MxMerchantResource, tenant: str,
                    progress) -> dg.MaterializeResult:
    """Sync the tenant's invoices; their metadata and the link checks."""
    stats = _sync(context, warehouse, mx_merchant, tenant, INVOICE_STREAM, sync_invoices, recover_invoices, progress)
    if stats is None:
        return not_connected(SYSTEM, [LINKED, NO_CROSS_TENANT], INVOICES_KEY)
    with warehouse.engine.connect() as conn:
        missing = _linked_without_invoice(conn, tenant)
        crossed = _cross_tenant_links(conn, tenant)
    meta = stats.metadata(count(warehouse, invoices, tenant))
    meta["invoice_lines"] = count(warehouse, invoice_lines, tenant)
    meta["preview"] = dg.MetadataValue.md(
        preview(warehouse, invoices, tenant, ["id", "invoice_number", "status", "total_amount", "primary_product"], "id")
    )
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[
            dg.AssetCheckResult(check_name=LINKED, asset_key=INVOICES_KEY, passed=missing == 0,
                                metadata={"transactions_without_invoice": missing}, severity=dg.AssetCheckSeverity.WARN),
            dg.AssetCheckResult(check_name=NO_CROSS_TENANT, asset_key=INVOICES_KEY, passed=crossed == 0,
                                metadata={"cross_tenant_links": crossed}),
        ],
    )


def categories_result(context, warehouse: WarehouseResource, tenant: str, progress) -> dg.MaterializeResult:
    """The tenant's products and categories from its invoice lines; their counts by category."""
    stats = run_sync(context, warehouse, PRODUCT_STREAM, SYSTEM, lambda connection: None, lambda _, connection:
                     sync_products(warehouse.engine, tenant, connection.options.get("category_rules", {}), progress),
                     tenant=tenant)
    if stats is None:
        return not_connected(SYSTEM)
    pc = product_categories.c
    with warehouse.engine.connect() as conn:
        by_category = conn.execute(
            sa.select(pc.category, sa.func.count()).where(pc.tenant_id == tenant).group_by(pc.category).order_by(pc.category)
        ).all()
    meta = stats.metadata(count(warehouse, product_categories, tenant))
    meta["categories"] = dg.MetadataValue.md("\n".join(f"- {c}: {n}" for c, n in by_category) or "none")
    return dg.MaterializeResult(metadata=meta)


CHECKS = [
    tenant_check(RECONCILES, asset=TX_KEY, partitions_def=mx_merchant_partitions, blocking=True,
                 description="loaded + quarantined = MX recordCount; the invoices wait for it"),
    tenant_check(MOSTLY_READ, asset=TX_KEY, partitions_def=mx_merchant_partitions, blocking=True,
                 description=f"at most {QUARANTINE_LIMIT:.0%} of the tenant's payments are in quarantine "
                 "(unreadable); above that the invoices wait, so no mart is built on a visibly short ledger"),
    tenant_check(LINKED, asset=INVOICES_KEY, partitions_def=mx_merchant_partitions,
                 description="every invoice-linked transaction has its invoice"),
    tenant_check(NO_CROSS_TENANT, asset=INVOICES_KEY, partitions_def=mx_merchant_partitions, blocking=True,
                 description="no transaction or line links to another tenant's invoice; categories wait for it"),
]
BLOCKING = {spec.name: spec.blocking for spec in CHECKS}


def _spec(key: dg.AssetKey, table: sa.Table, description: str, deps=()) -> dg.AssetSpec:
    # skippable: a tenant that fails has no materialisation; each tenant's are yielded as events
    return dg.AssetSpec(key, deps=deps, description=description, metadata=table_metadata(table), group_name=GROUP,
                        kinds=KINDS, owners=OWNERS, partitions_def=mx_merchant_partitions, skippable=True)


@dg.multi_asset(
    name="mx_merchant_tenants",
    specs=[
        _spec(TX_KEY, transactions, "Every MX Merchant payment of the tenant (table `transactions`), synced "
              "incrementally."),
        _spec(INVOICES_KEY, invoices, "MX Merchant invoices with their lines (`invoices`, `invoice_lines`); each "
              "fetched once, linked to its transactions.", deps=[TX_KEY]),
        _spec(CATEGORIES_KEY, product_categories, "The tenant's products from invoice lines with their category "
              "(`product_categories`); sets each linked transaction's primary product and category.",
              deps=[INVOICES_KEY]),
    ],
    check_specs=CHECKS,
    partitions_def=mx_merchant_partitions,
    backfill_policy=BATCH_POLICY,
    pool="mx_merchant",
    retry_policy=API_RETRY,
    description="Payments → invoices → categories of each tenant of the run (one, or a range of tenants).",
)
def mx_merchant_tenants(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        mx_merchant: MxMerchantResource):
    def chain(tenant: Tenant):
        hold(warehouse.engine, tenant.tenant, [TX_STREAM, INVOICE_STREAM, PRODUCT_STREAM], context.run.run_id)
        with run_progress(context, warehouse, last=True) as progress:  # a manual sync's (one tenant) or None
            yield from tenant.materialized(TX_KEY, transactions_result(
                context, warehouse, mx_merchant, tenant.tenant, progress))
            yield from tenant.materialized(INVOICES_KEY, invoices_result(
                context, warehouse, mx_merchant, tenant.tenant, progress))
            yield from tenant.materialized(CATEGORIES_KEY, categories_result(context, warehouse, tenant.tenant, progress))

    yield from per_tenant(context, context.partition_keys, chain, BLOCKING)


mx_assets = [mx_merchant_tenants]
