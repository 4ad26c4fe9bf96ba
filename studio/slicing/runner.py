"""PrusaSlicer's command line, run safely: its own process group, a timeout that kills the whole
group, and a clear error for every way it can fail.

One run is :func:`slice_model`; retries and the fallback belong to the caller (the worker counts
runs in the tmp file's ``attempts``, so a run cut short by a crash counts too). The seed's support
``angle`` (1–89°, the steepest overhang that prints without support) is PrusaSlicer's
``--support-material-threshold``: its ``--support-material-angle`` rotates the support pattern on
the bed instead, so passing the seed's angle there would not change where supports go. Tree
supports are ``--support-material-style organic`` from PrusaSlicer 2.6; the installed slicer is
asked which styles it knows (``--help-fff``), and one without ``organic`` (2.5 offers grid and
snug) slices with ``snug``, the style that follows the part as trees do, and says so.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from studio.slicing import gcode
from studio.slicing.options import SliceOptions

PROFILES = Path(__file__).parent / "profiles"
DEFAULT_PROFILES = (PROFILES / "fff_generic_mk3.ini", PROFILES / "pla_generic.ini")


class SlicerError(Exception):
    """A run that produced no usable G-code; ``kind``: missing, timeout, failed, no-metrics."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class SliceResult:
    metrics: gcode.Metrics
    gcode_path: Path
    seconds: float
    notes: list[str] = field(default_factory=list)


def resolve(bin_name: str) -> str:
    found = shutil.which(bin_name)
    if found is None:
        raise SlicerError("missing", f"the slicer {bin_name!r} is not installed (set SLICER_BIN)")
    return found


@functools.lru_cache(maxsize=8)
def support_styles(binary: str) -> frozenset[str]:
    """The support styles this slicer accepts, read from its own help (cached per binary)."""
    try:
        proc = subprocess.Popen([binary, "--help-fff"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return frozenset()
    try:
        out = proc.communicate(timeout=30)[0].decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return frozenset()
    finally:
        kill_group(proc)  # like a slice: the whole group, children of a slicer that hangs included
    match = re.search(r"--support-material-style.*?\(([^)]*);\s*default", out, re.S)
    return frozenset(s.strip() for s in match.group(1).split(",")) if match else frozenset()


def command(binary: str, model: Path, output: Path, options: SliceOptions, profiles: tuple[Path, ...]
            ) -> tuple[list[str], list[str]]:
    """The argument list for one run, and notes on what was adapted to this slicer."""
    args = [binary]
    for profile in profiles:
        args += ["--load", str(profile)]
    args += ["--export-gcode", "--layer-height", str(options.layer_height),
             "--first-layer-height", str(options.layer_height),
             "--fill-density", f"{options.infill}%"]
    notes: list[str] = []
    if options.infill == 100:  # the profile's gyroid refuses 100 %; PrusaSlicer's own GUI switches too
        args += ["--fill-pattern", "rectilinear"]
    if options.supports.enabled:
        args += ["--support-material", "--support-material-threshold", str(options.supports.angle)]
        if options.supports.pattern == "tree":
            styles = support_styles(binary)
            if "organic" in styles:
                args += ["--support-material-style", "organic"]
            else:
                args += ["--support-material-style", "snug"]
                notes.append("tree supports need PrusaSlicer 2.6+ (organic); this slicer offers "
                             f"{', '.join(sorted(styles)) or 'no styles'}: sliced with snug supports")
        else:
            args += ["--support-material-style", "grid"]
    args += ["--output", str(output), str(model)]
    return args, notes


def slice_model(model: Path, workdir: Path, options: SliceOptions, *, bin_name: str, timeout_s: float,
                profiles: tuple[Path, ...] = DEFAULT_PROFILES) -> SliceResult:
    """Slice ``model`` into ``workdir``/out.gcode and read its metrics; :class:`SlicerError` otherwise."""
    binary = resolve(bin_name)
    output = workdir / "out.gcode"
    args, notes = command(binary, model, output, options, profiles)
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
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
    return SliceResult(metrics, output, time.monotonic() - started, notes)


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
