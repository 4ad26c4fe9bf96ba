"""Units for the catalog: net weight in grams, volume in ml, potency in %, money in Decimal.

Pure functions used by ``syncing.pos_normalise``. The rules:

* Net quantity: a size label that states one wins ("5pk 0.5g" -> 2.5 g, "355ml"); otherwise
  the source's amount + unit field. Trade fractions of an ounce are the trade grams (1/8 oz =
  3.5 g, not 3.54 g) and Blaze's named weights (``EIGHTH``...) mean the same; "each" has no
  weight; a zero weight means "not set". "100mg" in a label is content, not net weight.
* Potency in % with ranges kept: ``%`` (or no unit) as is; ``mg/g`` / 10; ``mg`` -> % only when the net
  mass is known, % = mg / (grams x 1000) x 100. Without grams (edibles sold "each",
  tinctures in ml) the figures stay in mg: we never guess a density or a serving.
* Money: ``Decimal`` rounded half-up to cents; a negative price is refused.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from resources.pos.base import Potency

CENT = Decimal("0.01")
GRAMS_PER_OZ = Decimal("28.349523125")
TRADE_OUNCES = {Decimal("0.125"): Decimal("3.5"), Decimal("0.25"): Decimal("7"), Decimal("0.5"): Decimal("14"),
                Decimal("1"): Decimal("28")}
OUNCE_UNITS = {"oz", "ounce", "ounces"}
UNIT_GRAMS = {"g": 1, "gr": 1, "gram": 1, "grams": 1, "mg": Decimal("0.001"), "milligrams": Decimal("0.001"),
              "kg": 1000, "custom grams": 1}
NAMED_GRAMS = {"half gram": Decimal("0.5"), "full gram": 1, "eighth": Decimal("3.5"), "quarter": 7, "half": 14}
UNIT_ML = {"ml": 1, "milliliters": 1, "millilitres": 1, "l": 1000, "liter": 1000, "litre": 1000,
           "fl oz": Decimal("29.5735")}
PERCENT_UNITS = {"%", "percentage", "percent", "pct"}
PER_GRAM_UNITS = {"mg g", "mg per g"}
MG_UNITS = {"mg", "milligrams"}
_SIZE = re.compile(r"(?:(\d+)\s*(?:pk|pack|ct)\s+)?(\d+(?:\.\d+)?)\s*([a-z/ ]+)")


def unit_key(unit: str) -> str:
    return "%" if unit.strip() == "%" else re.sub(r"[^a-z0-9]+", " ", unit.lower()).strip()


def amount_in(value: Decimal, unit: str) -> tuple[Decimal | None, Decimal | None]:
    """(grams, millilitres) for ``value`` in ``unit``; (None, None) for counts ("each")."""
    u = unit_key(unit)
    if u in OUNCE_UNITS:
        return TRADE_OUNCES.get(value.normalize(), value * GRAMS_PER_OZ), None
    if u in NAMED_GRAMS:
        return value * Decimal(NAMED_GRAMS[u]), None
    if u in UNIT_GRAMS:
        return value * Decimal(UNIT_GRAMS[u]), None
    if u in UNIT_ML:
        return None, value * Decimal(UNIT_ML[u])
    return None, None


def net_quantity(size: str | None, amount: Decimal | None, unit: str | None) -> tuple[Decimal | None, Decimal | None]:
    """(weight in g, volume in ml) of one unit of sale: the size label first, then the amount field."""
    if size and (m := _SIZE.fullmatch(size.strip().lower())) and unit_key(m[3]) not in MG_UNITS:
        grams, ml = amount_in(Decimal(m[2]) * int(m[1] or 1), m[3])
        if grams or ml:
            return grams, ml
    if size and unit_key(size) in NAMED_GRAMS:
        return Decimal(NAMED_GRAMS[unit_key(size)]), None
    if unit:
        if amount is None and (unit_key(unit) in NAMED_GRAMS or unit_key(unit) in OUNCE_UNITS):
            amount = Decimal(1)  # Blaze's EIGHTH / OUNCE name the weight without an amount
        if amount:
            grams, ml = amount_in(amount, unit)
            return grams or None, ml or None
    return None, None


def exact(value: Decimal | None) -> Decimal | None:
    """Four places (the warehouse's scale), trailing zeros dropped."""
    if value is None:
        return None
    value = value.quantize(Decimal("0.0001")).normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value  # 750, not 7.5E+2


def cannabinoid_profile(potency: list[Potency], grams: Decimal | None) -> dict[str, dict[str, Any]]:
    """``{"thc": {"min", "max", "unit"}}``: % where the rules allow, else mg."""
    profile: dict[str, dict[str, Any]] = {}
    for p in potency:
        low = p.low if p.low is not None else p.high
        high = p.high if p.high is not None else p.low
        if low is None:
            continue
        unit = unit_key(p.unit or "%")
        if unit in PERCENT_UNITS:
            values, out = (low, high), "%"
        elif unit in PER_GRAM_UNITS:
            values, out = (low / 10, high / 10), "%"
        elif unit in MG_UNITS and grams:
            values, out = (low / (grams * 10), high / (grams * 10)), "%"
        elif unit in MG_UNITS:
            values, out = (low, high), "mg"
        else:
            raise ValueError(f"unknown potency unit {p.unit!r} for {p.name}")
        lo, hi = sorted(exact(v) for v in values)
        profile[re.sub(r"[^a-z0-9]", "", p.name.lower())] = {"min": lo, "max": hi, "unit": out}
    return profile


def to_price(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if value < 0:
        raise ValueError(f"negative price {value}")
    return value.quantize(CENT, ROUND_HALF_UP)
