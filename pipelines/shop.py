"""The eSIM shop: its hourly job (stuck orders, then the marts; one tenant per run) and schedule."""

import dagster as dg

from assets.shop import SYSTEM, shop_assets
from pipelines.scheduling import per_tenant_schedule

shop_job = dg.define_asset_job(
    "shop_hourly",
    selection=dg.AssetSelection.assets(*shop_assets),
    executor_def=dg.in_process_executor,
    description="Stuck orders checked with their provider, pending effects delivered (the marts are the dbt job `marts`).",
)

defs = dg.Definitions(
    assets=shop_assets,
    jobs=[shop_job],
    schedules=[per_tenant_schedule(shop_job, SYSTEM, cron="5 * * * *")],
)
# Every tenant that takes payments through Stripe runs the shop job.
JOBS_BY_SYSTEM = {SYSTEM: shop_job}
