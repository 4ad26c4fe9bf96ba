"""Slices per minute through the slice service beside PrusaSlicer run directly, and the fallback
estimate's speed and error.

    python bench/slicer_bench.py [--pg] [--runs N] [--skip-million]

For a 20 mm cube and a 50,000-triangle sphere, at concurrency 1 and 2: N distinct copies (each a
hair larger, so no cache hit; the slicer's work is the same) sliced (a) by PrusaSlicer directly, the
same command line, N runs with at most `concurrency` at once, and (b) through the service: uploaded,
requested, and run by `concurrency` worker threads under the slot leases, until all completed.
Target: (b) ≥ 0.9× (a). Then a 1,000,000-triangle sphere: the estimate's time (target < 1 s) and
its error against the slicer on the same model; and the estimate's error on the test models.
The store is the tests' folder store (tests/studio_storage.py) until the storage backends are merged.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import DEFAULT_PG, load_avg, machine, scratch_pg  # noqa: E402  (puts the repo on sys.path)

import sqlalchemy as sa  # noqa: E402

from resources.warehouse import engine_for  # noqa: E402
from studio.slicing import estimate, mesh, runner, samples  # noqa: E402
from studio.slicing.catalog import DEFAULT_BUILD_MM  # noqa: E402
from studio.slicing.options import SliceOptions  # noqa: E402
from studio.slicing.service import SliceService  # noqa: E402
from studio.slicing.settings import SlicerSettings  # noqa: E402
from tests.studio_storage import FolderStorage  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402
from warehouse.tables.core import tenants  # noqa: E402

OPTIONS = SliceOptions(layerHeight=0.2, infill=15)


def models(kind: str, n: int) -> list[bytes]:
    if kind == "cube20":
        return [samples.stl(samples.cube(20 + i * 0.01)) for i in range(n)]
    return [samples.stl(samples.sphere(50_000, radius=20 + i * 0.01)) for i in range(n)]


def direct(files: list[Path], concurrency: int, binary: str) -> float:
    """Seconds for PrusaSlicer alone to slice every file, at most ``concurrency`` at once (the
    service's command line: the default printer's bed, as a slice without a printer gets)."""
    def one(path: Path) -> None:
        work = Path(tempfile.mkdtemp(prefix="bench-direct-"))
        try:
            runner.slice_model(path, work, OPTIONS, bin_name=binary, timeout_s=300, build_mm=DEFAULT_BUILD_MM)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - started


def through_service(url: str, root: Path, datas: list[bytes], concurrency: int, binary: str, tenant: str) -> float:
    """Seconds from the first slice request to the last completed slice, through the service and its
    workers (the models uploaded before)."""
    engine = engine_for(url)
    settings = SlicerSettings.model_construct(**{**SlicerSettings(SLICER_BIN=binary).model_dump(),
                                                 "concurrency": concurrency, "poll_s": 0.05})
    svc = SliceService(engine, FolderStorage(root), settings)
    with engine.begin() as conn:
        conn.execute(sa.insert(tenants).values(tenant_id=tenant, name=tenant))
    uploaded = [svc.upload(tenant, "bench", f"m{i}.stl", data)["id"] for i, data in enumerate(datas)]
    started = time.perf_counter()  # from the first slice request: uploads are the client's step before it
    ids = [svc.request_slice(tenant, file_id, OPTIONS)["id"] for file_id in uploaded]
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            if not svc.run_due():
                time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for t in threads:
        t.start()
    while any(svc.get(tenant, i)["status"] != "completed" for i in ids):
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join()
    svc.close()
    fallbacks = sum(svc.get(tenant, i)["metadata"]["fallback"] for i in ids)
    assert fallbacks == 0, f"{fallbacks} slices fell back: the figure would not be the slicer's"
    engine.dispose()
    return elapsed


def error_line(name: str, model, binary: str, options: SliceOptions = OPTIONS) -> str:
    work = Path(tempfile.mkdtemp(prefix="bench-err-"))
    try:
        path = work / "m.stl"
        path.write_bytes(samples.stl(model))
        real = runner.slice_model(path, work, options, bin_name=binary, timeout_s=300).metrics
    finally:
        shutil.rmtree(work, ignore_errors=True)
    est = estimate.estimate(model, options, 1.24)
    return (f"  {name:34} slicer {real.grams:7.2f} g {real.time_s:6d} s   estimate {est.grams:7.2f} g "
            f"{est.time_s:6d} s   error {100 * (est.grams / real.grams - 1):+5.1f} % g, "
            f"{100 * (est.time_s / real.time_s - 1):+5.1f} % time")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--runs", type=int, default=6, help="models per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of direct and service runs")
    parser.add_argument("--skip-million", action="store_true")
    args = parser.parse_args()
    binary = shutil.which(SlicerSettings().bin)
    if binary is None:
        sys.exit("PrusaSlicer is not installed: apt-get install prusa-slicer")
    print(machine())
    root = Path(tempfile.mkdtemp(prefix="bench-slicer-"))
    with (scratch_pg(DEFAULT_PG) if args.pg else _sqlite(root)) as url:
        upgrade(url)
        print(f"database: {'PostgreSQL' if args.pg else 'SQLite'}; {args.runs} slices per figure; layer 0.2 mm, 15 %")
        for kind in ("cube20", "sphere50k"):
            datas = models(kind, args.runs)
            files = []
            for i, data in enumerate(datas):
                files.append(root / f"{kind}-{i}.stl")
                files[-1].write_bytes(data)
            for concurrency in (1, 2):
                # Interleaved rounds, so a busy neighbour on a shared machine slows both sides alike.
                bare = ours = 0.0
                for r in range(args.rounds):
                    bare += direct(files, concurrency, binary)
                    ours += through_service(url, root / f"store-{kind}-{concurrency}-{r}", datas, concurrency, binary,
                                            f"bench-{kind}-{concurrency}-{r}")
                n = len(files) * args.rounds
                print(f"{kind:9} concurrency {concurrency}: PrusaSlicer directly {60 * n / bare:6.1f}/min, "
                      f"service {60 * n / ours:6.1f}/min  ({bare / ours:.2f}×)")
    print("fallback estimate:")
    big = samples.sphere(1_000_000)
    started = time.perf_counter()
    cpu = time.process_time()
    est = estimate.estimate(big, OPTIONS, 1.24)
    est_wall, est_cpu = time.perf_counter() - started, time.process_time() - cpu
    data = samples.stl(big)
    mid = time.perf_counter()
    cpu = time.process_time()
    raw = mesh.read(data, mesh.STL, process=False)  # as the service's fallback reads the stored model
    estimate.estimate(raw, OPTIONS, 1.24, volume_mm3=est_volume(big))
    done, read_cpu = time.perf_counter(), time.process_time() - cpu
    print(f"  {len(big.faces):,} triangles: estimate {est_wall:.3f} s wall, {est_cpu:.3f} s CPU; as the "
          f"fallback runs it (read the {len(data) / 1e6:.0f} MB STL, then estimate) {done - mid:.3f} s wall, "
          f"{read_cpu:.3f} s CPU ({est.grams} g, {est.time_s} s); load average {load_avg()}")
    if not args.skip_million:
        print(error_line("1,000,000-triangle sphere r=20", big, binary))
    for name, model, options in (
            ("cube 20 mm", samples.cube(), OPTIONS), ("cylinder r10 h30", samples.cylinder(), OPTIONS),
            ("tube 15/11 h40", samples.tube(), SliceOptions(layerHeight=0.15, infill=30)),
            ("overhang + supports 45°", samples.overhang(), SliceOptions(supports={"enabled": True, "angle": 45})),
            ("sphere 50k, 0.1 mm, 50 %", samples.sphere(50_000), SliceOptions(layerHeight=0.1, infill=50)),
            ("cube 60 mm, 0.3 mm, 10 %", samples.cube(60), SliceOptions(layerHeight=0.3, infill=10)),
            ("cylinder r30 h8, 0.2 mm, 20 %", samples.cylinder(30, 8), SliceOptions(infill=20))):
        print(error_line(name, model, binary, options))


def est_volume(model) -> float:
    return abs(float(model.volume))


class _sqlite:
    def __init__(self, root: Path) -> None:
        self.url = f"sqlite:///{root / 'bench.db'}"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc) -> None:
        pass


if __name__ == "__main__":
    main()
