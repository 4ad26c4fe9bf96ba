"""POS and Portaus (seeds 004, 000): the full sync job, the inventory-only refresh, their schedules.

``pos_sync`` runs catalog, inventory, customers and SAQ branches for one tenant; it is what
discovery and manual requests launch for a tenant on any of the seven systems. The
``pos_inventory_refresh`` job (inventory only) runs every 15 minutes and is what the POS
webhook sensor requests when a store reports a stock change.
"""

import dagster as dg

from assets.catalog import pos_products, pos_saq_branches
from assets.customers import pos_customers
from assets.inventory import pos_inventory
from pipelines.executors import sync_executor
from pipelines.scheduling import per_tenant_schedule
from resources.pos import POS_SYSTEMS

pos_assets = [pos_products, pos_inventory, pos_customers, pos_saq_branches]

pos_sync_job = dg.define_asset_job(
    "pos_sync",
    selection=dg.AssetSelection.assets(*pos_assets),
    executor_def=sync_executor,
    description="Catalog -> inventory, customers and SAQ branches of one tenant's POS or Portaus account.",
)

pos_inventory_job = dg.define_asset_job(
    "pos_inventory_refresh",
    selection=dg.AssetSelection.assets(pos_inventory),
    executor_def=sync_executor,
    description="Only the stock of one tenant: every 15 minutes and whenever its POS reports a stock change.",
)

defs = dg.Definitions(
    assets=pos_assets,
    jobs=[pos_sync_job, pos_inventory_job],
    schedules=[
        per_tenant_schedule(pos_sync_job, POS_SYSTEMS, cron="30 5 * * *"),  # catalog: daily, before opening
        per_tenant_schedule(pos_inventory_job, POS_SYSTEMS, cron="*/15 * * * *"),
    ],
)
JOBS_BY_SYSTEM = {system: pos_sync_job for system in POS_SYSTEMS}
