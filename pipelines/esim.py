"""eSIM catalog: its job (packages then stock, one tenant per run) and 6-hourly schedule (seed 001)."""

import dagster as dg

from assets.esim import esim_assets
from pipelines.executors import sync_executor
from pipelines.scheduling import per_tenant_schedule
from resources.esim import PROVIDERS

esim_catalog_job = dg.define_asset_job(
    "esim_catalog_sync",
    selection=dg.AssetSelection.assets(*esim_assets),
    executor_def=sync_executor,
    description="eSIM packages of every provider the tenant buys from, priced; then their stock and low-stock alerts.",
)

defs = dg.Definitions(
    assets=esim_assets,
    jobs=[esim_catalog_job],
    schedules=[per_tenant_schedule(esim_catalog_job, PROVIDERS, cron="0 */6 * * *")],
)
# A tenant with any of the providers gets the job; discovery and schedules run it once per tenant.
JOBS_BY_SYSTEM = {system: esim_catalog_job for system in PROVIDERS}
