"""Manual sync requests (``storehouse sync --request``, later the API) become partition runs."""


from collections.abc import Sequence

import dagster as dg

from assets.partitions import TENANT_PARTITIONS, tenant_partitions
from resources.warehouse import WarehouseResource
from warehouse.syncs import mark_launched, pending_requests


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
                        tags={"storehouse/trigger": "sync_request", "storehouse/requested_by": request["requested_by"]},
                    ))
                    mark_launched(conn, request["id"], run_key)
                else:
                    context.log.warning(f"sync request {request['id']}: unknown job {request['job']!r}")
                    mark_launched(conn, request["id"], run_key, status="rejected")
        partitions = [tenant_partitions.build_add_request(sorted(add))] if add else []
        return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=partitions)

    return sync_requests
