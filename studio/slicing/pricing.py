"""Prices for printed models, and quote lines from sliced files (the quick order).

A model's price = (material + machine time + setup fee) x (1 + margin), never under the template's
minimum, x the rush multiplier for a rush order; a line is that unit price x quantity. Material =
grams / 1000 x the material's cost per kg; machine time = hours x the printer's hourly rate. Money
is ``Decimal`` throughout, rounded once, to cents, half up, on the unit price (the line total is
then exactly quantity x unit price, as the studio's documents compute it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa

from studio.slicing import catalog
from warehouse.tables.studio_print import studio_tmp_files as files

CENT = Decimal("0.01")


class NotSliced(ValueError):
    """A file without metrics yet (not sliced, or still running)."""


@dataclass(frozen=True)
class Breakdown:
    material: Decimal
    machine: Decimal
    setup: Decimal
    margin: Decimal
    minimum_applied: bool
    rush_multiplier: Decimal
    unit_price: Decimal
    quantity: int
    total: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}


def price_model(grams: float, time_s: int, *, cost_per_kg: Decimal, hourly_rate: Decimal, setup_fee: Decimal,
                margin_percent: Decimal, minimum_price: Decimal, rush_multiplier: Decimal = Decimal(1),
                rush: bool = False, quantity: int = 1) -> Breakdown:
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    # Each part is rounded to the cent first and the price built from the rounded parts, so the
    # breakdown a client reads adds up to the unit price to the cent.
    material = (Decimal(str(grams)) / 1000 * cost_per_kg).quantize(CENT, ROUND_HALF_UP)
    machine = (Decimal(time_s) / 3600 * hourly_rate).quantize(CENT, ROUND_HALF_UP)
    setup = setup_fee.quantize(CENT, ROUND_HALF_UP)
    base = material + machine + setup
    margin = (base * margin_percent / 100).quantize(CENT, ROUND_HALF_UP)
    unit = base + margin
    minimum_applied = unit < minimum_price
    unit = max(unit, minimum_price)
    multiplier = rush_multiplier if rush else Decimal(1)
    unit = (unit * multiplier).quantize(CENT, ROUND_HALF_UP)
    return Breakdown(material, machine, setup, margin, minimum_applied,
                     multiplier, unit, quantity, unit * quantity)


def quick_order_lines(engine: sa.Engine, tenant_id: str, items: list[dict[str, Any]], *,
                      template_id: int | None = None, rush: bool = False, owner: str | None = None
                      ) -> list[dict[str, Any]]:
    """Quote lines for sliced models: ``items`` are ``{"file_id", "quantity"}``; each line is
    ``{"description", "quantity", "unit_price", "breakdown", "tmp_file_id", "fallback"}``, ready for
    the studio's quotes (one line per model). Every file must be completed (:class:`NotSliced`);
    printer, material and template must be this studio's (:class:`catalog.CatalogError`)."""
    lines = []
    with engine.connect() as conn:
        tpl = catalog.template(conn, tenant_id, template_id)
        for item in items:
            query = sa.select(files).where(files.c.tenant_id == tenant_id, files.c.id == int(item["file_id"]))
            if owner is not None:
                query = query.where(files.c.user_id == owner)
            row = conn.execute(query).first()
            if row is None:
                raise catalog.CatalogError(f"no file {item['file_id']}")
            meta = row.metadata or {}
            if row.status != "completed" or not meta.get("metrics"):
                raise NotSliced(f"{row.filename} is not sliced yet (status {row.status})")
            settings = meta["settings"]
            printer = catalog.printer(conn, tenant_id, settings.get("printerId"))
            material = catalog.material(conn, tenant_id, settings.get("materialId"))
            if printer.id is None or material.id is None:
                raise NotSliced(f"{row.filename} was sliced without a printer and material to price it by: "
                                "slice it again naming printerId and materialId")
            quantity = int(item.get("quantity", 1))
            metrics = meta["metrics"]
            price = price_model(metrics["grams"], metrics["timeSec"], cost_per_kg=material.cost_per_kg,
                                hourly_rate=printer.hourly_rate, setup_fee=tpl.setup_fee,
                                margin_percent=tpl.margin_percent, minimum_price=tpl.minimum_price,
                                rush_multiplier=tpl.rush_multiplier, rush=rush, quantity=quantity)
            lines.append({"description": describe(row.filename, material.name, settings["options"], metrics,
                                                  bool(meta.get("fallback")), rush, support_style=meta.get("supportStyle"),
                                                  notes=meta.get("notes") or []),
                          "quantity": quantity, "unit_price": price.unit_price, "breakdown": price.as_dict(),
                          "tmp_file_id": row.id, "fallback": bool(meta.get("fallback"))})
    return lines


# What each PrusaSlicer support style is called on a quote line.
STYLE_NAMES = {"grid": "normal", "snug": "snug", "organic": "tree"}


def describe(filename: str, material: str, options: dict, metrics: dict, fallback: bool, rush: bool, *,
             support_style: str | None = None, notes: list[str] | tuple[str, ...] = ()) -> str:
    """A quote line's text: the model, its material and settings, grams and time, and the notes.

    Supports are named by what was really printed with (``support_style``, from the slicer: tree
    asked of a PrusaSlicer without organic supports is sliced snug); an estimate says so, and its
    notes (what the figures are) stay on the line."""
    hours, rest = divmod(int(metrics["timeSec"]), 3600)
    supports = options.get("supports") or {}
    used = ""
    if supports.get("enabled"):
        asked = supports.get("pattern", "normal")
        if fallback or support_style is None:
            used = f", {asked} supports"
        else:
            name = STYLE_NAMES.get(support_style, support_style)
            used = f", {name} supports" + (f" ({asked} asked)" if name != asked else "")
    parts = [f"3D print: {filename}", f"{material}, {options['layerHeight']} mm layers, {options['infill']}% infill"
             + used, f"{metrics['grams']:.0f} g, {hours}h {rest // 60:02d}m" + (" (estimated)" if fallback else "")]
    parts += [str(note) for note in notes]
    return " · ".join(parts) + (" · rush" if rush else "")
