"""Customers of every POS/Portaus tenant (`customers`, the one table with PII) and its PII-free view."""

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
from warehouse.tables.pos import CUSTOMER_PII_COLUMNS, customers

CUSTOMERS_KEY = dg.AssetKey(["pos", "customers"])
ANALYTICS_VIEW = "customers_analytics"
NO_PII = "analytics_view_has_no_pii"


def view_columns(conn: sa.Connection) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns(ANALYTICS_VIEW)}


@dg.asset(
    key=CUSTOMERS_KEY, metadata=table_metadata(customers),
    partitions_def=pos_partitions,
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    pool=POOL,
    retry_policy=API_RETRY,
    check_specs=[
        tenant_check(NO_PII, asset=CUSTOMERS_KEY, partitions_def=pos_partitions, blocking=True,
                     description=f"the `{ANALYTICS_VIEW}` view exposes no PII column"),
        tenant_check(REACHABLE, asset=CUSTOMERS_KEY, partitions_def=pos_partitions, description=REACHABLE_SPEC_TEXT),
    ],
    description="The tenant's POS/Portaus customers (table `customers`: PII kept here only, e-mail lower-cased, "
    f"phones +E.164); analysts query the PII-free view `{ANALYTICS_VIEW}`.",
)
def pos_customers(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, pos_clients: PosClientsResource
) -> dg.MaterializeResult:
    tenant = context.partition_key
    runs = run_pos_streams(context, warehouse, pos_clients, "customers")
    if runs is None:
        return not_connected("POS or Portaus", [NO_PII, REACHABLE], CUSTOMERS_KEY)
    raise_failures(tenant, runs)
    c = customers.c
    # the preview shows only what the analytics view shows: no PII reaches the UI
    cols = ["source", "customer_id", "customer_type", "state", "birth_year", "status"]
    with warehouse.engine.connect() as conn:
        leaked = sorted(view_columns(conn) & set(CUSTOMER_PII_COLUMNS))
        rows = conn.execute(sa.select(*[c[x] for x in cols]).where(c.tenant_id == tenant, c.deleted_at.is_(None))
                            .order_by(c.source_updated_at.desc(), c.customer_id).limit(5)).all()
    meta = pos_metadata(runs, count(warehouse, customers, tenant, c.deleted_at.is_(None)))
    meta["medical"] = count(warehouse, customers, tenant, c.deleted_at.is_(None), c.customer_type == "medical")
    meta["preview"] = dg.MetadataValue.md(markdown_table(cols, rows))
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[
            dg.AssetCheckResult(check_name=NO_PII, passed=not leaked, metadata={"pii_columns_in_view": ", ".join(leaked) or "none"}),
            reachable_check(runs, CUSTOMERS_KEY),
        ],
    )
