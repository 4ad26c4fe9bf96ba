"""Schedules that fan out one run per tenant connected to a system (or to any of several)."""

from collections.abc import Sequence

import dagster as dg

from assets.partitions import partitions_for
from resources.warehouse import WarehouseResource
from warehouse.tenants import tenants_with


def per_tenant_schedule(job, system: str | Sequence[str], cron: str) -> dg.ScheduleDefinition:
    systems = [system] if isinstance(system, str) else list(system)
    partition_set = partitions_for(systems).name

    @dg.schedule(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Runs {job.name} for every tenant connected to {' or '.join(systems)}.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
        with warehouse.engine.connect() as conn:
            tenants = sorted({t for s in systems for t in tenants_with(conn, s)})
        # A tenant added since tenant discovery last ran has no partition yet: its first sync is
        # discovery's to start, and asking for it here would fail the tick for every tenant.
        known = set(context.instance.get_dynamic_partitions(partition_set))
        if waiting := [t for t in tenants if t not in known]:
            context.log.info(f"not yet partitioned, left to tenant discovery: {', '.join(waiting)}")
        stamp = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "now"
        return [dg.RunRequest(partition_key=t, run_key=f"{job.name}:{t}:{stamp}") for t in tenants if t in known]

    return _schedule
