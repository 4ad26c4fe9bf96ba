"""Run jobs for a tenant in this process, recorded in the Dagster instance under DAGSTER_HOME."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from sensors.alerts import cause_of

# Keep the terminal for the summary; every event is still in the run's log in the UI. No step
# retries: someone is waiting at the terminal for the verdict (each API call still retries on its
# own), and a failed blocking check would otherwise be retried minutes long before they hear of it.
QUIET = {
    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},  # failures are reported by the caller
    "execution": {"config": {"retries": {"disabled": {}}}},
}


@dataclass
class FailedCheck:
    asset: str
    check: str
    is_error: bool  # ERROR severity: the job failed with it (a WARN check is reported, not failed)
    metadata: dict


@dataclass(frozen=True)
class NotRefreshed:
    """A system an asset could not refresh this run (its circuit breaker open, or the call
    failed); the asset still holds the last good data, from ``last_good``."""
    asset: str
    system: str
    status: str  # circuit_open or failed
    last_good: str  # an ISO time, or "never synced"

    def describe(self) -> str:
        what = "circuit open" if self.status == "circuit_open" else "failed"
        when = "never synced" if self.last_good == "never synced" else f"last good data from {self.last_good}"
        return f"{self.asset}: {self.system} {what}: not refreshed, {when}"


def not_refreshed(metadata: dict[str, dict]) -> list[NotRefreshed]:
    """The systems each materialised asset reports as not refreshed (``<system>_status`` other
    than synced, as the POS assets record it)."""
    found = []
    for asset, meta in metadata.items():
        for key, status in meta.items():
            if key.endswith("_status") and status in ("circuit_open", "failed"):
                system = key.removesuffix("_status")
                last = meta.get(f"{system}_serving_last_good_data_from") or "never synced"
                found.append(NotRefreshed(asset, system, status, str(last)))
    return found


@dataclass
class JobOutcome:
    job: str
    tenant: str
    success: bool  # the run succeeded, no check of ERROR severity failed and every system was refreshed
    run_id: str
    error: str | None
    metadata: dict[str, dict]
    failed_checks: list[FailedCheck] = field(default_factory=list)
    not_refreshed: list[NotRefreshed] = field(default_factory=list)


def failed_checks(result: dg.ExecuteInProcessResult) -> list[FailedCheck]:
    """The run's asset checks that did not pass."""
    return [
        FailedCheck(e.asset_key.to_user_string(), e.check_name, e.severity == dg.AssetCheckSeverity.ERROR,
                    {k: v.value for k, v in e.metadata.items()})
        for e in result.get_asset_check_evaluations() if not e.passed
    ]


def jobs_for_tenant(tenant_id: str) -> list[str]:
    """The jobs of the systems a tenant connects."""
    from pipelines.definitions import JOBS_BY_SYSTEM, RESOURCES
    from warehouse.tenants import connected_systems

    with RESOURCES["warehouse"].engine.connect() as conn:
        systems = connected_systems(conn, tenant_id)
    return sorted({JOBS_BY_SYSTEM[s].name for s in systems if s in JOBS_BY_SYSTEM})


def run_tenant_jobs(
    tenant_id: str,
    job_names: list[str] | None = None,
    on_event: Callable[[str], None] | None = None,
    tags: dict[str, str] | None = None,
) -> list[JobOutcome]:
    """Materialise the tenant's jobs (those of the systems it connects, or the named ones) in-process."""
    from pipelines.definitions import RESOURCES, build_defs
    from sensors.tenants import reconcile_partitions

    instance = dg.DagsterInstance.get()
    reconcile_partitions(instance, RESOURCES["warehouse"])
    outcomes = []
    for name in job_names or jobs_for_tenant(tenant_id):
        if on_event:
            on_event(f"{name} for {tenant_id}")
        job = build_defs().resolve_job_def(name)
        if tenant_id not in instance.get_dynamic_partitions(job.partitions_def.name):
            outcomes.append(JobOutcome(name, tenant_id, False, "-", f"tenant {tenant_id} is not active or connects no "
                                       f"system {name} syncs (partition set {job.partitions_def.name})", {}))
            continue
        outcomes.append(run_job(job, instance, tenant_id, tags))
    return outcomes


def run_job(job: dg.JobDefinition, instance: dg.DagsterInstance, partition_key: str | None,
            tags: dict[str, str] | None = None) -> JobOutcome:
    """Execute one job in this process (one tenant's partition, or all for an unpartitioned job)."""
    result = job.execute_in_process(
        partition_key=partition_key, instance=instance, raise_on_error=False, run_config=QUIET, tags=tags,
    )
    metadata: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        metadata[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        error = cause_of(failures[0].step_failure_data.error) if failures else "run failed"
    checks, stale = failed_checks(result), not_refreshed(metadata)
    success = result.success and not any(c.is_error for c in checks) and not stale
    return JobOutcome(job.name, partition_key or "all tenants", success, result.run_id, error, metadata, checks,
                      stale)


def run_marts() -> JobOutcome:
    """Build the analysts' marts (the dbt job, every tenant) in this process."""
    from pipelines.definitions import build_defs
    from pipelines.marts import marts_job

    return run_job(build_defs().resolve_job_def(marts_job.name), dg.DagsterInstance.get(), None)
