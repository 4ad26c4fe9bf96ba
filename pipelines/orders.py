"""The eSIM shop: its hourly job (stuck orders recovered; one tenant per run) and schedule.

``orders_hourly`` is a job of one op, not of assets: recovery changes the API's own tables (declared
as external assets, group ``api``) and produces none of its own. The marts that count the orders
are the dbt job ``marts``.
"""

import dagster as dg

from assets.orders import SYSTEM, recover_stuck_orders
from assets.partitions import storefront_partitions
from pipelines.scheduling import per_tenant_schedule


@dg.job(
    name="orders_hourly",
    partitions_def=storefront_partitions,
    executor_def=dg.in_process_executor,
    description="Stuck orders checked with their provider, pending effects delivered (the marts are the dbt job `marts`).",
)
def orders_job():
    recover_stuck_orders()


defs = dg.Definitions(
    jobs=[orders_job],
    schedules=[per_tenant_schedule(orders_job, SYSTEM, cron="5 * * * *")],
)
# Every tenant that takes payments through Stripe runs the shop job.
JOBS_BY_SYSTEM = {SYSTEM: orders_job}
