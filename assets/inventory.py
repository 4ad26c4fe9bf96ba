"""Stock of every POS/Portaus tenant (`inventory`): quantity-, lot- and weight-based, with checks."""

import dagster as dg
import sqlalchemy as sa

from assets.catalog import PRODUCTS_KEY
from assets.common import API_RETRY, OWNERS, count, markdown_table, not_connected, table_metadata
from assets.partitions import pos_partitions, tenant_check
from assets.pos_common import (
    GROUP, KINDS, POOL, REACHABLE, REACHABLE_SPEC_TEXT, pos_metadata, raise_failures, reachable_check,
    run_pos_streams,
)
from resources.dagster_resources import PosClientsResource
from resources.warehouse import WarehouseResource
from warehouse.tables.pos import inventory, products

INVENTORY_KEY = dg.AssetKey(["pos", "inventory"])
NO_NEGATIVE = "no_negative_stock"
HAS_PRODUCT = "every_inventory_row_has_a_product"


def negative_rows(conn: sa.Connection, tenant: str) -> int:
    i = inventory.c
    # CAST: exact decimals are text on SQLite; compare them as numbers on both dialects
    return conn.execute(sa.select(sa.func.count()).select_from(inventory).where(
        i.tenant_id == tenant, i.deleted_at.is_(None), sa.cast(i.quantity, sa.Numeric) < 0)).scalar_one()


def orphan_rows(conn: sa.Connection, tenant: str) -> list[tuple[str, str, int]]:
    """(source, product id, lots) of live stock whose product is not in `products` for the tenant."""
    i, p = inventory.c, products.c
    has_product = sa.exists().where(p.tenant_id == i.tenant_id, p.source == i.source, p.product_id == i.product_id)
    return [tuple(r) for r in conn.execute(
        sa.select(i.source, i.product_id, sa.func.count()).where(i.tenant_id == tenant, i.deleted_at.is_(None), ~has_product)
        .group_by(i.source, i.product_id).order_by(i.source, i.product_id)
    )]


@dg.asset(
    key=INVENTORY_KEY, metadata=table_metadata(inventory),
    deps=[PRODUCTS_KEY],
    partitions_def=pos_partitions,
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    pool=POOL,
    retry_policy=API_RETRY,
    check_specs=[
        tenant_check(NO_NEGATIVE, asset=INVENTORY_KEY, partitions_def=pos_partitions, blocking=True,
                     description="no live stock row has a negative quantity"),
        tenant_check(HAS_PRODUCT, asset=INVENTORY_KEY, partitions_def=pos_partitions, blocking=True,
                     description="every live stock row points at a loaded product"),
        tenant_check(REACHABLE, asset=INVENTORY_KEY, partitions_def=pos_partitions, description=REACHABLE_SPEC_TEXT),
    ],
    description="The tenant's stock per location, product and lot (table `inventory`): lots with expiry and "
    "compliance ids, weight-based units, availability and low-stock flags; incremental where the POS allows.",
)
def pos_inventory(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, pos_clients: PosClientsResource
) -> dg.MaterializeResult:
    tenant = context.partition_key
    runs = run_pos_streams(context, warehouse, pos_clients, "inventory")
    if runs is None:
        return not_connected("POS or Portaus", [NO_NEGATIVE, HAS_PRODUCT, REACHABLE], INVENTORY_KEY)
    raise_failures(tenant, runs)
    i = inventory.c
    with warehouse.engine.connect() as conn:
        negative, orphans = negative_rows(conn, tenant), orphan_rows(conn, tenant)
        rows = conn.execute(sa.select(i.source, i.product_id, i.lot_id, i.quantity, i.available, i.low_stock)
                            .where(i.tenant_id == tenant, i.deleted_at.is_(None))
                            .order_by(i.source_updated_at.desc(), i.product_id).limit(5)).all()
    meta = pos_metadata(runs, count(warehouse, inventory, tenant, i.deleted_at.is_(None)))
    meta.update(
        available=count(warehouse, inventory, tenant, i.deleted_at.is_(None), i.available.is_(True)),
        low_stock=count(warehouse, inventory, tenant, i.deleted_at.is_(None), i.low_stock.is_(True)),
        lot_rows=count(warehouse, inventory, tenant, i.deleted_at.is_(None), i.tracking == "lot"),
        preview=dg.MetadataValue.md(markdown_table(["source", "product", "lot", "quantity", "available", "low"], rows)),
    )
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[
            dg.AssetCheckResult(check_name=NO_NEGATIVE, passed=negative == 0, metadata={"negative_rows": negative}),
            dg.AssetCheckResult(
                check_name=HAS_PRODUCT, passed=not orphans,
                metadata={"orphan_products": len(orphans),
                          "sample": dg.MetadataValue.md(markdown_table(["source", "product", "lots"], orphans[:10]))},
            ),
            reachable_check(runs, INVENTORY_KEY),
        ],
    )
