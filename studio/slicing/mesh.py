"""Uploaded models read as meshes (trimesh): STL, ASCII or binary, and 3MF.

Why trimesh rather than numpy-stl: it reads 3MF as well as both STL forms, gives volume, surface
area, bounding box and watertightness directly (numpy-stl reads STL only and leaves the rest to
us), and is actively maintained (releases every few weeks, numpy its only hard dependency; 3MF
needs lxml and networkx). Nothing is trusted before it is measured: size first, then the 3MF zip's
own table of contents (a zip bomb is refused before anything is inflated), then the mesh.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import asdict, dataclass

import numpy as np
import trimesh

STL, THREEMF = "stl", "3mf"
MIME = {STL: "model/stl", THREEMF: "model/3mf"}
_MODEL_PART = "3d/3dmodel.model"
# A 3MF says its unit on its <model> (3MF core spec, 1.3: "millimeter" when absent); we measure in mm.
MM_PER_UNIT = {"micron": 0.001, "millimeter": 1.0, "centimeter": 10.0, "inch": 25.4, "foot": 304.8, "meter": 1000.0}


class InvalidModel(ValueError):
    """The upload is not a model we can quote: ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class MeshInfo:
    """What the quote and the estimate need from a model, in millimetres."""

    triangles: int
    volume_mm3: float
    area_mm2: float
    size_mm: tuple[float, float, float]  # bounding box x, y, z
    watertight: bool

    def as_dict(self) -> dict:
        return {**asdict(self), "size_mm": list(self.size_mm)}

    @classmethod
    def from_dict(cls, data: dict) -> "MeshInfo":
        return cls(int(data["triangles"]), float(data["volume_mm3"]), float(data["area_mm2"]),
                   tuple(float(v) for v in data["size_mm"]), bool(data["watertight"]))


def kind_of(filename: str) -> str:
    name = filename.lower()
    if name.endswith(".stl"):
        return STL
    if name.endswith(".3mf"):
        return THREEMF
    raise InvalidModel("unsupported-type", "Only STL and 3MF models are accepted (.stl, .3mf).")


def load(data: bytes, filename: str, *, max_bytes: int, max_triangles: int) -> tuple[trimesh.Trimesh, str]:
    """The model as one mesh (a 3MF's objects merged, as placed on its build plate) and its kind."""
    kind = kind_of(filename)
    if not data:
        raise InvalidModel("empty", "The file is empty.")
    if len(data) > max_bytes:
        raise InvalidModel("too-large", f"The file is {len(data):,} bytes; the limit is {max_bytes:,}.")
    if kind == THREEMF:
        _check_3mf_archive(data, max_bytes)
    try:
        loaded = read(data, kind, process=True)
    except InvalidModel:
        raise
    except Exception as exc:  # trimesh raises whatever its parser hit: all of it means "not a model"
        raise InvalidModel("not-a-mesh", f"The file is not a readable {kind.upper()} model ({type(exc).__name__}).") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InvalidModel("no-triangles", "The file holds no triangles.")
    if len(loaded.faces) > max_triangles:
        raise InvalidModel("too-many-triangles", f"The model has {len(loaded.faces):,} triangles; the limit is "
                                                  f"{max_triangles:,}.")
    if not np.isfinite(loaded.vertices).all():
        raise InvalidModel("not-a-mesh", "The model has coordinates that are not numbers.")
    return loaded, kind


# A binary STL: an 80-byte header, a triangle count, then per triangle a normal, three vertices
# (little-endian float32) and a 2-byte attribute.
_STL_TRIANGLE = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])


def _binary_stl(data: bytes) -> trimesh.Trimesh | None:
    """A binary STL as triangle soup straight from its bytes (numpy, no vertex merging: what the
    estimate needs, three times faster than trimesh's reader on a million triangles); ``None``
    when the bytes are not exactly a binary STL (an ASCII one, say)."""
    if len(data) < 84:
        return None
    count = int.from_bytes(data[80:84], "little")
    if count == 0 or len(data) != 84 + count * _STL_TRIANGLE.itemsize:
        return None
    triangles = np.frombuffer(data, dtype=_STL_TRIANGLE, count=count, offset=84)
    vertices = triangles["vertices"].reshape(-1, 3).astype(np.float64)
    return trimesh.Trimesh(vertices=vertices, faces=np.arange(3 * count).reshape(-1, 3), process=False)


def read(data: bytes, kind: str, *, process: bool) -> trimesh.Trimesh:
    """The file as one mesh in millimetres: a 3MF in centimetres, inches, microns, feet or metres is
    scaled by its ``unit`` (an STL carries no unit: millimetres, as every slicer reads it).
    ``process=False`` (the fallback estimate, on a model measured at upload): a binary STL is read
    as it is stored, without trimesh's reader."""
    if kind == STL and not process and (soup := _binary_stl(data)) is not None:
        return soup
    loaded = trimesh.load(io.BytesIO(data), file_type=kind, force="mesh", process=process)
    if kind == THREEMF and isinstance(loaded, trimesh.Trimesh):
        unit = str(loaded.metadata.get("units") or "millimeter").strip().lower()
        unit = "millimeter" if unit == "millimeters" else unit  # trimesh's name for "no unit given"
        if unit not in MM_PER_UNIT:
            raise InvalidModel("unknown-unit", f"The 3MF model's unit {unit!r} is none of "
                                               f"{', '.join(MM_PER_UNIT)}.")
        if MM_PER_UNIT[unit] != 1.0:
            loaded.apply_scale(MM_PER_UNIT[unit])
        loaded.units = "millimeters"
    return loaded


def measure(mesh: trimesh.Trimesh) -> MeshInfo:
    size = mesh.extents
    if float(size.min()) <= 0:
        raise InvalidModel("flat", f"The model is flat (size {_size_text(size)}): nothing to print.")
    watertight = bool(mesh.is_watertight)
    # An open mesh's signed volume is not its volume; its convex hull's is an honest upper bound.
    volume = abs(float(mesh.volume)) if watertight else float(mesh.convex_hull.volume)
    return MeshInfo(len(mesh.faces), volume, float(mesh.area), tuple(round(float(v), 3) for v in size), watertight)


def inspect(data: bytes, filename: str, *, max_bytes: int, max_triangles: int) -> tuple[MeshInfo, str]:
    """Validate an upload and measure it: (what it is, its kind), or :class:`InvalidModel`."""
    mesh, kind = load(data, filename, max_bytes=max_bytes, max_triangles=max_triangles)
    return measure(mesh), kind


def fits(size_mm: tuple[float, float, float], volume_mm: tuple[float, float, float]) -> bool:
    """Whether a model fits a build volume as it is oriented, or turned a quarter on the bed."""
    x, y, z = size_mm
    bx, by, bz = volume_mm
    return z <= bz and ((x <= bx and y <= by) or (y <= bx and x <= by))


def _size_text(size) -> str:
    return " x ".join(f"{float(v):.1f}" for v in size) + " mm"


def size_text(size_mm) -> str:
    return _size_text(size_mm)


def _check_3mf_archive(data: bytes, max_bytes: int) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = {info.filename.lower(): info for info in archive.infolist()}
    except zipfile.BadZipFile:
        raise InvalidModel("not-a-mesh", "The 3MF file is not a zip archive.") from None
    if _MODEL_PART not in names:
        raise InvalidModel("not-a-mesh", "The 3MF archive has no 3D/3dmodel.model part.")
    inflated = sum(info.file_size for info in names.values())
    if inflated > 8 * max_bytes:
        raise InvalidModel("too-large", f"The 3MF archive inflates to {inflated:,} bytes; the limit is {8 * max_bytes:,}.")
