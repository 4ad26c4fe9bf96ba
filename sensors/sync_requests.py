"""Manual sync requests (``storehouse sync --request``, later the API) become partition runs."""


import datetime as dt
from collections.abc import Sequence

import dagster as dg

from assets.partitions import TENANT_PARTITIONS, tenant_partitions
from resources.warehouse import WarehouseResource
from warehouse.sync_progress import TAG, close as close_progress
from warehouse.syncs import launched_before, mark_launched, mark_started, pending_requests
from warehouse.types import now_utc

LOST_AFTER = dt.timedelta(minutes=2)  # a launched request with no run by then was lost on the way


def _tags(request: dict) -> dict[str, str]:
    """The run's tags: what triggered it, who asked, and the request (its progress row, if any)."""
    return {"storehouse/trigger": "sync_request", "storehouse/requested_by": request["requested_by"],
            TAG: str(request["id"])}


def build_sync_request_sensor(jobs: Sequence[dg.JobDefinition]) -> dg.SensorDefinition:
    known = {job.name for job in jobs}

    @dg.sensor(
        name="sync_requests",
        jobs=list(jobs),
        minimum_interval_seconds=10,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs the requested job for the requested tenant, once per request.",
    )
    def sync_requests(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
        existing = set(context.instance.get_dynamic_partitions(TENANT_PARTITIONS))
        run_requests, add = [], set()
        with warehouse.engine.begin() as conn:
            for request in pending_requests(conn):
                # ids come back after deletes or a new warehouse; the request time makes the key unique
                run_key = f"sync-request:{request['id']}:{request['requested_at']:%Y%m%dT%H%M%S%f}"
                if request["job"] in known:
                    if request["tenant_id"] not in existing:
                        add.add(request["tenant_id"])
                    run_requests.append(dg.RunRequest(
                        job_name=request["job"], partition_key=request["tenant_id"], run_key=run_key,
                        tags=_tags(request),
                    ))
                    mark_launched(conn, request["id"], run_key)
                else:
                    context.log.warning(f"sync request {request['id']}: unknown job {request['job']!r}")
                    mark_launched(conn, request["id"], run_key, status="rejected")
                    close_progress(conn, request["id"], "failed", f"unknown job {request['job']!r}")
            run_requests += _lost(context, conn)
        partitions = [tenant_partitions.build_add_request(sorted(add))] if add else []
        return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=partitions)

    def _lost(context: dg.SensorEvaluationContext, conn) -> list[dg.RunRequest]:
        """A request is marked launched when this sensor hands it to the daemon. Once its run
        exists it is marked started; one still without a run after ``LOST_AFTER`` was lost on
        the way (the daemon stopped in between) and is asked for again under the same run key (a
        run that does exist by then makes Dagster skip the repeat)."""
        again, started = [], []
        for request in launched_before(conn, now_utc() - LOST_AFTER):
            if context.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": request["run_key"]}),
                                         limit=1):
                started.append(request["id"])
            elif request["job"] in known:
                context.log.warning(f"sync request {request['id']}: its run never started; asking again")
                again.append(dg.RunRequest(
                    job_name=request["job"], partition_key=request["tenant_id"], run_key=request["run_key"],
                    tags=_tags(request)))
        mark_started(conn, started)
        return again

    return sync_requests
