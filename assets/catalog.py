"""The normalised catalog of every POS/Portaus tenant (`products`) and Portaus SAQ branches."""

import dagster as dg
import sqlalchemy as sa

from assets.common import API_RETRY, OWNERS, count, markdown_table, not_connected, table_metadata
from assets.partitions import pos_partitions, tenant_check
from assets.pos_common import (
    GROUP, KINDS, POOL, REACHABLE, REACHABLE_SPEC_TEXT, pos_metadata, raise_failures, reachable_check,
    run_pos_streams,
)
from resources.dagster_resources import PosClientsResource
from resources.warehouse import WarehouseResource
from syncing.pos_categories import UNMAPPED
from warehouse.tables.pos import products, saq_branches

PRODUCTS_KEY = dg.AssetKey(["pos", "products"])
SAQ_BRANCHES_KEY = dg.AssetKey(["pos", "saq_branches"])
UNMAPPED_CHECK = "unmapped_categories"


def unmapped_labels(warehouse: WarehouseResource, tenant: str, limit: int = 10) -> list[tuple[str, str, int]]:
    """(source, source category, products) of the live products no category rule matched."""
    p = products.c
    with warehouse.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(p.source, sa.func.coalesce(p.source_category, "(none)"), sa.func.count())
            .where(p.tenant_id == tenant, p.category == UNMAPPED, p.deleted_at.is_(None))
            .group_by(p.source, p.source_category).order_by(sa.func.count().desc()).limit(limit)
        )]


def catalog_preview(warehouse: WarehouseResource, tenant: str) -> str:
    p = products.c
    cols = ["source", "name", "brand", "size", "category", "strain_type", "thc_max_pct", "price"]
    with warehouse.engine.connect() as conn:
        rows = conn.execute(sa.select(*[p[c] for c in cols]).where(p.tenant_id == tenant, p.deleted_at.is_(None))
                            .order_by(p.source_updated_at.desc(), p.product_id).limit(5)).all()
    return markdown_table(cols, rows)


@dg.asset(
    key=PRODUCTS_KEY, metadata=table_metadata(products),
    partitions_def=pos_partitions,
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    pool=POOL,
    retry_policy=API_RETRY,
    check_specs=[
        tenant_check(UNMAPPED_CHECK, asset=PRODUCTS_KEY, partitions_def=pos_partitions,
                          description="every live product maps to a category (else it sits in 'unmapped')"),
        tenant_check(REACHABLE, asset=PRODUCTS_KEY, partitions_def=pos_partitions, description=REACHABLE_SPEC_TEXT),
    ],
    description="The tenant's catalog from its POS or Portaus (table `products`): standardised names, "
    "one category hierarchy, strain, effects, flavours, potency in %, grams, Decimal prices; deletions marked.",
)
def pos_products(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, pos_clients: PosClientsResource
) -> dg.MaterializeResult:
    tenant = context.partition_key
    runs = run_pos_streams(context, warehouse, pos_clients, "products")
    if runs is None:
        return not_connected("POS or Portaus", [UNMAPPED_CHECK, REACHABLE], PRODUCTS_KEY)
    raise_failures(tenant, runs)
    p = products.c
    live = count(warehouse, products, tenant, p.deleted_at.is_(None))
    unmapped = unmapped_labels(warehouse, tenant)
    n_unmapped = count(warehouse, products, tenant, p.deleted_at.is_(None), p.category == UNMAPPED)
    meta = pos_metadata(runs, live)
    meta["deleted_at_source"] = count(warehouse, products, tenant, p.deleted_at.is_not(None))
    meta["unmapped"] = n_unmapped
    meta["preview"] = dg.MetadataValue.md(catalog_preview(warehouse, tenant))
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[
            dg.AssetCheckResult(
                check_name=UNMAPPED_CHECK, passed=n_unmapped == 0, severity=dg.AssetCheckSeverity.WARN,
                metadata={"unmapped_products": n_unmapped,
                          "labels": dg.MetadataValue.md(markdown_table(["source", "source category", "products"], unmapped))},
            ),
            reachable_check(runs, PRODUCTS_KEY),
        ],
    )


@dg.asset(
    key=SAQ_BRANCHES_KEY, metadata=table_metadata(saq_branches),
    partitions_def=pos_partitions,
    group_name=GROUP,
    kinds={"portaus", "sql"},
    owners=OWNERS,
    pool=POOL,
    retry_policy=API_RETRY,
    check_specs=[tenant_check(REACHABLE, asset=SAQ_BRANCHES_KEY, partitions_def=pos_partitions,
                              description=REACHABLE_SPEC_TEXT)],
    description="SAQ branches a Portaus tenant can assign orders to (table `saq_branches`), refreshed in full.",
)
def pos_saq_branches(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, pos_clients: PosClientsResource
) -> dg.MaterializeResult:
    tenant = context.partition_key
    runs = run_pos_streams(context, warehouse, pos_clients, "saq_branches", systems=("portaus",))
    if runs is None:
        return not_connected("Portaus", [REACHABLE], SAQ_BRANCHES_KEY)
    raise_failures(tenant, runs)
    b = saq_branches.c
    meta = pos_metadata(runs, count(warehouse, saq_branches, tenant, b.deleted_at.is_(None)))
    with warehouse.engine.connect() as conn:
        rows = conn.execute(sa.select(b.branch_number, b.name, b.city).where(b.tenant_id == tenant, b.deleted_at.is_(None))
                            .order_by(b.branch_number).limit(10)).all()
    meta["preview"] = dg.MetadataValue.md(markdown_table(["branch", "name", "city"], rows))
    return dg.MaterializeResult(metadata=meta, check_results=[reachable_check(runs, SAQ_BRANCHES_KEY)])
