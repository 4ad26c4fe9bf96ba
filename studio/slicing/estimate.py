"""The fallback: grams and print time estimated from the mesh itself, when the slicer is disabled,
missing, or failed after its retries (the seed's constant 1 h / 80 g said nothing about the model).

The estimate follows what a slicer prints, with the default profile's numbers (profiles/*.ini):

* shells: the side walls (the mesh's steep faces' area x perimeters x line width) and the solid
  top and bottom skins (the flat faces' area projected on the bed x solid layers x layer height);
* infill: what is left inside x the infill fraction;
* supports: under each downward face steeper than the threshold, a column down to the bed at
  the support pattern's fill;
* grams: that volume x the material's density;
* time: each kind of path's length (volume / (line width x layer height)) at its effective speed,
  plus a cost per layer (layer change, retraction, travel to the seam) and per print.

The effective speeds and costs were fitted once against PrusaSlicer 2.5 on generated test models
(bench/slicer_bench.py prints the error on models the fit did not see); they are a model of the
print with measured coefficients, not a constant answer. Vectorised numpy over the faces: a 1,000,000-triangle model
takes well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh

from studio.slicing.gcode import Metrics
from studio.slicing.options import SliceOptions


@dataclass(frozen=True)
class Profile:
    """The default printer profile's numbers that the estimate needs (keep in step with the .ini)."""

    line_width_mm: float = 0.45
    perimeters: int = 2
    top_layers: int = 5
    bottom_layers: int = 4
    support_fill: float = 0.18  # support pattern spacing 2.5 mm at 0.45 mm lines, plus interfaces
    # Seconds per mm of path (1 / effective speed, with acceleration and slow-downs), per layer and per
    # print, fitted by least squares on relative error against PrusaSlicer 2.5 (30 slices of 7 models).
    # Sparse gyroid slows as it gets denser (tighter curves): its cost per mm grows with the density.
    wall_s_per_mm: float = 0.0454
    solid_s_per_mm: float = 0.01504
    sparse_s_per_mm: float = 0.02055
    sparse_density_s_per_mm: float = 0.0408
    support_s_per_mm: float = 0.0254
    layer_s: float = 1.25
    start_s: float = 58.0
    solid_below_mm2: float = 70.0  # solid_infill_below_area
    skirt_distance_mm: float = 6.0


DEFAULT = Profile()


@dataclass(frozen=True)
class Paths:
    """What a slicer would extrude for a model, in mm³ per kind of path, and its layer count."""

    walls: float
    skins: float
    infill: float
    support: float
    skirt: float
    layers: int
    infill_fraction: float

    @property
    def volume(self) -> float:
        return self.walls + self.skins + self.infill + self.support + self.skirt


def faces(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per face: area, unit normal's z, centroid's z; and the signed volume, in one numpy pass over
    coordinate columns (trimesh's cached properties also validate, group edges and compute inertia:
    ten times slower on a million faces)."""
    v, f = mesh.vertices.view(np.ndarray), mesh.faces.view(np.ndarray)
    x, y, z = v[:, 0][f], v[:, 1][f], v[:, 2][f]
    ux, uy, uz = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0], z[:, 1] - z[:, 0]
    wx, wy, wz = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0], z[:, 2] - z[:, 0]
    cx, cy, cz = uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx
    double_area = np.sqrt(cx * cx + cy * cy + cz * cz)
    nz = np.divide(cz, double_area, out=np.zeros_like(cz), where=double_area > 0)
    volume = float((x[:, 0] * cx + y[:, 0] * cy + z[:, 0] * cz).sum()) / 6
    return double_area / 2, nz, z.mean(axis=1), volume


def paths(mesh: trimesh.Trimesh, options: SliceOptions, profile: Profile = DEFAULT,
          volume_mm3: float | None = None) -> Paths:
    """The filament volume ``mesh`` (mm) would take with ``options``, split by kind of path.
    ``volume_mm3``: the model's volume when known (an open mesh's signed volume is not it)."""
    h, w = options.layer_height, profile.line_width_mm
    areas, nz, centroid_z, signed = faces(mesh)
    volume = abs(signed) if volume_mm3 is None else volume_mm3
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    x, y, height = (float(v) for v in hi - lo)
    layers = max(1, math.ceil(height / h))
    flat = np.abs(nz) > 0.7  # within ~45° of horizontal: printed as top or bottom skin
    side_area = float(areas[~flat].sum())
    flat_projected = float((areas[flat] * np.abs(nz[flat])).sum()) / 2  # a flat region has a top and a bottom
    walls = min(volume, side_area * profile.perimeters * w)
    skins = min(volume - walls, flat_projected * (profile.top_layers + profile.bottom_layers) * h)
    inside = max(0.0, volume - walls - skins)
    # PrusaSlicer fills regions under solid_infill_below_area (70 mm²) solid: thin parts have no sparse infill.
    fraction = 1.0 if inside / layers / h < profile.solid_below_mm2 else options.infill / 100
    infill = inside * fraction
    support = _support_volume(areas, nz, centroid_z - float(lo[2]), options) * profile.support_fill
    skirt = 2 * (x + y + 4 * profile.skirt_distance_mm) * w * h
    return Paths(walls, skins, infill, support, skirt, layers, fraction)


def estimate(mesh: trimesh.Trimesh, options: SliceOptions, density_g_cm3: float,
             profile: Profile = DEFAULT, volume_mm3: float | None = None) -> Metrics:
    """Grams and seconds for ``mesh`` (mm) sliced with ``options``."""
    p = paths(mesh, options, profile, volume_mm3)
    grams = p.volume / 1000 * density_g_cm3
    per_mm3 = 1 / (profile.line_width_mm * options.layer_height)  # mm of path per mm³ extruded
    solid, sparse = (p.skins + p.infill, 0.0) if p.infill_fraction >= 1 else (p.skins, p.infill)
    sparse_cost = profile.sparse_s_per_mm + profile.sparse_density_s_per_mm * p.infill_fraction
    seconds = (per_mm3 * (p.walls * profile.wall_s_per_mm + solid * profile.solid_s_per_mm + sparse * sparse_cost
                          + (p.support + p.skirt) * profile.support_s_per_mm)
               + p.layers * profile.layer_s + profile.start_s)
    return Metrics(grams=round(grams, 2), time_s=round(seconds))


def _support_volume(areas: np.ndarray, nz: np.ndarray, height: np.ndarray, options: SliceOptions) -> float:
    """The volume under overhangs that need support: faces facing down past the threshold, above the bed."""
    if not options.supports.enabled:
        return 0.0
    # A down-facing face sloped θ from the horizontal has -nz = cos θ; PrusaSlicer supports it when
    # θ is under the threshold angle, i.e. when -nz > cos(angle).
    pick = (-nz > math.cos(math.radians(options.supports.angle))) & (height > options.layer_height * 2)
    return float((areas[pick] * -nz[pick] * height[pick]).sum())
