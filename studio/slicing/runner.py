"""PrusaSlicer's command line, run safely: its own process group, a timeout that kills the whole
group, and a clear error for every way it can fail.

One run is :func:`slice_model`; retries and the fallback belong to the caller (the worker counts
runs in the tmp file's ``attempts``, so a run cut short by a crash counts too). The seed's support
``angle`` (1–89°, the steepest overhang that prints without support) is PrusaSlicer's
``--support-material-threshold``: its ``--support-material-angle`` rotates the support pattern on
the bed instead, so passing the seed's angle there would not change where supports go. Tree
supports are ``--support-material-style organic`` from PrusaSlicer 2.6; the installed slicer is
asked which styles it knows (``--help-fff``), and one without ``organic`` (2.5 offers grid and
snug) slices with ``snug``, the style that follows the part as trees do, and says so (the result
names the style really used). The chosen printer's build volume is the slicer's bed
(``--bed-shape``, ``--max-print-height``), not the profile's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from studio.slicing import gcode
from studio.slicing.options import SliceOptions

PROFILES = Path(__file__).parent / "profiles"
DEFAULT_PROFILES = (PROFILES / "fff_generic_mk3.ini", PROFILES / "pla_generic.ini")


class SlicerError(Exception):
    """A run that produced no usable G-code; ``kind``: missing, timeout, failed, no-metrics, or
    stopped (its worker asked it to stop: the service is closing or lost the file's lease)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class SliceResult:
    metrics: gcode.Metrics
    gcode_path: Path
    seconds: float
    notes: list[str] = field(default_factory=list)
    support_style: str | None = None  # grid, snug or organic: what was really printed with


def resolve(bin_name: str) -> str:
    found = shutil.which(bin_name)
    if found is None:
        raise SlicerError("missing", f"the slicer {bin_name!r} is not installed (set SLICER_BIN)")
    return found


class StyleProbe:
    """Which ``--support-material-style`` values a slicer accepts, read from its own ``--help-fff``.

    Only an answer is kept (per binary, for the process's life): a probe that could not run, timed
    out or failed is not an answer, so it is asked again on a later slice (not before ``retry_s``,
    so a slicer that hangs does not cost every slice the probe's timeout)."""

    def __init__(self, timeout_s: float = 30.0, retry_s: float = 60.0) -> None:
        self.timeout_s, self.retry_s = timeout_s, retry_s
        self._known: dict[str, frozenset[str]] = {}
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def styles(self, binary: str) -> frozenset[str]:
        with self._lock:
            if binary in self._known:
                return self._known[binary]
            failed = self._failed_at.get(binary)
            if failed is not None and time.monotonic() - failed < self.retry_s:
                return frozenset()
        found = self._probe(binary)
        with self._lock:
            if found is None:
                self._failed_at[binary] = time.monotonic()
                return frozenset()
            self._failed_at.pop(binary, None)
            self._known[binary] = found
        return found

    def _probe(self, binary: str) -> frozenset[str] | None:
        """The styles the help lists (none listed: an empty answer); None when there was no answer."""
        try:
            proc = subprocess.Popen([binary, "--help-fff"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=dies_with(os.getpid()))
        except OSError:
            return None
        try:
            out = proc.communicate(timeout=self.timeout_s)[0].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            return None
        finally:
            kill_group(proc)  # like a slice: the whole group, children of a slicer that hangs included
        if proc.returncode != 0:
            return None
        match = re.search(r"--support-material-style.*?\(([^)]*);\s*default", out, re.S)
        return frozenset(s.strip() for s in match.group(1).split(",")) if match else frozenset()


PROBE = StyleProbe()


def support_styles(binary: str) -> frozenset[str]:
    """The support styles this slicer accepts (asked once per binary; asked again after a failed probe)."""
    return PROBE.styles(binary)


class Command(NamedTuple):
    """One run's argument list, what was adapted to this slicer (notes), and the support style it
    prints with (None: no supports)."""

    args: list[str]
    notes: list[str]
    support_style: str | None


def bed_args(build_mm: tuple[float, float, float]) -> list[str]:
    """The printer's build volume as PrusaSlicer's bed outline and height limit (it arranges the
    model on that bed, so a model wider than the profile's own bed still slices on a larger printer)."""
    x, y, z = (f"{float(v):g}" for v in build_mm)
    return ["--bed-shape", f"0x0,{x}x0,{x}x{y},0x{y}", "--max-print-height", z]


def command(binary: str, model: Path, output: Path, options: SliceOptions, profiles: tuple[Path, ...],
            build_mm: tuple[float, float, float] | None = None, *, density: float | None = None,
            diameter: float | None = None) -> Command:
    """The argument list for one run (``build_mm``: the printer's volume; ``density`` g/cm³ and
    ``diameter`` mm: the chosen material's filament; None: the profile's)."""
    args = [binary]
    for profile in profiles:
        args += ["--load", str(profile)]
    if build_mm is not None:
        args += bed_args(build_mm)
    if density is not None:  # the grams PrusaSlicer reports are the filament's volume times this
        args += ["--filament-density", f"{float(density):g}"]
    if diameter is not None:
        args += ["--filament-diameter", f"{float(diameter):g}"]
    args += ["--export-gcode", "--layer-height", str(options.layer_height),
             "--first-layer-height", str(options.layer_height),
             "--fill-density", f"{options.infill}%"]
    notes: list[str] = []
    style = None
    if options.infill == 100:  # the profile's gyroid refuses 100 %; PrusaSlicer's own GUI switches too
        args += ["--fill-pattern", "rectilinear"]
    if options.supports.enabled:
        args += ["--support-material", "--support-material-threshold", str(options.supports.angle)]
        if options.supports.pattern == "tree":
            styles = support_styles(binary)
            style = "organic" if "organic" in styles else "snug"
            if style == "snug":
                notes.append("tree supports asked: this PrusaSlicer has no tree (organic) style (it offers "
                             f"{', '.join(sorted(styles)) or 'none'}), so snug supports were used")
        else:
            style = "grid"
        args += ["--support-material-style", style]
    args += ["--output", str(output), str(model)]
    return Command(args, notes, style)


def slice_model(model: Path, workdir: Path, options: SliceOptions, *, bin_name: str, timeout_s: float,
                profiles: tuple[Path, ...] = DEFAULT_PROFILES,
                build_mm: tuple[float, float, float] | None = None, density: float | None = None,
                diameter: float | None = None, stop: Callable[[], bool] | None = None) -> SliceResult:
    """Slice ``model`` into ``workdir``/out.gcode on a bed of ``build_mm`` with the material's
    filament ``density`` and ``diameter`` (None: the profile's) and read its metrics;
    :class:`SlicerError` otherwise. ``stop`` is asked every :data:`STOP_POLL_S` while the slicer
    runs: True kills its group (``stopped``)."""
    binary = resolve(bin_name)
    output = workdir / "out.gcode"
    args, notes, style = command(binary, model, output, options, profiles, build_mm, density=density,
                                 diameter=diameter)
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=dies_with(os.getpid()))
    try:
        out = _wait(proc, started + timeout_s, stop)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise SlicerError("timeout", f"the slicer ran past {timeout_s:g} s and was stopped") from None
    except BaseException:
        kill_group(proc)
        raise
    finally:
        kill_group(proc)  # children it left behind (its group outlives it) go too
    text = out.decode("utf-8", "replace")
    if proc.returncode != 0 or not output.exists():
        raise SlicerError("failed", f"the slicer exited with {proc.returncode}: {_last_error(text)}")
    try:
        metrics = gcode.parse_file(output)
    except gcode.GcodeMetricsMissing as exc:
        raise SlicerError("no-metrics", str(exc)) from None
    return SliceResult(metrics, output, time.monotonic() - started, notes, style)


STOP_POLL_S = 0.25
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if sys.platform == "linux" else None


def dies_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: in the slicer's process, before it runs, ask Linux to SIGKILL it when the
    thread that started it dies (a worker killed with SIGKILL cannot kill its slicer itself; the
    parent-death signal does, so a slice whose lease is later taken over never runs beside its
    successor). The signal survives the exec; a slicer's own children are its group's, killed by
    :func:`kill_group` on every end the worker lives to see."""
    def preexec() -> None:
        if _LIBC is None:
            return
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the worker died before the signal was set: go now
            os.kill(os.getpid(), signal.SIGKILL)
    return preexec


def _wait(proc: subprocess.Popen, deadline: float, stop: Callable[[], bool] | None) -> bytes:
    """The run's output; :class:`subprocess.TimeoutExpired` past ``deadline``; ``stopped`` when asked."""
    while True:
        left = deadline - time.monotonic()
        try:
            return proc.communicate(timeout=max(0.0, min(left, STOP_POLL_S if stop else left)))[0]
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            if stop is not None and stop():
                kill_group(proc)
                raise SlicerError("stopped", "the slice was stopped by its worker") from None


WORKDIR_PREFIX = "storehouse-slice-"


def workdir() -> tempfile.TemporaryDirectory:
    """A run's own temporary folder, named by this process's id so :func:`sweep_workdirs` can tell
    the folders of a worker that died (SIGKILL leaves them) from live ones."""
    return tempfile.TemporaryDirectory(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")


def sweep_workdirs() -> int:
    """Remove the run folders left by workers that are gone; how many were removed."""
    removed = 0
    root = Path(tempfile.gettempdir())
    for path in root.glob(f"{WORKDIR_PREFIX}*"):
        pid = path.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            if path.is_dir() and path.stat().st_uid == os.getuid():
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the run's whole process group (it leads its own session) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "[trace]" not in ln and "[debug]" not in ln]
    picked = [ln for ln in lines if re.search(r"error|fail|cannot|outside|invalid", ln, re.I)] or lines
    return (picked[-1] if picked else "no output")[:300]
