"""Manual sync requests (``storehouse sync --request``, later the API) become partition runs.

A request names a job and a tenant; the run is for the tenant's partition in the job's partition
set. Tenant discovery alone adds partitions: a request for a tenant connected to the job's systems
but not yet partitioned waits (stays pending, said in the log) for discovery's next tick; one for a
tenant not connected to them (or not active) is rejected, as a request for an unknown job is.
Each tick also closes the progress of manual syncs whose run has ended (``sensors.sync_progress``).
"""


import datetime as dt
from collections.abc import Mapping

import dagster as dg

from sensors.sync_progress import close_ended
from sensors.tenants import set_of, tenants_by_set
from sensors.tick_context import instance_of, warehouse_of
from warehouse.sync_progress import TAG, close as close_progress
from warehouse.syncs import launched_before, mark_launched, mark_started, pending_requests
from warehouse.types import now_utc

LOST_AFTER = dt.timedelta(minutes=2)  # a launched request with no run by then was lost on the way


def _tags(request: dict) -> dict[str, str]:
    """The run's tags: what triggered it, who asked, and the request (its progress row, if any)."""
    return {"storehouse/trigger": "sync_request", "storehouse/requested_by": request["requested_by"],
            TAG: str(request["id"])}


def build_sync_request_sensor(jobs_by_system: Mapping[str, dg.JobDefinition]) -> dg.SensorDefinition:
    jobs = {job.name: job for job in jobs_by_system.values()}
    set_of_job = {job.name: set_of(system) for system, job in jobs_by_system.items()}
    known = set(jobs)

    @dg.sensor(
        name="sync_requests",
        jobs=list(jobs.values()),
        minimum_interval_seconds=10,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs the requested job for the requested tenant, once per request; closes the progress "
        "of a manual sync whose run ended.",
    )
    def sync_requests(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        instance = instance_of(context)
        partitions = {name: set(instance.get_dynamic_partitions(name)) for name in set(set_of_job.values())}
        run_requests = []
        with warehouse_of(context).engine.begin() as conn:
            wanted = tenants_by_set(conn)
            for request in pending_requests(conn):
                # ids come back after deletes or a new warehouse; the request time makes the key unique
                run_key = f"sync-request:{request['id']}:{request['requested_at']:%Y%m%dT%H%M%S%f}"
                job, tenant = request["job"], request["tenant_id"]
                if job in known and tenant not in wanted[set_of_job[job]]:
                    context.log.warning(f"sync request {request['id']}: tenant {tenant!r} is not active or not "
                                        f"connected to a system {job} syncs; rejected")
                    mark_launched(conn, request["id"], run_key, status="rejected")
                    close_progress(conn, request["id"], "failed", f"tenant {tenant!r} is not active or not connected "
                                   f"to a system {job} syncs")
                elif job in known and tenant not in partitions[set_of_job[job]]:
                    context.log.info(f"sync request {request['id']}: tenant {tenant!r} not yet a partition of "
                                     f"{set_of_job[job]}; waiting for tenant discovery to add it")
                elif job in known:
                    run_requests.append(dg.RunRequest(
                        job_name=request["job"], partition_key=request["tenant_id"], run_key=run_key,
                        tags=_tags(request),
                    ))
                    mark_launched(conn, request["id"], run_key)
                else:
                    context.log.warning(f"sync request {request['id']}: unknown job {request['job']!r}")
                    mark_launched(conn, request["id"], run_key, status="rejected")
                    close_progress(conn, request["id"], "failed", f"unknown job {request['job']!r}")
            run_requests += _lost(context, instance, conn, partitions)
            for request_id in close_ended(instance, conn):
                context.log.info(f"sync request {request_id}: its run ended; progress closed")
        return dg.SensorResult(run_requests=run_requests)

    def _lost(context: dg.SensorEvaluationContext, instance: dg.DagsterInstance, conn,
              partitions: Mapping[str, set[str]]) -> list[dg.RunRequest]:
        """A request is marked launched when this sensor hands it to the daemon. Once its run
        exists it is marked started; one still without a run after ``LOST_AFTER`` was lost on
        the way (the daemon stopped in between) and is asked for again under the same run key (a
        run that does exist by then makes Dagster skip the repeat)."""
        again, started = [], []
        for request in launched_before(conn, now_utc() - LOST_AFTER):
            if instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": request["run_key"]}), limit=1):
                started.append(request["id"])
            elif request["job"] in known and request["tenant_id"] not in partitions[set_of_job[request["job"]]]:
                context.log.warning(f"sync request {request['id']}: its run never started and tenant "
                                    f"{request['tenant_id']!r} is no partition any more; rejected")
                mark_launched(conn, request["id"], request["run_key"], status="rejected")
                close_progress(conn, request["id"], "failed", f"tenant {request['tenant_id']!r} is no partition any more")
            elif request["job"] in known:
                context.log.warning(f"sync request {request['id']}: its run never started; asking again")
                again.append(dg.RunRequest(
                    job_name=request["job"], partition_key=request["tenant_id"], run_key=request["run_key"],
                    tags=_tags(request)))
        mark_started(conn, started)
        return again

    return sync_requests
