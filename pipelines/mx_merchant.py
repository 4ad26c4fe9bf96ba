"""MX Merchant: its job (every asset of the group, one tenant per run) and hourly schedule."""

import dagster as dg

from assets.transactions import mx_assets
from resources.mx_merchant import SYSTEM
from pipelines.executors import sync_executor
from pipelines.scheduling import per_tenant_schedule

mx_job = dg.define_asset_job(
    "mx_merchant_sync",
    selection=dg.AssetSelection.assets(*mx_assets),
    executor_def=sync_executor,
    description="Transactions → invoices → product categories for one tenant (seed 003).",
)

defs = dg.Definitions(
    assets=mx_assets,
    jobs=[mx_job],
    schedules=[per_tenant_schedule(mx_job, SYSTEM, cron="15 * * * *")],
)
JOBS_BY_SYSTEM = {SYSTEM: mx_job}
