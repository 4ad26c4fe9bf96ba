"""Test models made in code (nothing downloaded): the tests, the bench and the estimator's fit use them.

Every model sits on the bed (z from 0) and is a closed, printable solid in millimetres.
"""

from __future__ import annotations

import math

import trimesh


def _on_bed(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    mesh.apply_translation(-mesh.bounds[0])
    return mesh


def cube(size: float = 20.0) -> trimesh.Trimesh:
    return _on_bed(trimesh.creation.box((size, size, size)))


def cylinder(radius: float = 10.0, height: float = 30.0, sections: int = 96) -> trimesh.Trimesh:
    return _on_bed(trimesh.creation.cylinder(radius=radius, height=height, sections=sections))


def overhang(width: float = 40.0, stem: float = 10.0, height: float = 25.0, slab: float = 4.0) -> trimesh.Trimesh:
    """A T: a square stem holding a wide flat slab whose underside needs supports."""
    stem_mesh = trimesh.creation.box((stem, stem, height))
    stem_mesh.apply_translation((0, 0, height / 2))
    top = trimesh.creation.box((width, width / 2, slab))
    top.apply_translation((0, 0, height + slab / 2))
    # Two touching solids in one file, as many real uploads are: slicers merge them by layer.
    return _on_bed(trimesh.util.concatenate([stem_mesh, top]))


def tube(outer: float = 15.0, inner: float = 11.0, height: float = 40.0, sections: int = 96) -> trimesh.Trimesh:
    """A hollow cylinder: thin walls, little infill."""
    ring = trimesh.creation.annulus(r_min=inner, r_max=outer, height=height, sections=sections)
    return _on_bed(ring)


def sphere(triangles: int = 50_000, radius: float = 20.0) -> trimesh.Trimesh:
    """A UV sphere with about ``triangles`` faces (the bench's large models)."""
    n = max(8, round(math.sqrt(triangles / 4)))
    return _on_bed(trimesh.creation.uv_sphere(radius=radius, count=[n, n]))


def to_3mf(*meshes: trimesh.Trimesh) -> bytes:
    """A 3MF archive holding the models side by side on the plate."""
    scene = trimesh.Scene()
    offset = 0.0
    for i, mesh in enumerate(meshes):
        placed = mesh.copy()
        placed.apply_translation((offset, 0, 0))
        offset += float(placed.extents[0]) + 5
        scene.add_geometry(placed, node_name=f"part{i}")
    return scene.export(file_type="3mf")


def stl(mesh: trimesh.Trimesh, ascii: bool = False) -> bytes:
    out = mesh.export(file_type="stl_ascii" if ascii else "stl")
    return out.encode() if isinstance(out, str) else out


__all__ = ["cube", "cylinder", "overhang", "tube", "sphere", "to_3mf", "stl"]
