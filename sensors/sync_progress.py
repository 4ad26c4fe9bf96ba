"""A manual sync's progress is closed when its run ends however it ends: a run that failed before
or between the assets that report progress (a blocking check, a cancel, a crash) still leaves its
progress row ``failed`` with why, and a job that reports no steps ``succeeded``.

The sync-request sensor closes them on each tick (``close_ended``), reading the runs of the open
rows from the instance it keeps; three run-status sensors did this before, each building a Dagster
instance at every tick (``sensors/tick_context.py``)."""

import dagster as dg
import sqlalchemy as sa

from warehouse.sync_progress import ACTIVE, TAG, close
from warehouse.tables.core import sync_requests
from warehouse.tables.sync_progress import sync_progress

ENDS = {dg.DagsterRunStatus.SUCCESS: "succeeded", dg.DagsterRunStatus.FAILURE: "failed",
        dg.DagsterRunStatus.CANCELED: "failed"}


def close_for_run(conn: sa.Connection, run: dg.DagsterRun) -> bool:
    """Close the progress of the manual sync this run served (if still open); whether it did."""
    tag = run.tags.get(TAG, "")
    status = ENDS.get(run.status)
    if not tag.isdigit() or status is None:
        return False
    error = None
    if status == "failed":
        error = "the run was canceled" if run.status == dg.DagsterRunStatus.CANCELED else "the run failed"
    return close(conn, int(tag), status, error, run.run_id)


def close_ended(instance: dg.DagsterInstance, conn: sa.Connection) -> list[int]:
    """Close the progress rows still open whose run has ended; the request ids closed. Only requests
    handed to Dagster can have a run, and a tenant has at most one manual sync open: a tick reads at
    most one row per tenant."""
    p, r = sync_progress.c, sync_requests.c
    open_ids = conn.execute(sa.select(p.request_id).join(sync_requests, r.id == p.request_id).where(
        p.status.in_(ACTIVE), r.status.in_(("launched", "started")))).scalars().all()
    if not open_ids:
        return []
    ended = instance.get_runs(filters=dg.RunsFilter(tags={TAG: [str(i) for i in open_ids]}, statuses=list(ENDS)))
    return [int(run.tags[TAG]) for run in ended if close_for_run(conn, run)]
