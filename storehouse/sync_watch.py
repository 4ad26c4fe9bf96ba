"""``storehouse sync``'s progress bar: the manual sync's ``sync_progress`` row (the same one the
staff API streams) as a rich progress bar with the step and the counts, until it ends."""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from syncing.progress import MX_STEPS
from warehouse import sync_progress

POLL_S = 0.3


def counts(row: dict[str, Any]) -> str:
    s = row["stats"]
    rate = s.get("linkage_rate")
    cpt = s.get("calls_per_transaction")
    return (f"payments {s.get('payments_read', 0)} read, {s.get('payments_new', 0)} new, "
            f"{s.get('payments_updated', 0)} updated · invoices {s.get('invoices_fetched', 0)} · "
            f"linked {'-' if rate is None else f'{rate:.0%}'} · API calls {s.get('api_calls', 0)}"
            f"{'' if cpt is None else f' ({cpt}/tx)'} · quarantined {s.get('quarantined', 0)}"
            f" · errors {s.get('errors', 0)}")


def describe(row: dict[str, Any]) -> str:
    if row["status"] == "queued":
        return "queued: waiting for the sync_requests sensor"
    if not row["step"]:
        return "starting"
    return f"step {row['step']}/{len(MX_STEPS)}: {row['step_name']}"


def watch(engine: sa.Engine, tenant_id: str, request_id: int, console: Console,
          stop: threading.Event | None = None, timeout_s: float | None = None) -> dict[str, Any] | None:
    """Show the sync's progress until it ends (or ``stop`` is set, or ``timeout_s`` passed); the
    last row read."""
    stop = stop or threading.Event()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    row = None
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
               TextColumn("\n  {task.fields[counts]}"))
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"sync {request_id}", total=100, counts="")
        while True:
            with engine.connect() as conn:
                row = sync_progress.get(conn, tenant_id, request_id) or row
            if row is not None:
                bar.update(task, completed=row["percent"], description=describe(row), counts=counts(row))
                if row["status"] in sync_progress.DONE:
                    break
            if stop.is_set() or (deadline is not None and time.monotonic() > deadline):
                break
            stop.wait(POLL_S)
    return row
