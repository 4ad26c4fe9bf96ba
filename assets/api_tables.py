"""The tables the shop API writes, declared as external assets: Dagster materialises none of them.

They are what the API's requests and workers write (checkouts, Stripe's payments and events,
provisioning, POS webhooks and orders, the studio's quotes, invoices and payments); Dagster reads
them: the hourly ``orders_hourly`` recovery changes rows in them, and the dbt marts count from
them (``analytics/models/sources.yml`` maps each source to its key here), so lineage draws orders
and payments feeding the marts, and the studio's checks (dbt tests on its tables) sit on them. Staff
accounts and webhook tokens (the people and auth tables) are left out: no data flows from them.
"""

import dagster as dg
import sqlalchemy as sa

from assets.common import OWNERS, table_metadata
from warehouse.tables.orders import (
    order_effects, order_esims, order_refunds, orders, payments, provisioning_attempts, provisioning_jobs,
    unclaimed_esims, webhook_events,
)
from warehouse.tables.pos_events import portaus_payment_intents, pos_orders, pos_webhook_events
from warehouse.tables.studio import (
    studio_invoice_items, studio_invoices, studio_payments, studio_quote_items, studio_quotes,
)
from warehouse.tables.studio_print import studio_print_jobs, studio_printers, studio_tmp_files

GROUP = "api"
STOREFRONT_KINDS, STRIPE_KINDS, POS_KINDS = {"fastapi", "sql"}, {"fastapi", "stripe", "sql"}, {"fastapi", "sql"}
STUDIO_KINDS = {"fastapi", "sql"}
WRITTEN_BY = {  # table -> (kinds, which part of the API writes it)
    orders: (STOREFRONT_KINDS, "checkout, then Stripe's webhooks and the provisioning workers"),
    order_esims: (STOREFRONT_KINDS, "the provisioning workers"),
    payments: (STRIPE_KINDS, "Stripe's webhooks and refunds"),
    order_refunds: (STRIPE_KINDS, "Stripe's refund webhooks and the refunds of orders not delivered"),
    webhook_events: (STRIPE_KINDS, "the Stripe webhook route"),
    provisioning_jobs: (STOREFRONT_KINDS, "the provisioning workers"),
    provisioning_attempts: (STOREFRONT_KINDS, "the provisioning workers"),
    unclaimed_esims: (STOREFRONT_KINDS, "the provisioning workers"),
    order_effects: (STOREFRONT_KINDS, "the order's state changes, delivered by the effects worker"),
    pos_webhook_events: (POS_KINDS, "the POS webhook routes"),
    pos_orders: (POS_KINDS, "the POS order routes"),
    portaus_payment_intents: (POS_KINDS, "the POS order routes (Portaus payments)"),
    studio_quotes: (STUDIO_KINDS, "the studio's staff and client routes"),
    studio_quote_items: (STUDIO_KINDS, "the studio's staff routes"),
    studio_invoices: (STUDIO_KINDS, "the studio's routes and its Stripe webhooks"),
    studio_invoice_items: (STUDIO_KINDS, "the studio's staff routes"),
    studio_payments: (STRIPE_KINDS, "the studio's Stripe webhooks and staff's manual payments"),
    studio_printers: (STUDIO_KINDS, "the studio's staff routes"),
    studio_print_jobs: (STUDIO_KINDS, "the studio's staff routes"),
    studio_tmp_files: (STUDIO_KINDS, "the slicing routes and slice workers; the hourly studio_tmp_cleanup deletes "
                       "old ones"),
}


def api_key(table: sa.Table) -> dg.AssetKey:
    return dg.AssetKey([GROUP, table.name])


def api_table(table: sa.Table, kinds: set[str], writer: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        api_key(table), group_name=GROUP, kinds=kinds, owners=OWNERS, metadata=table_metadata(table),
        description=f"Table `{table.name}`, written by the shop API ({writer}): {table.comment}",
    )


api_tables = [api_table(table, kinds, writer) for table, (kinds, writer) in WRITTEN_BY.items()]
