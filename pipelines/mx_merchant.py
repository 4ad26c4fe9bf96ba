"""MX Merchant: its job (every asset of the group, for one tenant or a range of tenants) and the
hourly schedule, which refreshes up to ``TENANTS_PER_RUN`` tenants a run."""

import dagster as dg

from assets.tenant_batch import TENANTS_PER_RUN
from assets.transactions import mx_assets
from resources.mx_merchant import SYSTEM
from pipelines.executors import sync_executor
from pipelines.scheduling import per_tenant_schedule

mx_job = dg.define_asset_job(
    "mx_merchant_sync",
    selection=dg.AssetSelection.assets(*mx_assets),
    executor_def=sync_executor,
    description="Transactions → invoices → product categories for each tenant of the run (seed 003).",
)

defs = dg.Definitions(
    assets=mx_assets,
    jobs=[mx_job],
    schedules=[per_tenant_schedule(mx_job, SYSTEM, cron="15 * * * *", tenants_per_run=TENANTS_PER_RUN)],
)
JOBS_BY_SYSTEM = {SYSTEM: mx_job}
