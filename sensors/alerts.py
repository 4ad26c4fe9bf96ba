"""Run-failure alerts: every failed run is announced (Slack when configured, the log always)."""


import dagster as dg

from resources.dagster_resources import SlackResource

# Dagster's wrappers around a step's own error: retries exhausted, retry requested, step failed.
WRAPPERS = {"DagsterMaxRetriesExceededError", "RetryRequestedFromPolicy", "DagsterExecutionStepExecutionError"}


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts each failed run (job, tenant, the error that failed it) to the alerts channel.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, slack: SlackResource) -> None:
    run = context.dagster_run
    tenant = run.tags.get("dagster/partition") or "-"
    if "dagster/asset_partition_range_start" in run.tags:  # a run of several tenants: its error names who failed
        tenant = f"{run.tags['dagster/asset_partition_range_start']}…{run.tags.get('dagster/asset_partition_range_end')}"
    steps = context.get_step_failure_events()
    error = steps[0].step_failure_data.error if steps and steps[0].step_failure_data else None
    message = (cause_of(error) if error else context.failure_event.message or "run failed")[:300]
    text = f":red_circle: {run.job_name} failed for tenant {tenant}: {message} (run {run.run_id[:8]})"
    context.log.info(text)
    slack.post(text)


def cause_of(error) -> str:
    """The first line of the error that failed a step, not of the retry or step wrappers around it
    (a SerializableErrorInfo chain, as Dagster stores it)."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause
    named = next((e for e in chain if e.cls_name not in WRAPPERS), chain[-1])
    first = (named.message.strip().splitlines() or [named.cls_name or "failed"])[0]
    prefix, _, rest = first.partition(": ")
    return rest if rest and prefix.endswith(f".{named.cls_name}") else first
