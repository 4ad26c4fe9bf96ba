"""Abandoned syncs: a ``sync_runs`` row left ``running`` by a run or process that ended is closed.

A sync's row is written ``running`` when it starts and closed when it ends; a run that is
cancelled, fails outside the sync's own error handling, or whose process is killed leaves it
``running`` for ever. Every minute this closes such rows as ``abandoned``, with the reason:

- its Dagster run has ended (failed, canceled, or succeeded without finishing it);
- the process that ran it (``worker``, host:pid) is gone, when it ran on this host (an in-process
  ``storehouse sync`` killed mid-way leaves its Dagster run ``STARTED`` too);
- its run is in no record of this Dagster instance and it started over ``NOT_FOUND_AFTER`` ago.

``storehouse sync`` runs the same sweep before it starts, for deployments without the daemon.
"""

from __future__ import annotations

import datetime as dt
import os
import socket

import dagster as dg
import sqlalchemy as sa

from sensors.tick_context import instance_of, warehouse_of
from warehouse.syncs import OpenSync, close_abandoned, open_syncs
from warehouse.types import now_utc

NOT_FOUND_AFTER = dt.timedelta(hours=1)
ENDED = {dg.DagsterRunStatus.FAILURE: "failed", dg.DagsterRunStatus.CANCELED: "was canceled",
         dg.DagsterRunStatus.SUCCESS: "ended without finishing it"}


def process_gone(worker: str | None, host: str | None = None) -> bool:
    """Whether ``worker`` (host:pid) names a process of this host that no longer exists."""
    name, _, pid = (worker or "").rpartition(":")
    if name != (host or socket.gethostname()[:100]) or not pid.isdigit():
        return False  # another host's process: its run's status tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, another user's
        return False
    return False


def why_abandoned(sync: OpenSync, run: dg.DagsterRun | None, now: dt.datetime) -> str | None:
    """The reason to close ``sync`` as abandoned, or None while it may still be running."""
    if run is not None and run.status in ENDED:
        return f"abandoned: its Dagster run {run.run_id} {ENDED[run.status]}"
    if process_gone(sync.worker):
        return f"abandoned: the process running it ({sync.worker}) is gone"
    if sync.run_id and run is None and now - sync.started_at > NOT_FOUND_AFTER:
        return f"abandoned: its Dagster run {sync.run_id} is not in this Dagster instance"
    return None


def close_abandoned_syncs(instance: dg.DagsterInstance, engine: sa.Engine,
                          now: dt.datetime | None = None) -> dict[int, str]:
    """Close every abandoned sync; returns {sync_runs id: reason} of those closed."""
    with engine.connect() as conn:
        syncs = open_syncs(conn)
    run_ids = sorted({s.run_id for s in syncs if s.run_id})
    runs = {r.run_id: r for r in instance.get_runs(dg.RunsFilter(run_ids=run_ids))} if run_ids else {}
    now = now or now_utc()
    reasons = {s.id: reason for s in syncs if (reason := why_abandoned(s, runs.get(s.run_id or ""), now))}
    if reasons:
        with engine.begin() as conn:
            close_abandoned(conn, reasons)
    return reasons


@dg.sensor(
    name="abandoned_syncs",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Closes sync_runs rows left `running` by a run that ended or a process that died, as abandoned.",
)
def abandoned_syncs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    closed = close_abandoned_syncs(instance_of(context), warehouse_of(context).engine)
    for sync_id, reason in closed.items():
        context.log.warning(f"sync_runs {sync_id}: {reason}")
    return dg.SkipReason(f"closed {len(closed)} abandoned sync(s)" if closed else "no abandoned sync")
