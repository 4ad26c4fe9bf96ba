"""The progress a run reports for the manual sync it serves (the ``storehouse/sync_request`` run
tag the sync-request sensor sets); nothing for a run no one asked for by hand."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from resources.warehouse import WarehouseResource
from warehouse.sync_progress import NO_PROGRESS, TAG, NoProgress, ProgressWriter


@contextmanager
def run_progress(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[Any]:
    """The run's :class:`ProgressWriter` (a failure inside marks the manual sync failed), or
    ``NO_PROGRESS``."""
    tag = context.run.tags.get(TAG, "")
    writer = ProgressWriter.open(warehouse.engine, int(tag), context.run.run_id) if tag.isdigit() else None
    if writer is None:
        yield NO_PROGRESS
        return
    try:
        yield writer
    except BaseException as exc:
        writer.fail(getattr(exc, "description", None) or f"{type(exc).__name__}: {exc}")
        raise
    writer.flush()


def for_mode(progress: ProgressWriter | NoProgress, incremental: Callable, recovery: Callable) -> Callable:
    """The sync step the manual sync's mode asks for (incremental unless it is a recovery)."""
    if getattr(progress, "mode", "incremental") == "recovery":
        return functools.partial(recovery, date_from=progress.date_from, date_to=progress.date_to)
    return incremental
