"""Uploads and slices through the service on the real database (SQLite, and PostgreSQL when
DATABASE_URL names one), with the real PrusaSlicer where it is installed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import trimesh

from resources.storage import TMP
from studio.slicing import catalog, mesh, pricing, runner, samples, service as slicing
from studio.slicing.options import SliceOptions
from tests.slicing_world import (PRUSA, drain, intervals, make_studio, requires_slicer, script, service,
                                 timing_wrapper)
from tests.test_slicing_units import with_unit
from warehouse.tables.studio_print import studio_materials, studio_printers, studio_slice_cache, studio_slicer_slots, studio_tmp_files

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def studio(engine, tenant_id):
    return make_studio(engine, tenant_id)


def test_upload_is_validated_and_stored(engine, tenant_id, studio, tmp_path):
    svc = service(engine, tmp_path)
    row = svc.upload(tenant_id, "user-1", "../../etc/Cube part.stl", samples.stl(samples.cube()))
    assert row["status"] == "idle" and row["filename"] == "Cube part.stl" and row["mime_type"] == "model/stl"
    assert row["storage_key"].startswith(f"{tenant_id}/user-1/") and row["storage_key"].endswith("/Cube_part.stl")  # a safe name in the key (resources.storage)
    assert svc.storage.get(TMP, row["storage_key"]) == samples.stl(samples.cube())
    assert row["metadata"]["mesh"]["size_mm"] == [20.0, 20.0, 20.0]
    with pytest.raises(mesh.InvalidModel):
        svc.upload(tenant_id, "user-1", "bad.stl", b"solid nothing\nendsolid\n")
    with engine.connect() as conn:  # the refused upload left no row and no object
        count = conn.execute(sa.select(sa.func.count()).select_from(studio_tmp_files)
                             .where(studio_tmp_files.c.tenant_id == tenant_id)).scalar()
    assert count == 1 and len(svc.storage.list(TMP, tenant_id)) == 1
    with pytest.raises(slicing.FileNotFound):  # another user's file is not found for a client
        svc.get(tenant_id, row["id"], owner="user-2")
    with pytest.raises(slicing.FileNotFound):  # nor from another studio
        svc.get("another-studio", row["id"])


def test_model_larger_than_the_printer_is_refused_with_its_size(engine, tenant_id, studio, tmp_path):
    svc = service(engine, tmp_path)
    row = svc.upload(tenant_id, "u", "cube.stl", samples.stl(samples.cube()))
    with pytest.raises(slicing.DoesNotFit, match=r"20.0 x 20.0 x 20.0 mm.*18.0 x 18.0 x 18.0 mm"):
        svc.request_slice(tenant_id, row["id"], SliceOptions(), printer_id=studio["small_printer"])
    with pytest.raises(catalog.CatalogError):
        svc.request_slice(tenant_id, row["id"], SliceOptions(), printer_id=10**9)


def test_a_long_file_name_keeps_its_extension(engine, tenant_id, studio, tmp_path):
    """The name shown and the key's name are cut to their limits keeping ``.stl`` (resources.storage)."""
    svc = service(engine, tmp_path)
    row = svc.upload(tenant_id, "u", "bracket " + "v" * 300 + ".stl", samples.stl(samples.cube()))
    assert row["filename"].endswith(".stl") and row["filename"].startswith("bracket v") and len(row["filename"]) <= 200
    assert row["storage_key"].endswith(".stl") and " " not in row["storage_key"]
    assert row["metadata"]["mesh"]["size_mm"] == [20.0, 20.0, 20.0]


def test_a_3mf_in_centimetres_is_measured_and_estimated_in_millimetres(engine, tenant_id, studio, tmp_path):
    svc = service(engine, tmp_path, disable=True)
    in_mm = svc.upload(tenant_id, "u", "mm.3mf", samples.to_3mf(samples.cube()))
    in_cm = svc.upload(tenant_id, "u", "cm.3mf", with_unit(samples.to_3mf(samples.cube(2.0)), "centimeter"))
    assert in_cm["metadata"]["mesh"]["size_mm"] == [20.0, 20.0, 20.0]
    assert in_cm["metadata"]["mesh"]["volume_mm3"] == pytest.approx(8000)
    with pytest.raises(slicing.DoesNotFit, match=r"20.0 x 20.0 x 20.0 mm"):  # 20 mm, not 2: too big for the Mini
        svc.request_slice(tenant_id, in_cm["id"], SliceOptions(), printer_id=studio["small_printer"])
    for row in (in_mm, in_cm):
        svc.request_slice(tenant_id, row["id"], SliceOptions(), material_id=studio["material"])
    drain(svc)
    grams = [svc.get(tenant_id, row["id"])["metadata"]["metrics"]["grams"] for row in (in_mm, in_cm)]
    assert grams[0] > 3 and grams[1] == pytest.approx(grams[0], rel=0.01)  # the estimate of a 20 mm cube both times


@requires_slicer
def test_a_model_wider_than_the_profiles_bed_slices_on_a_larger_printer(engine, tenant_id, studio, tmp_path):
    """The profile's bed is 250 x 210 mm: a 260 mm bar is sliced for real on a 400 x 300 printer (its
    bed is given to PrusaSlicer), cached by that bed, and still refused by the 250 x 210 one."""
    with engine.begin() as conn:
        large = conn.execute(sa.insert(studio_printers).values(
            tenant_id=tenant_id, name="Large", hourly_rate=Decimal("6.00"), build_x_mm=400, build_y_mm=300,
            build_z_mm=300).returning(studio_printers.c.id)).scalar_one()
    svc = service(engine, tmp_path)
    bar = trimesh.creation.box((260, 30, 6))
    bar.apply_translation(-bar.bounds[0])
    row = svc.upload(tenant_id, "u", "bar.stl", samples.stl(bar))
    with pytest.raises(slicing.DoesNotFit, match=r"260.0 x 30.0 x 6.0 mm"):
        svc.request_slice(tenant_id, row["id"], SliceOptions(), printer_id=studio["printer"])
    svc.request_slice(tenant_id, row["id"], SliceOptions(), printer_id=large, material_id=studio["material"])
    drain(svc)
    meta = svc.get(tenant_id, row["id"])["metadata"]
    assert meta["fallback"] is False and meta["error"] is None and meta["output"], meta
    assert 15 < meta["metrics"]["grams"] < 58  # 46.8 cm³ at 15 % infill (58 g solid PLA)
    with engine.connect() as conn:
        profiles = conn.execute(sa.select(studio_slice_cache.c.profile).where(
            studio_slice_cache.c.tenant_id == tenant_id)).scalars().all()
    assert profiles == ["fff_generic_mk3.ini,pla_generic.ini,bed 400x300x300"]


@requires_slicer
def test_slice_with_prusaslicer_then_cache_then_price(engine, tenant_id, studio, tmp_path):
    svc = service(engine, tmp_path)
    opts = SliceOptions(layerHeight=0.2, infill=20)
    row = svc.upload(tenant_id, "u", "cube.stl", samples.stl(samples.cube()))
    asked = svc.request_slice(tenant_id, row["id"], opts, printer_id=studio["printer"], material_id=studio["material"])
    assert asked["status"] == "running"
    again = svc.request_slice(tenant_id, row["id"], opts, printer_id=studio["printer"], material_id=studio["material"])
    assert again["status"] == "running"  # the same request again: still the one slice
    with pytest.raises(slicing.SliceConflict):
        svc.request_slice(tenant_id, row["id"], SliceOptions(infill=50), printer_id=studio["printer"])
    drain(svc)
    done = svc.get(tenant_id, row["id"])
    meta = done["metadata"]
    assert done["status"] == "completed" and meta["fallback"] is False and meta["attempts"] == 1
    assert 3 < meta["metrics"]["grams"] < 6 and 600 < meta["metrics"]["timeSec"] < 3600
    gcode = svc.storage.get(TMP, meta["output"]).decode()
    assert "; filament used [g]" in gcode and meta["output"].endswith(".gcode") and "/cube." in meta["output"]

    # The same model uploaded again by someone else: answered from the cache, no slicer run.
    other = svc.upload(tenant_id, "v", "same.stl", samples.stl(samples.cube()))
    hit = svc.request_slice(tenant_id, other["id"], opts, printer_id=studio["printer"], material_id=studio["material"])
    assert hit["status"] == "completed" and hit["metadata"]["cached"] is True
    assert hit["metadata"]["metrics"] == meta["metrics"] and hit["metadata"]["attempts"] == 0

    lines = pricing.quick_order_lines(engine, tenant_id, [{"file_id": row["id"], "quantity": 2}])
    [line] = lines
    assert line["quantity"] == 2 and line["description"].startswith("3D print: cube.stl · PLA black, 0.2 mm layers")
    b = line["breakdown"]
    expected = (Decimal(b["material"]) + Decimal(b["machine"]) + Decimal(b["setup"])) * Decimal("1.4")
    assert abs(line["unit_price"] - max(expected, Decimal("15"))) <= Decimal("0.02")
    with pytest.raises(catalog.CatalogError):  # another studio cannot price it
        pricing.quick_order_lines(engine, "another", [{"file_id": row["id"]}])


@requires_slicer
def test_a_reslice_never_changes_the_gcode_the_cache_hands_out(engine, tenant_id, studio, tmp_path):
    """Re-slicing a file with other settings writes its G-code anew; the cache row of the first
    settings still hands out the first G-code (it was overwritten at the same key before)."""
    svc = service(engine, tmp_path)
    sparse, dense = SliceOptions(infill=10), SliceOptions(infill=90)
    row = svc.upload(tenant_id, "u", "cube.stl", samples.stl(samples.cube()))
    svc.request_slice(tenant_id, row["id"], sparse)
    drain(svc)
    first = svc.get(tenant_id, row["id"])["metadata"]
    svc.request_slice(tenant_id, row["id"], dense)
    drain(svc)
    second = svc.get(tenant_id, row["id"])["metadata"]
    assert second["output"] != first["output"] and second["metrics"]["grams"] > first["metrics"]["grams"]
    other = svc.upload(tenant_id, "v", "cube.stl", samples.stl(samples.cube()))
    hit = svc.request_slice(tenant_id, other["id"], sparse)["metadata"]
    assert hit["cached"] is True and hit["metrics"] == first["metrics"] and hit["output"] == first["output"]
    gcode = svc.storage.get(TMP, hit["output"]).decode()
    assert "; fill_density = 10%" in gcode and "; fill_density = 90%" not in gcode
    assert "; fill_density = 90%" in svc.storage.get(TMP, second["output"]).decode()


@requires_slicer
def test_the_materials_density_reaches_the_slicer(engine, tenant_id, studio, tmp_path):
    """A 3.0 g/cm³ material weighs 3.0 / 1.24 ≈ 2.4 times PLA for the same cube, and is its own cache entry."""
    with engine.begin() as conn:
        heavy = conn.execute(sa.insert(studio_materials).values(
            tenant_id=tenant_id, name="Steel-filled", cost_per_kg=Decimal("90.00"), density_g_cm3=Decimal("3.000"),
            colour="grey").returning(studio_materials.c.id)).scalar_one()
    svc = service(engine, tmp_path)
    grams = {}
    for material in (studio["material"], heavy):
        row = svc.upload(tenant_id, "u", "cube.stl", samples.stl(samples.cube()))
        asked = svc.request_slice(tenant_id, row["id"], SliceOptions(), material_id=material)
        assert asked["status"] == "running"  # the heavy material is not answered from PLA's cache row
        drain(svc)
        meta = svc.get(tenant_id, row["id"])["metadata"]
        assert meta["fallback"] is False
        grams[material] = meta["metrics"]["grams"]
    assert grams[heavy] / grams[studio["material"]] == pytest.approx(3.0 / 1.24, rel=0.03)


@requires_slicer
def test_supports_on_an_overhang_and_a_3mf(engine, tenant_id, studio, tmp_path):
    svc = service(engine, tmp_path)
    grams = {}
    for enabled in (False, True):
        row = svc.upload(tenant_id, "u", f"t{enabled}.stl", samples.stl(samples.overhang()))
        svc.request_slice(tenant_id, row["id"], SliceOptions(supports={"enabled": enabled, "pattern": "tree",
                                                                        "angle": 45}),
                          printer_id=studio["printer"], material_id=studio["material"])
        drain(svc)
        meta = svc.get(tenant_id, row["id"])["metadata"]
        assert meta["fallback"] is False, meta["error"]
        grams[enabled] = meta["metrics"]["grams"]
        if enabled:
            [line] = pricing.quick_order_lines(engine, tenant_id, [{"file_id": row["id"]}])
            if "organic" not in runner.support_styles(PRUSA):  # PrusaSlicer 2.5: snug, and the quote says so
                assert "snug" in meta["notes"][0] and meta["supportStyle"] == "snug"
                assert "snug supports (tree asked)" in line["description"]
            else:
                assert meta["supportStyle"] == "organic" and ", tree supports" in line["description"]
    assert grams[True] > grams[False] * 1.2  # the slab's underside got supports
    row = svc.upload(tenant_id, "u", "plate.3mf", samples.to_3mf(samples.cube(), samples.cylinder()))
    svc.request_slice(tenant_id, row["id"], SliceOptions())
    drain(svc)
    meta = svc.get(tenant_id, row["id"])["metadata"]
    assert meta["fallback"] is False and meta["metrics"]["grams"] > 7


@pytest.mark.parametrize("why", ["disabled", "missing", "failing"])
def test_fallback_is_flagged_with_the_error(engine, tenant_id, studio, tmp_path, why):
    values = {"disabled": {"disable": True}, "missing": {"bin": str(tmp_path / "no-such-slicer")},
              "failing": {"bin": script(tmp_path / "fail.sh", "echo 'error: cannot slice' >&2\nexit 3\n")}}[why]
    svc = service(engine, tmp_path, **values)
    row = svc.upload(tenant_id, "u", "cyl.stl", samples.stl(samples.cylinder()))
    svc.request_slice(tenant_id, row["id"], SliceOptions(), material_id=studio["material"])
    drain(svc)
    done = svc.get(tenant_id, row["id"])
    meta = done["metadata"]
    assert done["status"] == "completed" and meta["fallback"] is True and meta["output"] is None
    assert {"disabled": "SLICER_DISABLE", "missing": "not installed", "failing": "exited with 3"}[why] in meta["error"]
    assert meta["attempts"] == (3 if why == "failing" else 1)  # two retries only where retrying can help
    assert meta["notes"] == slicing.estimate_notes(SliceOptions()) and "estimated" in meta["notes"][0]
    # an estimate of this cylinder, not the seed's constant 80 g / 1 h
    assert 2 < meta["metrics"]["grams"] < 7 and meta["metrics"]["timeSec"] != 3600


def test_hanging_slicer_is_killed_with_its_children_and_the_estimate_answers(engine, tenant_id, studio, tmp_path):
    pids = tmp_path / "pids"
    hang = script(tmp_path / "hang.sh", f"sleep 300 &\necho $! >> {pids}\necho $$ >> {pids}\nsleep 300\n")
    svc = service(engine, tmp_path, bin=hang, timeout_ms=1000, retries=1)
    row = svc.upload(tenant_id, "u", "cube.stl", samples.stl(samples.cube()))
    svc.request_slice(tenant_id, row["id"], SliceOptions())
    started = time.monotonic()
    drain(svc, 30)
    assert time.monotonic() - started < 15
    meta = svc.get(tenant_id, row["id"])["metadata"]
    assert meta["fallback"] is True and "past 1 s" in meta["error"] and meta["attempts"] == 2
    # the script and the sleep it left in the background: all gone (or dead, waiting to be reaped)
    assert [pid for pid in pids.read_text().split() if running(int(pid))] == []


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


SERVING = """
import signal, sys, time
from pathlib import Path
from resources.warehouse import engine_for
from tests.slicing_world import service
url, root, bin_ = sys.argv[1:4]
svc = service(engine_for(url), Path(root), bin=bin_, timeout_ms=120000, lease_s=30.0).start_worker()
signal.signal(signal.SIGTERM, lambda *_: (svc.close(), sys.exit(0)))
while True:
    time.sleep(0.1)
"""


def _serve_a_hanging_slice(engine, warehouse_url, tenant_id, tmp_path):
    """A worker process (the service's own poller threads) running a slicer that hangs; the
    worker, the slicer's pid and the folder the run uses."""
    pids, work = tmp_path / "pids", tmp_path / "tmp"
    work.mkdir()
    hang = script(tmp_path / "hang.sh", f"echo $$ >> {pids}\nexec sleep 300\n")
    svc = service(engine, tmp_path, bin=hang)
    row = svc.upload(tenant_id, "u", "cube.stl", samples.stl(samples.cube()))
    svc.request_slice(tenant_id, row["id"], SliceOptions())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(work)}
    worker = subprocess.Popen([sys.executable, "-c", SERVING, warehouse_url, str(tmp_path), hang], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text().strip()):
        assert time.monotonic() < deadline and worker.poll() is None, "the worker never started the slicer"
        time.sleep(0.05)
    slicer = int(pids.read_text().split()[0])
    assert running(slicer) and len(list(work.glob("storehouse-slice-*"))) == 1
    return svc, row, worker, slicer, work


def _gone_soon(pid: int, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_slicer_dies_with_its_killed_worker(engine, warehouse_url, tenant_id, studio, tmp_path, monkeypatch):
    """SIGKILL of the worker: the parent-death signal kills its slicer (so when the lease runs out
    no second slicer runs beside it); the next worker removes the run folder it left."""
    svc, row, worker, slicer, work = _serve_a_hanging_slice(engine, warehouse_url, tenant_id, tmp_path)
    try:
        worker.kill()
        worker.wait(10)
        assert _gone_soon(slicer), "the slicer outlived its killed worker"
        monkeypatch.setattr(tempfile, "tempdir", str(work))
        assert runner.sweep_workdirs() == 1 and list(work.glob("storehouse-slice-*")) == []
    finally:
        _forget(engine, worker, row)


def _forget(engine, worker, row) -> None:
    """The test's worker and its file go (the file would fall due for the next tests' workers)."""
    if worker.poll() is None:
        worker.kill()
        worker.wait(10)
    with engine.begin() as conn:
        conn.execute(sa.delete(studio_tmp_files).where(studio_tmp_files.c.id == row["id"]))


def test_closing_the_service_stops_its_slicer(engine, warehouse_url, tenant_id, studio, tmp_path):
    """SIGTERM (a normal shutdown closes the service): the slicer is killed, its folder removed, and
    the file is due again at once for another worker, the stopped attempt not counted."""
    svc, row, worker, slicer, work = _serve_a_hanging_slice(engine, warehouse_url, tenant_id, tmp_path)
    try:
        worker.terminate()
        assert worker.wait(15) == 0
        assert _gone_soon(slicer) and list(work.glob("storehouse-slice-*")) == []
        again = svc.get(tenant_id, row["id"])
        assert again["status"] == "running" and again["lease_token"] is None and again["metadata"]["attempts"] == 0
    finally:
        _forget(engine, worker, row)


def test_a_crashed_slice_is_taken_over_after_its_lease(engine, tenant_id, studio, tmp_path):
    svc = service(engine, tmp_path, disable=True, lease_s=0.5)
    row = svc.upload(tenant_id, "u", "cube.stl", samples.stl(samples.cube()))
    svc.request_slice(tenant_id, row["id"], SliceOptions())
    crashed = svc.leases.claim(0.5)  # a worker took it, then died without a word
    assert crashed is not None and svc.leases.claim(0.5) is None  # never two at once
    assert svc.run_due() == 0
    time.sleep(0.7)
    assert svc.run_due() == 1
    assert svc.get(tenant_id, row["id"])["status"] == "completed"


def test_slots_hold_the_limit(engine, tmp_path):
    svc = service(engine, tmp_path, concurrency=2)
    first, second = svc.slots.claim(30), svc.slots.claim(30)
    try:
        assert first and second and first.key != second.key
        assert svc.slots.claim(30) is None
    finally:
        for lease in (first, second):
            if lease:
                svc.slots.release(lease)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(studio_slicer_slots)
                            .where(studio_slicer_slots.c.lease_token.is_not(None))).scalar() == 0


WORKER = """
import sys, time
from pathlib import Path
from resources.warehouse import engine_for
from tests.slicing_world import service
url, root, bin_ = sys.argv[1:4]
svc = service(engine_for(url), Path(root), bin=bin_, concurrency=1, lease_s=10.0)
idle_since = time.monotonic()
while time.monotonic() - idle_since < 3:
    if svc.run_due():
        idle_since = time.monotonic()
    else:
        time.sleep(0.05)
svc.close()
"""


@requires_slicer
def test_concurrency_one_holds_across_two_worker_processes(engine, warehouse_url, tenant_id, studio, tmp_path):
    log = tmp_path / "runs.log"
    wrapper = timing_wrapper(tmp_path / "slicer.sh", log)
    svc = service(engine, tmp_path, bin=wrapper)
    ids = []
    for i in range(4):  # four different models: no cache hits
        row = svc.upload(tenant_id, "u", f"c{i}.stl", samples.stl(samples.cube(10 + i)))
        svc.request_slice(tenant_id, row["id"], SliceOptions())
        ids.append(row["id"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, warehouse_url, str(tmp_path), wrapper], cwd=ROOT, env=env)
               for _ in range(2)]
    for w in workers:
        assert w.wait(timeout=180) == 0
    spans = intervals(log)
    assert len(spans) == 4
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, f"two slicer processes at once: {spans}"
    for file_id in ids:
        assert svc.get(tenant_id, file_id)["metadata"]["fallback"] is False


def test_a_slice_costs_few_database_round_trips(engine, tenant_id, studio, tmp_path):
    """A slice's own writes: the slot, the file's lease with its attempt counted, the result with its
    cache row, the slot back (4 commits; statements few: the slicer's own time is the ceiling)."""
    fake = script(tmp_path / "fake.sh", 'while [ $# -gt 0 ]; do [ "$1" = --output ] && out=$2; shift; done\n'
                  "printf '; filament used [g] = 4.20\\n; estimated printing time (normal mode) = 15m 30s\\n' > $out\n")
    svc = service(engine, tmp_path, bin=fake)
    row = svc.upload(tenant_id, "u", "cube.stl", samples.stl(samples.cube()))
    svc.request_slice(tenant_id, row["id"], SliceOptions())
    counts = {"commit": 0, "statement": 0}

    def commit(conn):
        counts["commit"] += 1

    def statement(*args):
        counts["statement"] += 1

    sa.event.listen(engine, "commit", commit)
    sa.event.listen(engine, "before_cursor_execute", statement)
    try:
        assert svc.run_due() == 1
    finally:
        sa.event.remove(engine, "commit", commit)
        sa.event.remove(engine, "before_cursor_execute", statement)
    meta = svc.get(tenant_id, row["id"])["metadata"]
    assert meta["metrics"] == {"grams": 4.2, "timeSec": 930} and meta["attempts"] == 1
    with engine.connect() as conn:
        cached = conn.execute(sa.select(studio_slice_cache).where(studio_slice_cache.c.tenant_id == tenant_id)).all()
    assert [c.gcode_key for c in cached] == [meta["output"]]
    assert counts["commit"] <= 4, counts
    assert counts["statement"] <= 7, counts  # 10 statements and 5 commits before
