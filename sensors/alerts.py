"""Run-failure alerts: every failed run is announced (Slack when configured, the log always)."""


import dagster as dg

from resources.slack import SlackResource


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts each failed run (job, tenant, first error line) to the alerts channel.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, slack: SlackResource) -> None:
    run = context.dagster_run
    tenant = run.tags.get("dagster/partition", "-")
    message = (context.failure_event.message or "run failed").splitlines()[0][:300]
    text = f":red_circle: {run.job_name} failed for tenant {tenant}: {message} (run {run.run_id[:8]})"
    context.log.info(text)
    slack.post(text)
