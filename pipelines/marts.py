"""The analysts' marts: hourly after the shop's job, one run (all tenants) that builds the dbt models
whose inputs changed since their last build, with their tests (``assets.marts_changes``)."""

import dagster as dg

from assets.marts import platform_tables, source_check_keys, warehouse_marts
from assets.orders import orders_checks

marts_job = dg.define_asset_job(
    "marts",  # the marts, their checks, and the checks on their source tables the asset evaluates first
    selection=dg.AssetSelection.assets(warehouse_marts) | dg.AssetSelection.checks(*source_check_keys(warehouse_marts)),
    executor_def=dg.in_process_executor,
    config={"ops": {warehouse_marts.op.name: {"config": {"changed_only": True}}}},
    description="dbt build of the marts in analytics/ whose inputs changed (models, then their tests) on the warehouse.",
)

defs = dg.Definitions(
    assets=[warehouse_marts, *platform_tables],
    asset_checks=orders_checks,
    jobs=[marts_job],
    schedules=[dg.ScheduleDefinition(name="marts_hourly", job=marts_job, cron_schedule="20 * * * *",
                                      default_status=dg.DefaultScheduleStatus.RUNNING)],
)
