"""POS webhooks become inventory refreshes: one run per tenant, however many events arrived.

The API records each accepted inventory-affecting event with ``refresh = 'pending'``. Every few
seconds this sensor takes the pending events, groups them by tenant and asks for one
inventory-refresh run per tenant (``run_key`` names the batch of events it covers). When a run of
that job for that tenant is still queued, its not-yet-read data already includes the change, so
the events are attached to it instead of starting another. Tenant discovery alone adds the
partitions: events of a tenant connected to a POS but not yet a partition of ``pos_tenants`` stay
pending (said in the log) until discovery has added it; those of a tenant no longer active or no
longer on a POS need no refresh.
"""

from collections import defaultdict
from collections.abc import Sequence

import dagster as dg
import sqlalchemy as sa

from assets.partitions import pos_partitions
from sensors.tenants import tenants_by_set
from sensors.tick_context import instance_of, warehouse_of
from warehouse.tables.pos_events import REFRESH_NOT_NEEDED, REFRESH_PENDING, REFRESH_REQUESTED, pos_webhook_events
from warehouse.types import now_utc

SENSOR_NAME = "pos_webhook_inventory"
INVENTORY_JOB = "pos_inventory_refresh"
BATCH_LIMIT = 10_000  # events read per tick; the rest wait for the next one
NOT_YET_STARTED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]


def pending_events(conn: sa.Connection, limit: int = BATCH_LIMIT) -> dict[str, list[int]]:
    """Ids of events still waiting for a refresh, oldest first, by tenant."""
    t = pos_webhook_events.c
    by_tenant: dict[str, list[int]] = defaultdict(list)
    for event_id, tenant_id in conn.execute(
        sa.select(t.id, t.tenant_id).where(t.refresh == REFRESH_PENDING).order_by(t.id).limit(limit)
    ):
        by_tenant[tenant_id].append(event_id)
    return dict(by_tenant)


def mark_events(conn: sa.Connection, ids: Sequence[int], refresh: str, run_key: str | None) -> None:
    t = pos_webhook_events
    conn.execute(sa.update(t).where(t.c.id.in_(list(ids))).values(refresh=refresh, run_key=run_key, processed_at=now_utc()))


def batch_run_key(tenant_id: str, ids: Sequence[int]) -> str:
    """Stable for one batch, so a repeated evaluation cannot launch the same refresh twice."""
    return f"pos-webhook:{tenant_id}:{min(ids)}-{max(ids)}:{len(ids)}"


def queued_run_key(instance: dg.DagsterInstance, job_name: str, tenant_id: str) -> str | None:
    """The run key of a run of ``job_name`` for this tenant that has not started yet, if any."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, statuses=NOT_YET_STARTED, tags={"dagster/partition": tenant_id}), limit=1,
    )
    if not runs:
        return None
    return runs[0].tags.get("dagster/run_key") or f"run:{runs[0].run_id}"


def build_pos_webhook_sensor(job_name: str = INVENTORY_JOB) -> dg.SensorDefinition:
    """The sensor requesting ``job_name`` (the tenant's inventory refresh, found by name in the Definitions)."""

    @dg.sensor(
        name=SENSOR_NAME,
        job_name=job_name,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Refreshes a tenant's inventory after POS stock webhooks; one run per tenant per batch.",
    )
    def pos_webhook_inventory(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        instance = instance_of(context)
        existing = set(instance.get_dynamic_partitions(pos_partitions.name))
        run_requests = []
        with warehouse_of(context).engine.begin() as conn:
            on_pos = tenants_by_set(conn)[pos_partitions.name]
            for tenant_id, ids in pending_events(conn).items():
                if tenant_id not in on_pos:
                    # a tenant removed (or its POS) after the event arrived: nothing left to refresh
                    mark_events(conn, ids, REFRESH_NOT_NEEDED, None)
                    continue
                queued = queued_run_key(instance, job_name, tenant_id)
                if queued is not None:
                    mark_events(conn, ids, REFRESH_REQUESTED, queued)
                    context.log.info(f"{tenant_id}: {len(ids)} event(s) covered by queued run {queued}")
                    continue
                if tenant_id not in existing:
                    context.log.info(f"{tenant_id}: {len(ids)} event(s) wait for tenant discovery to add its "
                                     f"{pos_partitions.name} partition")
                    continue
                run_key = batch_run_key(tenant_id, ids)
                run_requests.append(dg.RunRequest(
                    job_name=job_name, partition_key=tenant_id, run_key=run_key,
                    tags={"storehouse/trigger": "pos_webhook", "storehouse/events": str(len(ids))},
                ))
                mark_events(conn, ids, REFRESH_REQUESTED, run_key)
        return dg.SensorResult(run_requests=run_requests)

    return pos_webhook_inventory
