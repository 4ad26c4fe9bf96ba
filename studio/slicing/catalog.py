"""A studio's printers, materials and pricing templates, as the slicer and the price read them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from studio.slicing.runner import DEFAULT_PROFILES, PROFILES
from warehouse.tables.studio_print import studio_materials, studio_printers, studio_product_templates

# The default profile's build volume (fff_generic_mk3.ini): used when no printer is chosen.
DEFAULT_BUILD_MM = (250.0, 210.0, 210.0)
DEFAULT_DENSITY = Decimal("1.24")
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,90}\.ini$")


class CatalogError(LookupError):
    """A printer, material or template that this studio does not have (or has retired)."""


@dataclass(frozen=True)
class Printer:
    id: int | None
    name: str
    hourly_rate: Decimal
    build_mm: tuple[float, float, float]
    profile: Path


@dataclass(frozen=True)
class Material:
    id: int | None
    name: str
    cost_per_kg: Decimal
    density: Decimal
    profile: Path


def profile_path(name: str | None, default: Path) -> Path:
    """A shipped profile by file name (never a path: names come from the database)."""
    if not name:
        return default
    if not _PROFILE_NAME.match(name) or not (PROFILES / name).is_file():
        raise CatalogError(f"unknown slicer profile {name!r}")
    return PROFILES / name


def printer(conn: sa.Connection, tenant_id: str, printer_id: int | None) -> Printer:
    """The chosen printer; None: the default profile's build volume with no rate (slicing only)."""
    if printer_id is None:
        return Printer(None, "default", Decimal(0), DEFAULT_BUILD_MM, DEFAULT_PROFILES[0])
    t = studio_printers.c
    row = conn.execute(sa.select(studio_printers).where(t.tenant_id == tenant_id, t.id == printer_id, t.active)).first()
    if row is None:
        raise CatalogError(f"this studio has no active printer {printer_id}")
    return Printer(row.id, row.name, row.hourly_rate, (float(row.build_x_mm), float(row.build_y_mm),
                   float(row.build_z_mm)), profile_path(row.profile, DEFAULT_PROFILES[0]))


def material(conn: sa.Connection, tenant_id: str, material_id: int | None) -> Material:
    if material_id is None:
        return Material(None, "PLA", Decimal(0), DEFAULT_DENSITY, DEFAULT_PROFILES[1])
    t = studio_materials.c
    row = conn.execute(sa.select(studio_materials).where(t.tenant_id == tenant_id, t.id == material_id,
                                                         t.active)).first()
    if row is None:
        raise CatalogError(f"this studio has no active material {material_id}")
    return Material(row.id, row.name, row.cost_per_kg, row.density_g_cm3, profile_path(row.profile, DEFAULT_PROFILES[1]))


def template(conn: sa.Connection, tenant_id: str, template_id: int | None):
    """The pricing template (the studio's first active one when none is named)."""
    t = studio_product_templates.c
    query = sa.select(studio_product_templates).where(t.tenant_id == tenant_id, t.active)
    query = query.where(t.id == template_id) if template_id is not None else query.order_by(t.id)
    row = conn.execute(query.limit(1)).first()
    if row is None:
        raise CatalogError("this studio has no such pricing template" if template_id is not None
                           else "this studio has no pricing template yet")
    return row
