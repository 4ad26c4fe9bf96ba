"""Tenant discovery: the one owner of the ``tenant`` partition set.

Reads the ``tenants`` table, adds partitions for new tenants, deletes partitions of removed
tenants, and asks for the first sync of every new connection (a new tenant's, or a system added
to a known tenant later) on the job of its system. New connections are those first seen since
the sensor's cursor; each first sync's run key names the connection's first-seen time, so a
tenant removed and added again gets its first sync again.
"""


import datetime as dt
import json
from collections.abc import Iterable, Mapping

import dagster as dg

from assets.partitions import TENANT_PARTITIONS, tenant_partitions
from resources.warehouse import WarehouseResource
from warehouse.tables.core import tenant_connections
from warehouse.tenants import active_tenant_ids

import sqlalchemy as sa


def partition_changes(existing: Iterable[str], active: Iterable[str]) -> tuple[list[str], list[str]]:
    """(partitions to add, partitions to delete) to make ``existing`` equal ``active``."""
    existing, active = set(existing), set(active)
    return sorted(active - existing), sorted(existing - active)


def reconcile_partitions(instance: dg.DagsterInstance, warehouse: WarehouseResource) -> tuple[list[str], list[str]]:
    """Apply the changes directly (used by the CLI before it runs a tenant in-process)."""
    with warehouse.engine.connect() as conn:
        active = active_tenant_ids(conn)
    add, remove = partition_changes(instance.get_dynamic_partitions(TENANT_PARTITIONS), active)
    if add:
        instance.add_dynamic_partitions(TENANT_PARTITIONS, add)
    for key in remove:
        instance.delete_dynamic_partition(TENANT_PARTITIONS, key)
    return add, remove


def build_tenant_discovery_sensor(jobs_by_system: Mapping[str, dg.JobDefinition]) -> dg.SensorDefinition:
    jobs = {job.name: job for job in jobs_by_system.values()}

    @dg.sensor(
        name="tenant_discovery",
        jobs=list(jobs.values()),
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Keeps the `tenant` partitions equal to the tenants table; first sync for new tenants.",
    )
    def tenant_discovery(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
        c = tenant_connections.c
        with warehouse.engine.connect() as conn:
            active = active_tenant_ids(conn)
            connections = conn.execute(sa.select(c.tenant_id, c.system, c.first_seen_at)).all()
        add, remove = partition_changes(context.instance.get_dynamic_partitions(TENANT_PARTITIONS), active)
        # The cursor: the newest first-seen time handled, and the connections seen at that time
        # (another may still arrive with the very same time).
        handled = json.loads(context.cursor) if context.cursor else None
        new_tenants = set(add)
        newest_new: dict[tuple[str, str], dt.datetime] = {}  # (tenant, job): its newest new connection
        for tenant_id, system, first_seen in connections:
            job = jobs_by_system.get(system)
            at = first_seen.isoformat()
            is_new = (at > handled["at"] or (at == handled["at"] and f"{tenant_id}:{system}" not in handled["seen"])
                      ) if handled else tenant_id in new_tenants
            if job is not None and tenant_id in active and is_new:
                key = (tenant_id, job.name)
                newest_new[key] = max(first_seen, newest_new.get(key, first_seen))
        # One first sync per tenant and job, however many of its systems (e.g. three eSIM providers)
        # were connected since the last tick.
        run_requests = [dg.RunRequest(job_name=job_name, partition_key=tenant_id,
                                      run_key=f"first-sync:{tenant_id}:{job_name}:{first_seen:%Y%m%dT%H%M%S%f}",
                                      tags={"storehouse/trigger": "tenant_discovery"})
                        for (tenant_id, job_name), first_seen in newest_new.items()]
        newest = max((first_seen.isoformat() for *_, first_seen in connections), default=None)
        cursor = handled and json.dumps(handled)
        if newest is not None:
            cursor = json.dumps({"at": newest, "seen": sorted(f"{t}:{s}" for t, s, first_seen in connections
                                                             if first_seen.isoformat() == newest)})
        requests = []
        if add:
            requests.append(tenant_partitions.build_add_request(add))
        if remove:
            requests.append(tenant_partitions.build_delete_request(remove))
        return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=requests,
                               cursor=cursor)

    return tenant_discovery
