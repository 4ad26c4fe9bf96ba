"""Uploads and slices (the seed's ``saveTmpFile``, ``requireTmpFile``, ``POST /api/quick-order/slice``),
run off the request path.

A request only records what to slice (status ``running``, due now) and answers; worker threads in
every API process (:meth:`SliceService.start_worker`, like the shop's provisioning workers) take due
slices under two leases, a slicer slot and the file's row (:mod:`studio.slicing.leases`), so
``SLICER_CONCURRENCY`` holds across processes and no file is sliced twice at once. Each claim is one
attempt, counted in ``metadata.attempts``: a run that fails, times out, or dies with its process is
retried after a backoff, and after ``1 + retries`` attempts (or at once when the slicer is disabled
or missing) the mesh estimate answers, flagged ``fallback: true`` with the error. Results are cached
per studio by (model hash, settings, profiles); a cached slice completes without running.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from commerce.leases import Heartbeat, Lease
from commerce.worker import Poller
from resources.storage import TMP, NotFound, Storage, download_name, safe_filename, tmp_key
from studio.slicing import catalog, estimate, mesh, runner
from studio.slicing.leases import FileLeases, Slots
from studio.slicing.options import SliceOptions
from studio.slicing.orders import ordered
from studio.slicing.settings import SlicerSettings
from warehouse.tables.studio_print import studio_slice_cache as cache, studio_tmp_files as files
from warehouse.types import now_utc

log = logging.getLogger("storehouse.studio.slicing")
TERMINAL = ("completed", "failed")


class FileNotFound(LookupError):
    pass


class SliceConflict(RuntimeError):
    """A slice with other settings is running on this file."""


class DoesNotFit(ValueError):
    """The model is larger than the chosen printer's build volume."""


class SliceService:
    def __init__(self, engine: sa.Engine, storage: Storage, settings: SlicerSettings | None = None,
                 heartbeat: Heartbeat | None = None) -> None:
        self.engine, self.storage = engine, storage
        self.settings = settings or SlicerSettings()
        self.slots = Slots(engine, self.settings.concurrency)
        self.leases = FileLeases(engine)
        self._own_heartbeat = heartbeat is None
        self.heartbeat = heartbeat or Heartbeat(self.settings.lease_s)
        self._poller: Poller | None = None
        self._closing = threading.Event()

    # -- uploads -------------------------------------------------------------------------------
    def upload(self, tenant_id: str, user_id: str, filename: str, data: bytes) -> dict[str, Any]:
        """Validate, store and register a model; :class:`mesh.InvalidModel` leaves nothing behind."""
        name = download_name(filename)  # shown as the client named it; the key holds its safe_filename
        info, kind = mesh.inspect(data, name, max_bytes=self.settings.max_upload_bytes,
                                  max_triangles=self.settings.max_triangles)
        key = tmp_key(tenant_id, user_id, name)
        self.storage.put(TMP, key, data, mesh.MIME[kind])
        meta = {"attempts": 0, "settings": None, "metrics": None, "fallback": False, "error": None,
                "output": None, "notes": [], "mesh": info.as_dict()}
        try:
            with self.engine.begin() as conn:
                file_id = conn.execute(sa.insert(files).values(
                    tenant_id=tenant_id, user_id=user_id, storage_key=key, filename=name, size_bytes=len(data),
                    mime_type=mesh.MIME[kind], sha256=hashlib.sha256(data).hexdigest(), status="idle",
                    metadata=meta).returning(files.c.id)).scalar_one()
        except BaseException:
            self.storage.delete(TMP, [key])
            raise
        return self.get(tenant_id, file_id)

    def get(self, tenant_id: str, file_id: int, owner: str | None = None) -> dict[str, Any]:
        """The file's row; ``owner``: only if that user uploaded it (a client sees only their own)."""
        query = sa.select(files).where(files.c.tenant_id == tenant_id, files.c.id == file_id)
        if owner is not None:
            query = query.where(files.c.user_id == owner)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise FileNotFound(f"no file {file_id}")
        return dict(row._mapping)

    # -- requests ------------------------------------------------------------------------------
    def request_slice(self, tenant_id: str, file_id: int, options: SliceOptions, *, printer_id: int | None = None,
                      material_id: int | None = None, owner: str | None = None) -> dict[str, Any]:
        """Ask for a slice: due now, or completed at once from the cache. Asking again for the same
        slice while it runs changes nothing; other settings while it runs: :class:`SliceConflict`."""
        row = self.get(tenant_id, file_id, owner)
        if ordered(row["metadata"]):
            raise SliceConflict("this model is on a quote already: its slice is the one the quote was priced by; "
                                "upload it again to slice it otherwise")
        with self.engine.connect() as conn:
            printer = catalog.printer(conn, tenant_id, printer_id)
            material = catalog.material(conn, tenant_id, material_id)
        info = mesh.MeshInfo.from_dict(row["metadata"]["mesh"])
        if not mesh.fits(info.size_mm, printer.build_mm):
            raise DoesNotFit(f"The model is {mesh.size_text(info.size_mm)}; the printer {printer.name!r} builds at "
                             f"most {mesh.size_text(printer.build_mm)}.")
        wanted = {"options": options.model_dump(by_alias=True), "printerId": printer.id, "materialId": material.id}
        if row["status"] == "running":
            if row["metadata"].get("settings") == wanted:
                return row
            raise SliceConflict("a slice with other settings is running on this file; wait for it")
        key = cache_key(row["sha256"], options, (printer.profile, material.profile), printer.build_mm,
                        density=material.density)
        meta = {**row["metadata"], "attempts": 0, "settings": wanted, "metrics": None, "fallback": False,
                "error": None, "output": None, "notes": [], "cached": False, "supportStyle": None}
        with self.engine.begin() as conn:
            hit = conn.execute(sa.select(cache).where(cache.c.tenant_id == tenant_id, cache.c.cache_key == key)).first()
            if hit is not None:
                meta.update(metrics={"grams": float(hit.grams), "timeSec": hit.time_s}, notes=hit.notes, cached=True,
                            supportStyle=(hit.settings or {}).get("supportStyle"),
                            output=hit.gcode_key if hit.gcode_key and self.storage.exists(TMP, hit.gcode_key) else None)
                values = {"status": "completed", "next_run_at": None}
            else:
                values = {"status": "running", "next_run_at": now_utc()}
            done = conn.execute(sa.update(files).where(files.c.id == row["id"], files.c.status != "running")
                                .values(metadata=meta, lease_token=None, lease_expires_at=None, updated_at=now_utc(),
                                        **values))
        if done.rowcount == 0:  # another request started it between our read and write
            return self.request_slice(tenant_id, file_id, options, printer_id=printer_id, material_id=material_id,
                                      owner=owner)
        if self._poller and values["status"] == "running":
            self._poller.wake()
        return self.get(tenant_id, file_id)

    # -- the worker ----------------------------------------------------------------------------
    def run_due(self) -> int:
        """Run one due slice under a slot, if a slot is free; how many ran (0 or 1)."""
        if self._closing.is_set() or not self.leases.any_due():
            return 0
        s = self.settings
        slot = self.slots.claim(s.lease_s)
        if slot is None:
            return 0
        try:
            claimed = self.leases.claim(s.lease_s)
            if claimed is None:
                return 0
            lease, row, meta = claimed
            with self.heartbeat.hold(self.slots, slot), self.heartbeat.hold(self.leases, lease):
                self._run(lease, row, meta)
            return 1
        finally:
            self.slots.release(slot)

    def _run(self, lease: Lease, row: Any, meta: dict[str, Any]) -> None:
        """One attempt (already counted in ``meta`` by the claim) on the leased ``row``."""
        attempts = meta["attempts"]
        s = self.settings
        options = SliceOptions(**meta["settings"]["options"])
        try:
            data = self.storage.get(TMP, row.storage_key)
        except NotFound:
            self._finish(lease, "failed", meta, error="the model is no longer stored")
            return
        if s.disable:
            return self._fallback(lease, row, meta, data, options, "the slicer is disabled (SLICER_DISABLE)")
        if attempts > 1 + s.retries:  # the earlier attempts died with their process
            return self._fallback(lease, row, meta, data, options,
                                  meta.get("error") or "the slicer did not finish (its worker stopped)")
        with self.engine.connect() as conn:
            printer = catalog.printer(conn, row.tenant_id, meta["settings"]["printerId"])
            material = catalog.material(conn, row.tenant_id, meta["settings"]["materialId"])
        profiles = (printer.profile, material.profile)
        with runner.workdir() as work:
            model = Path(work) / ("model." + mesh.kind_of(row.filename))
            model.write_bytes(data)
            try:
                result = runner.slice_model(model, Path(work), options, bin_name=s.bin, timeout_s=s.timeout_s,
                                            profiles=profiles, build_mm=printer.build_mm,
                                            density=float(material.density), stop=lambda: self._stopping(lease))
            except runner.SlicerError as exc:
                if exc.kind == "stopped":
                    return self._give_back(lease, meta)
                log.warning("slice of tmp file %s, attempt %s: %s", row.id, attempts, exc)
                if exc.kind == "missing" or attempts >= 1 + s.retries:
                    return self._fallback(lease, row, meta, data, options, str(exc))
                meta["error"] = str(exc)
                self._write(lease, metadata=meta, lease_token=None, lease_expires_at=None,
                            next_run_at=now_utc() + dt.timedelta(seconds=s.retry_backoff_s * 2 ** (attempts - 1)))
                return
            key = cache_key(row.sha256, options, profiles, printer.build_mm, density=material.density)
            gcode_key = output_key(row.storage_key, key)
            self.storage.put(TMP, gcode_key, result.gcode_path.read_bytes(), "text/x.gcode")
        metrics = {"grams": result.metrics.grams, "timeSec": result.metrics.time_s}
        meta.update(metrics=metrics, fallback=False, error=None, output=gcode_key, notes=result.notes,
                    supportStyle=result.support_style)
        with self.engine.begin() as conn:
            if self._finish_in(conn, lease, "completed", meta):
                # One upsert: a row of this key (another file's slice, or one whose G-code
                # housekeeping removed) takes this slice's figures and G-code.
                insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(cache)
                values = dict(settings={**meta["settings"], "supportStyle": result.support_style},
                              profile=profile_text(profiles, printer.build_mm), grams=result.metrics.grams,
                              time_s=result.metrics.time_s, slicer=s.bin[:100], notes=result.notes,
                              gcode_key=gcode_key)
                conn.execute(insert.values(tenant_id=row.tenant_id, cache_key=key, model_sha256=row.sha256, **values)
                             .on_conflict_do_update(index_elements=[cache.c.tenant_id, cache.c.cache_key],
                                                    set_=values))

    def _stopping(self, lease: Lease) -> bool:
        """Stop the slicer: the service is closing, or the file's lease was taken over (ours ran out)."""
        return self._closing.is_set() or self.heartbeat.lost(lease)

    def _give_back(self, lease: Lease, meta: dict) -> None:
        """A run stopped by its worker: due again at once, the attempt not counted (no-op if the
        lease was already lost: the new holder has the file)."""
        meta["attempts"] = max(0, int(meta["attempts"]) - 1)
        self._write(lease, metadata=meta, lease_token=None, lease_expires_at=None, next_run_at=now_utc())

    def _fallback(self, lease: Lease, row: Any, meta: dict, data: bytes, options: SliceOptions, error: str) -> None:
        with self.engine.connect() as conn:
            density = catalog.material(conn, row.tenant_id, meta["settings"]["materialId"]).density
        # Read as it is (no vertex merging: the estimate needs faces only); the volume measured at
        # upload is the model's own even where the mesh is open.
        model = mesh.read(data, mesh.kind_of(row.filename), process=False)  # in mm, as measured at upload
        found = estimate.estimate(model, options, float(density),
                                  volume_mm3=mesh.MeshInfo.from_dict(meta["mesh"]).volume_mm3)
        meta.update(metrics={"grams": found.grams, "timeSec": found.time_s}, fallback=True, output=None,
                    notes=estimate_notes(options), supportStyle=None)
        self._finish(lease, "completed", meta, error=error)

    def _finish(self, lease: Lease, status: str, meta: dict, error: str | None = None) -> None:
        meta["error"] = error
        with self.engine.begin() as conn:
            self._finish_in(conn, lease, status, meta)

    def _finish_in(self, conn: sa.Connection, lease: Lease, status: str, meta: dict) -> bool:
        return conn.execute(sa.update(files).where(*FileLeases.held(lease)).values(
            status=status, metadata=meta, lease_token=None, lease_expires_at=None, next_run_at=None,
            updated_at=now_utc())).rowcount == 1

    def _write(self, lease: Lease, **values: Any) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(sa.update(files).where(*FileLeases.held(lease))
                                .values(updated_at=now_utc(), **values)).rowcount == 1

    # -- lifecycle -----------------------------------------------------------------------------
    def start_worker(self) -> "SliceService":
        s = self.settings
        runner.sweep_workdirs()  # the run folders of workers killed mid-slice
        self._poller = Poller("slicing", self.run_due, s.worker_threads, s.poll_s).start()
        return self

    def close(self) -> None:
        """Stop the workers: running slicers are killed (their files fall due again at once, for
        the next worker) and their folders removed before this returns."""
        self._closing.set()
        if self._poller:
            self._poller.stop()
        if self._own_heartbeat:
            self.heartbeat.close()


def cache_key(model_sha256: str, options: SliceOptions, profiles: tuple[Path, ...],
              build_mm: tuple[float, float, float], *, density: Decimal | float) -> str:
    """The result's identity: the model, the settings, the profiles' content (an edited .ini is
    another slice), the printer's build volume (the bed it was arranged and sliced on) and the
    material's density (the slicer's grams are its volume times that density)."""
    digest = hashlib.sha256(f"{model_sha256}|{options.canonical()}".encode())
    for profile in profiles:
        digest.update(b"|" + profile.read_bytes())
    digest.update(("|bed " + "x".join(f"{float(v):g}" for v in build_mm)).encode())
    digest.update(f"|density {float(density):g}".encode())
    return digest.hexdigest()


def output_key(storage_key: str, slice_key: str) -> str:
    """Where one slice's G-code is stored: beside its model, named by the slice's cache key, so a
    re-slice with other settings writes a new object and never overwrites the G-code a cache row of
    the old settings points at (``{tenant}/{user}/{uuid}/cube.3f9a….gcode``; housekeeping removes the
    folder with its file)."""
    folder, stored_name = storage_key.rsplit("/", 1)
    stem = Path(stored_name).stem[:80]
    return f"{folder}/{safe_filename(f'{stem}.{slice_key[:16]}.gcode')}"


def profile_text(profiles: tuple[Path, ...], build_mm: tuple[float, float, float]) -> str:
    """The cache row's ``profile``: the .ini files and the bed, e.g. ``a.ini,b.ini,bed 250x210x210``."""
    return ",".join([*(p.name for p in profiles), "bed " + "x".join(f"{float(v):g}" for v in build_mm)])[:200]


def estimate_notes(options: SliceOptions) -> list[str]:
    """What a fallback's figures are: the reason itself is the file's ``error``."""
    notes = ["grams and time estimated from the model's shape: the slicer did not slice it"]
    if options.supports.enabled:
        notes.append(f"{options.supports.pattern} supports estimated as columns under overhangs past "
                     f"{options.supports.angle}°")
    return notes


def public(row: dict[str, Any]) -> dict[str, Any]:
    """What a client or staff member sees of a tmp file (no storage key, no lease)."""
    meta = row["metadata"] or {}
    return {"id": row["id"], "filename": row["filename"], "sizeBytes": row["size_bytes"], "mimeType": row["mime_type"],
            "status": row["status"], "attempts": meta.get("attempts", 0), "settings": meta.get("settings"),
            "metrics": meta.get("metrics"), "fallback": bool(meta.get("fallback")), "error": meta.get("error"),
            "output": bool(meta.get("output")), "cached": bool(meta.get("cached")), "notes": meta.get("notes") or [],
            "mesh": meta.get("mesh"), "ordered": meta.get("ordered")}
