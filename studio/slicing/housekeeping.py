"""Housekeeping of the tmp bucket (issue 14): uploads untouched past the retention go, with their G-code.

Why "untouched" is ``updated_at``: a file re-sliced an hour ago is still being worked on, however
old its upload. A file is kept, whatever its age, while it is in use:

* a slice runs on it (``status`` running under a live lease): its worker is reading the model;
* it became an order file (``metadata.ordered``: the order, set when a quick order is made from it).

Each file goes in one transaction: its row is deleted first, under the same conditions (so a slice
or an order that took the file since it was read keeps it: the delete finds nothing, or sees the
flag and rolls back), then its objects, before the commit. A store that refuses leaves the row for
the next run; an object already gone is fine, and a row whose object is gone is simply removed, so
running it twice does what running it once did.

The objects are everything under the upload's own folder (``{tenant}/{user}/{uuid}/``: the model and
the G-code sliced from it) plus its ``metadata.output``, except a G-code another, kept file points
at (a slice-cache hit hands one file the G-code sliced for another). A cache row whose G-code went
loses its ``gcode_key``: the next hit slices anew rather than link to nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from resources.storage import TMP, Storage, StorageError
from studio.slicing import orders
from warehouse.tables.studio_print import studio_slice_cache as cache, studio_tmp_files as files
from warehouse.types import now_utc


@dataclasses.dataclass
class TenantCleanup:
    """What one studio's run removed (and what it left, and why)."""

    files: int = 0
    bytes: int = 0
    objects: int = 0
    kept_running: int = 0
    kept_ordered: int = 0
    errors: int = 0


@dataclasses.dataclass
class Cleanup:
    cutoff: dt.datetime
    tenants: dict[str, TenantCleanup] = dataclasses.field(default_factory=dict)

    @property
    def files(self) -> int:
        return sum(t.files for t in self.tenants.values())

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tenants.values())

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.tenants.values())


class _Ordered(Exception):
    """The row turned out to be an order's: its delete is rolled back."""


def ordered(meta: Any) -> bool:
    """Turned into an order file (``studio.slicing.orders`` records the order in ``metadata.ordered``)."""
    return isinstance(meta, dict) and bool(orders.ordered(meta))


def _live_slice(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(files.c.status == "running", files.c.lease_expires_at.is_not(None), files.c.lease_expires_at >= now)


def folder(storage_key: str) -> str:
    """The upload's own folder: ``{tenant}/{user}/{uuid}/``."""
    return storage_key.rsplit("/", 1)[0] + "/"


def clean_tmp_files(engine: sa.Engine, storage: Storage, retention_hours: int, *,
                    tenants: Iterable[str] | None = None, now: dt.datetime | None = None,
                    log: Callable[[str], None] = lambda _: None) -> Cleanup:
    """Delete the tmp files untouched for ``retention_hours`` (see the module) of every studio that
    has some, or of ``tenants`` only."""
    now = now or now_utc()
    report = Cleanup(cutoff=now - dt.timedelta(hours=retention_hours))
    query = sa.select(files.c.tenant_id).where(files.c.updated_at < report.cutoff).distinct()
    if tenants is not None:
        query = query.where(files.c.tenant_id.in_(list(tenants)))
    with engine.connect() as conn:
        tenants = conn.execute(query.order_by(files.c.tenant_id)).scalars().all()
    for tenant in tenants:
        report.tenants[tenant] = _clean_tenant(engine, storage, tenant, report.cutoff, now, log)
    return report


def _clean_tenant(engine: sa.Engine, storage: Storage, tenant: str, cutoff: dt.datetime, now: dt.datetime,
                  log: Callable[[str], None]) -> TenantCleanup:
    done = TenantCleanup()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(files.c.id, files.c.storage_key, files.c.status, files.c.metadata,
                                      files.c.updated_at, _live_slice(now).label("live"))
                            .where(files.c.tenant_id == tenant)).all()
    old = [r for r in rows if r.updated_at < cutoff and not r.live and not ordered(r.metadata)]
    done.kept_running = sum(1 for r in rows if r.updated_at < cutoff and r.live)
    done.kept_ordered = sum(1 for r in rows if r.updated_at < cutoff and not r.live and ordered(r.metadata))
    going = {r.id for r in old}
    kept_outputs = {(r.metadata or {}).get("output") for r in rows if r.id not in going} - {None}
    for row in old:
        try:
            removed = _delete_one(engine, storage, tenant, row, cutoff, now, kept_outputs)
        except _Ordered:
            done.kept_ordered += 1
            continue
        except StorageError as exc:  # the row stays (rolled back): the next run tries again
            done.errors += 1
            log(f"tenant {tenant}: tmp file {row.id} kept, the store refused: {type(exc).__name__}")
            continue
        if removed is None:  # taken by a slice, or changed, since we read it
            done.kept_running += 1
            continue
        done.files += 1
        done.objects += len(removed)
        done.bytes += sum(removed.values())
    return done


def _delete_one(engine: sa.Engine, storage: Storage, tenant: str, row: Any, cutoff: dt.datetime,
                now: dt.datetime, kept_outputs: set[str]) -> dict[str, int] | None:
    """Delete one file's row and objects in one transaction; the objects removed (key → bytes), or
    None when the row no longer qualifies."""
    with engine.begin() as conn:
        gone = conn.execute(
            sa.delete(files).where(files.c.tenant_id == tenant, files.c.id == row.id, files.c.updated_at < cutoff,
                                   sa.not_(_live_slice(now)))
            .returning(files.c.metadata, files.c.storage_key)).first()
        if gone is None:
            return None
        if ordered(gone.metadata):
            raise _Ordered  # leaves the transaction: the delete is rolled back
        objects = dict(storage.list(TMP, folder(gone.storage_key)))
        output = (gone.metadata or {}).get("output")
        if output and output not in objects:
            objects.update((k, size) for k, size in storage.list(TMP, output) if k == output)
        objects = {k: size for k, size in objects.items() if k not in kept_outputs}
        keys = sorted({*objects, gone.storage_key} - kept_outputs)
        storage.delete(TMP, keys)
        conn.execute(sa.update(cache).where(cache.c.tenant_id == tenant, cache.c.gcode_key.in_(keys))
                     .values(gcode_key=None))
        return objects
