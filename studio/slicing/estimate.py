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


def paths(mesh: trimesh.Trimesh, options: SliceOptions, profile: Profile = DEFAULT) -> Paths:
    """The filament volume ``mesh`` (mm) would take with ``options``, split by kind of path."""
    h, w = options.layer_height, profile.line_width_mm
    normals, areas = mesh.face_normals, mesh.area_faces
    nz = normals[:, 2]
    volume = abs(float(mesh.volume)) if mesh.is_watertight else float(mesh.convex_hull.volume)
    height = float(mesh.extents[2])
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
    support = _support_volume(mesh, options) * profile.support_fill
    x, y = float(mesh.extents[0]), float(mesh.extents[1])
    skirt = 2 * (x + y + 4 * profile.skirt_distance_mm) * w * h
    return Paths(walls, skins, infill, support, skirt, layers, fraction)


def estimate(mesh: trimesh.Trimesh, options: SliceOptions, density_g_cm3: float,
             profile: Profile = DEFAULT) -> Metrics:
    """Grams and seconds for ``mesh`` (mm) sliced with ``options``."""
    p = paths(mesh, options, profile)
    grams = p.volume / 1000 * density_g_cm3
    per_mm3 = 1 / (profile.line_width_mm * options.layer_height)  # mm of path per mm³ extruded
    solid, sparse = (p.skins + p.infill, 0.0) if p.infill_fraction >= 1 else (p.skins, p.infill)
    sparse_cost = profile.sparse_s_per_mm + profile.sparse_density_s_per_mm * p.infill_fraction
    seconds = (per_mm3 * (p.walls * profile.wall_s_per_mm + solid * profile.solid_s_per_mm + sparse * sparse_cost
                          + (p.support + p.skirt) * profile.support_s_per_mm)
               + p.layers * profile.layer_s + profile.start_s)
    return Metrics(grams=round(grams, 2), time_s=round(seconds))


def _support_volume(mesh: trimesh.Trimesh, options: SliceOptions) -> float:
    """The volume under overhangs that need support: faces facing down past the threshold, above the bed."""
    if not options.supports.enabled:
        return 0.0
    nz = mesh.face_normals[:, 2]
    # A down-facing face sloped θ from the horizontal has -nz = cos θ; PrusaSlicer supports it when
    # θ is under the threshold angle, i.e. when -nz > cos(angle).
    steep = -nz > math.cos(math.radians(options.supports.angle))
    bottom = float(mesh.bounds[0][2])
    centroids = mesh.triangles_center[:, 2] - bottom
    above_bed = centroids > options.layer_height * 2
    pick = steep & above_bed
    return float((mesh.area_faces[pick] * -nz[pick] * centroids[pick]).sum())
