"""The analysts' marts: every dbt model and test in one run (all tenants), hourly after the shop's job."""

import dagster as dg

from assets.marts import platform_tables, warehouse_marts
from assets.orders import orders_checks

marts_job = dg.define_asset_job(
    "marts",
    selection=dg.AssetSelection.assets(warehouse_marts),
    executor_def=dg.in_process_executor,
    description="dbt build of the marts in analytics/ (models, then their tests) on the warehouse.",
)

defs = dg.Definitions(
    assets=[warehouse_marts, *platform_tables],
    asset_checks=orders_checks,
    jobs=[marts_job],
    schedules=[dg.ScheduleDefinition(name="marts_hourly", job=marts_job, cron_schedule="20 * * * *",
                                      default_status=dg.DefaultScheduleStatus.RUNNING)],
)
