"""Schedules that fan out over every tenant connected to a system (or to any of several): one run
per tenant, or, for jobs whose assets sync a range of tenants per run (``assets.tenant_batch``),
one run per range of up to ``tenants_per_run`` tenants."""

from collections.abc import Sequence

import dagster as dg

from assets.partitions import partitions_for
from assets.tenant_batch import batch_tags, ranges
from sensors.tick_context import instance_of, warehouse_of
from warehouse.tenants import tenants_with


def per_tenant_schedule(job, system: str | Sequence[str], cron: str, tenants_per_run: int = 1) -> dg.ScheduleDefinition:
    systems = [system] if isinstance(system, str) else list(system)
    partition_set = partitions_for(systems).name
    per_run = "every tenant" if tenants_per_run == 1 else f"up to {tenants_per_run} tenants a run"

    @dg.schedule(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Runs {job.name} for every tenant connected to {' or '.join(systems)} ({per_run}).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        instance = instance_of(context)
        with warehouse_of(context).engine.connect() as conn:
            tenants = sorted({t for s in systems for t in tenants_with(conn, s)})
        # A tenant added since tenant discovery last ran has no partition yet: its first sync is
        # discovery's to start, and asking for it here would fail the tick for every tenant.
        ordered = instance.get_dynamic_partitions(partition_set)
        known = set(ordered)
        if waiting := [t for t in tenants if t not in known]:
            context.log.info(f"not yet partitioned, left to tenant discovery: {', '.join(waiting)}")
        stamp = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "now"
        if tenants_per_run == 1:
            return [dg.RunRequest(partition_key=t, run_key=f"{job.name}:{t}:{stamp}") for t in tenants if t in known]
        # a range holds every partition between its ends (in the set's order), so ranges end where
        # a partition of a tenant not to refresh now sits
        return [dg.RunRequest(run_key=f"{job.name}:{start}..{end}:{stamp}", tags=batch_tags(start, end))
                for start, end in ranges(ordered, set(tenants) & known, tenants_per_run)]

    return _schedule
