"""A manual sync's progress is closed when its run ends however it ends: a run that failed before
or between the assets that report progress (a blocking check, a cancel, a crash) still leaves its
progress row ``failed`` with why, and a job that reports no steps ``succeeded``."""

import dagster as dg

from resources.warehouse import WarehouseResource
from warehouse.sync_progress import TAG, finish

ENDS = {dg.DagsterRunStatus.SUCCESS: "succeeded", dg.DagsterRunStatus.FAILURE: "failed",
        dg.DagsterRunStatus.CANCELED: "failed"}


def close_for_run(warehouse: WarehouseResource, run: dg.DagsterRun, error: str | None = None) -> bool:
    """Close the progress of the manual sync this run served (if still open); whether it did."""
    tag = run.tags.get(TAG, "")
    status = ENDS.get(run.status)
    if not tag.isdigit() or status is None:
        return False
    if status == "failed" and not error:
        error = "the run was canceled" if run.status == dg.DagsterRunStatus.CANCELED else "the run failed"
    return finish(warehouse.engine, int(tag), status, error, run.run_id)


def _sensor(status: dg.DagsterRunStatus):
    @dg.run_status_sensor(
        name=f"sync_progress_on_{status.value.lower()}",
        run_status=status,
        monitor_all_code_locations=True,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Closes the progress of the manual sync the run served.",
    )
    def sensor(context: dg.RunStatusSensorContext, warehouse: WarehouseResource) -> None:
        close_for_run(warehouse, context.dagster_run)

    return sensor


sync_progress_sensors = [_sensor(status) for status in ENDS]
