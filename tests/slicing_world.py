"""Shared set-up of the slicing tests: a studio with a printer, a material and a template, a
slice service over a folder store, and slicer stand-in scripts (SLICER_BIN) for timing and hangs."""

from __future__ import annotations

import os
import shutil
import stat
import time
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from studio.slicing.service import SliceService
from studio.slicing.settings import SlicerSettings
from tests.studio_storage import FolderStorage
from warehouse.tables.core import tenants
from warehouse.tables.studio import studio_business
from warehouse.tables.studio_print import studio_materials, studio_printers, studio_product_templates

PRUSA = shutil.which(os.environ.get("SLICER_BIN", "prusa-slicer"))
requires_slicer = pytest.mark.skipif(PRUSA is None, reason="PrusaSlicer is not installed (apt-get install prusa-slicer)")


def make_studio(engine: sa.Engine, tenant_id: str) -> dict[str, int]:
    with engine.begin() as conn:
        conn.execute(sa.insert(tenants).values(tenant_id=tenant_id, name=f"Studio {tenant_id}"))
        conn.execute(sa.insert(studio_business).values(tenant_id=tenant_id, name=f"Studio {tenant_id}"))  # a studio
        printer = conn.execute(sa.insert(studio_printers).values(
            tenant_id=tenant_id, name="MK3S #1", hourly_rate=Decimal("4.00"), build_x_mm=250, build_y_mm=210,
            build_z_mm=210).returning(studio_printers.c.id)).scalar_one()
        small = conn.execute(sa.insert(studio_printers).values(
            tenant_id=tenant_id, name="Mini", hourly_rate=Decimal("3.00"), build_x_mm=18, build_y_mm=18,
            build_z_mm=18).returning(studio_printers.c.id)).scalar_one()
        material = conn.execute(sa.insert(studio_materials).values(
            tenant_id=tenant_id, name="PLA black", cost_per_kg=Decimal("30.00"), density_g_cm3=Decimal("1.24"),
            colour="black").returning(studio_materials.c.id)).scalar_one()
        template = conn.execute(sa.insert(studio_product_templates).values(
            tenant_id=tenant_id, name="Standard", setup_fee=Decimal("5.00"), margin_percent=Decimal("40"),
            minimum_price=Decimal("15.00"), rush_multiplier=Decimal("1.5")).returning(studio_product_templates.c.id)
        ).scalar_one()
    return {"printer": printer, "small_printer": small, "material": material, "template": template}


def settings(**values) -> SlicerSettings:
    """Settings as given; ``timeout_ms`` may be under the 30 s floor (tests of the kill need seconds, not minutes)."""
    base = SlicerSettings(SLICER_BIN=values.pop("bin", PRUSA or "prusa-slicer")).model_dump()
    base.update(poll_s=0.1, retry_backoff_s=0.0, lease_s=5.0)
    base.update(values)
    return SlicerSettings.model_construct(**base)


def service(engine: sa.Engine, root: Path, **values) -> SliceService:
    return SliceService(engine, FolderStorage(root), settings(**values))


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def timing_wrapper(path: Path, log: Path) -> str:
    """SLICER_BIN that records when each slicer process starts and ends, then runs PrusaSlicer."""
    return script(path, f'echo "start $$ $(date +%s.%N)" >> {log}\nsleep 0.3\n"{PRUSA}" "$@"\nrc=$?\n'
                        f'echo "end $$ $(date +%s.%N)" >> {log}\nexit $rc\n')


def intervals(log: Path) -> list[tuple[float, float]]:
    starts, spans = {}, []
    for line in log.read_text().splitlines():
        kind, pid, at = line.split()
        if kind == "start":
            starts[pid] = float(at)
        else:
            spans.append((starts.pop(pid), float(at)))
    assert not starts, f"slicer runs that never ended: {starts}"
    return sorted(spans)


def drain(svc: SliceService, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not svc.run_due() and not svc.leases.any_due():
            return
    raise AssertionError("slices still due")
