"""Grams and print time from a slicer's G-code, in every format the seed lists.

PrusaSlicer writes its statistics as comments at the *end* of the file (the seed read the first
200 lines, which works for slicers that put them first), so both ends are read: the first 200
lines and the last 64 KiB. Grams: ``filament used = X g`` or ``filament used [g] = X`` (PrusaSlicer
also writes ``total filament used [g]``, the sum over extruders, preferred when present). Time:
``estimated printing time (normal mode) = …`` as ``1d 2h 3m 4s``, ``2h 5m``, ``15m 30s``, ``45s`` or
``02:10:00`` (``1:02:10:00`` with days).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HEAD_LINES, TAIL_BYTES = 200, 64 * 1024

_GRAMS = (
    re.compile(r"total\s+filament\s+used\s*\[g\]\s*=\s*([\d.]+)", re.I),
    re.compile(r"filament\s+used\s*\[g\]\s*=\s*([\d.,\s]+)", re.I),  # per extruder: "1.20, 3.40"
    re.compile(r"filament\s+used\s*=\s*([\d.]+)\s*g\b", re.I),
)
_TIME = re.compile(r"estimated\s+printing\s+time[^=\n]*=\s*([^;\n]+)", re.I)
_NORMAL_TIME = re.compile(r"estimated\s+printing\s+time\s*\(normal\s+mode\)\s*=\s*([^;\n]+)", re.I)
_UNITS = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])\b", re.I)
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class GcodeMetricsMissing(ValueError):
    """The G-code carries no grams or no print time we can read."""


@dataclass(frozen=True)
class Metrics:
    grams: float
    time_s: int


def parse_duration(text: str) -> int:
    """Seconds in ``1d 2h 3m 4s`` (any subset, in order) or ``HH:MM:SS`` / ``D:HH:MM:SS``."""
    text = text.strip()
    if re.fullmatch(r"\d+(:\d{1,2}){2,3}", text):  # HH:MM:SS or D:HH:MM:SS
        parts = [int(p) for p in text.split(":")]
        return sum(p * w for p, w in zip(reversed(parts), (1, 60, 3600, 86400)))
    found = _UNITS.findall(text)
    leftover = _UNITS.sub("", text).strip()
    if not found or leftover:
        raise ValueError(f"not a duration: {text!r}")
    return round(sum(float(n) * _SECONDS[u.lower()] for n, u in found))


def parse_text(text: str) -> Metrics:
    """The metrics in G-code text (a whole file, or its two ends)."""
    grams = None
    for pattern in _GRAMS:
        match = pattern.search(text)
        if match:
            values = [float(v) for v in re.split(r"[,\s]+", match.group(1).strip()) if v]
            grams = sum(values)
            break
    match = _NORMAL_TIME.search(text) or _TIME.search(text)
    if grams is None or match is None:
        missing = "grams" if grams is None else "print time"
        raise GcodeMetricsMissing(f"the G-code states no {missing}")
    return Metrics(grams=round(grams, 2), time_s=parse_duration(match.group(1)))


def read_ends(path: Path) -> str:
    """The first ``HEAD_LINES`` lines and the last ``TAIL_BYTES`` bytes of a G-code file."""
    with path.open("rb") as f:
        head = b"".join(line for _, line in zip(range(HEAD_LINES), f))
        size = path.stat().st_size
        f.seek(max(0, size - TAIL_BYTES))
        tail = f.read()
    return (head + b"\n" + tail).decode("utf-8", "replace")


def parse_file(path: Path) -> Metrics:
    return parse_text(read_ends(path))
