"""Tenant discovery: the one owner of the tenant partition sets (``assets/partitions.py``).

Reads the ``tenants`` table and their connections; a tenant is a partition of a system family's
set while it is active and connected to one of the family's systems. It adds the partitions of
new connections, deletes those of removed tenants (or of a family no longer connected), and asks
for the first sync of every new connection (a new tenant's, or a system added to a known tenant
later) on the job of its system. No other code adds or deletes these partitions: the sync-request
and POS-webhook sensors and the schedules wait for a tenant discovery has not yet partitioned. New connections are those first seen since
the sensor's cursor; each first sync's run key names the connection's first-seen time, so a
tenant removed and added again gets its first sync again.
"""


import datetime as dt
import json
from collections.abc import Iterable, Mapping

import dagster as dg
import sqlalchemy as sa

from assets.partitions import FAMILY_OF_SYSTEM, PARTITION_SETS
from resources.warehouse import WarehouseResource
from sensors.tick_context import instance_of, warehouse_of
from warehouse.tables.core import tenant_connections, tenants

PARTITION_SETS_BY_NAME = {p.name: p for p in PARTITION_SETS.values()}


def set_of(system: str) -> str:
    """The name of the partition set a connection to ``system`` puts its tenant in."""
    return PARTITION_SETS[FAMILY_OF_SYSTEM[system]].name


def partition_changes(existing: Iterable[str], active: Iterable[str]) -> tuple[list[str], list[str]]:
    """(partitions to add, partitions to delete) to make ``existing`` equal ``active``."""
    existing, active = set(existing), set(active)
    return sorted(active - existing), sorted(existing - active)


def tenants_by_set(conn: sa.Connection) -> dict[str, set[str]]:
    """The tenants each partition set should hold (by set name): active and connected to one of its systems."""
    c = tenant_connections.c
    wanted: dict[str, set[str]] = {p.name: set() for p in PARTITION_SETS.values()}
    for tenant_id, system in conn.execute(sa.select(c.tenant_id, c.system).join(
            tenants, tenants.c.tenant_id == c.tenant_id).where(tenants.c.status == "active")):
        if system in FAMILY_OF_SYSTEM:
            wanted[set_of(system)].add(tenant_id)
    return wanted


def set_changes(instance: dg.DagsterInstance, wanted: Mapping[str, Iterable[str]]
                ) -> dict[str, tuple[list[str], list[str]]]:
    """(to add, to delete) per partition set with something to change."""
    changes = {name: partition_changes(instance.get_dynamic_partitions(name), keys) for name, keys in wanted.items()}
    return {name: change for name, change in changes.items() if change != ([], [])}


def reconcile_partitions(instance: dg.DagsterInstance, warehouse: WarehouseResource
                         ) -> dict[str, tuple[list[str], list[str]]]:
    """Apply the changes directly (used by the CLI before it runs a tenant in-process)."""
    with warehouse.engine.connect() as conn:
        wanted = tenants_by_set(conn)
    changes = set_changes(instance, wanted)
    for name, (add, remove) in changes.items():
        if add:
            instance.add_dynamic_partitions(name, add)
        for key in remove:
            instance.delete_dynamic_partition(name, key)
    return changes


def build_tenant_discovery_sensor(jobs_by_system: Mapping[str, dg.JobDefinition]) -> dg.SensorDefinition:
    jobs = {job.name: job for job in jobs_by_system.values()}

    @dg.sensor(
        name="tenant_discovery",
        jobs=list(jobs.values()),
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Keeps each system family's tenant partitions equal to the tenants connected to it; "
        "first sync for new connections.",
    )
    def tenant_discovery(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        instance = instance_of(context)
        c = tenant_connections.c
        with warehouse_of(context).engine.connect() as conn:
            wanted = tenants_by_set(conn)
            connections = conn.execute(sa.select(c.tenant_id, c.system, c.first_seen_at)).all()
        changes = set_changes(instance, wanted)
        # The cursor: the newest first-seen time handled, and the connections seen at that time
        # (another may still arrive with the very same time).
        handled = json.loads(context.cursor) if context.cursor else None
        new = {(tenant, name) for name, (add, _) in changes.items() for tenant in add}  # new to a set
        newest_new: dict[tuple[str, str], dt.datetime] = {}  # (tenant, job): its newest new connection
        for tenant_id, system, first_seen in connections:
            job = jobs_by_system.get(system)
            if job is None or tenant_id not in wanted[set_of(system)]:
                continue  # no job syncs it, or the tenant is not active
            at = first_seen.isoformat()
            is_new = (at > handled["at"] or (at == handled["at"] and f"{tenant_id}:{system}" not in handled["seen"])
                      ) if handled else (tenant_id, set_of(system)) in new
            if is_new:
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
        for name, (add, remove) in changes.items():
            if add:
                requests.append(PARTITION_SETS_BY_NAME[name].build_add_request(add))
            if remove:
                requests.append(PARTITION_SETS_BY_NAME[name].build_delete_request(remove))
        return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=requests,
                               cursor=cursor)

    return tenant_discovery
