"""The progress a run reports for the manual sync it serves (the ``storehouse/sync_request`` run
tag the sync-request sensor sets); none for a run no one asked for by hand."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg

from resources.warehouse import WarehouseResource
from syncing.progress_writer import ProgressWriter
from warehouse.sync_progress import TAG


@contextmanager
def run_progress(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 last: bool = False) -> Iterator[ProgressWriter | None]:
    """The run's ``ProgressWriter`` (a failure inside marks the manual sync failed; ``last``: the
    asset that ends the sync marks it succeeded), or None: the sync then reports to nobody."""
    tag = context.run.tags.get(TAG, "")
    writer = ProgressWriter.open(warehouse.engine, int(tag), context.run.run_id) if tag.isdigit() else None
    if writer is None:
        yield None
        return
    try:
        yield writer
    except BaseException as exc:
        writer.fail(getattr(exc, "description", None) or f"{type(exc).__name__}: {exc}")
        raise
    if last:
        writer.succeed()
    else:
        writer.flush()


def for_mode(progress: ProgressWriter | None, incremental: Callable, recovery: Callable) -> Callable:
    """The sync step the manual sync's mode asks for (incremental unless it is a recovery)."""
    if progress is not None and progress.mode == "recovery":
        return functools.partial(recovery, date_from=progress.date_from, date_to=progress.date_to)
    return incremental
