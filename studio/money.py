"""Line and document totals, in ``Decimal``, with one rounding rule.

**The rule.** Every amount is rounded to cents, half up (0.005 → 0.01), once, where it is made:

* line subtotal = quantity × unit price, rounded;
* line discount = line subtotal × discount % / 100, rounded;
* line tax (GST) = (line subtotal − line discount) × tax rate, rounded;
* line total = subtotal − discount + tax (already cents: no rounding);
* the document's subtotal, discounts, tax and total are the sums of its lines' (no rounding).

So a document's total always equals the sum of its printed lines, and its GST the sum of the
lines' GST. A new line's tax rate defaults to the studio's ``studio_business.gst_rate`` (10 %).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from studio.errors import StudioError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
GST = Decimal("0.1000")
HUNDRED = Decimal(100)
# A document's total above this is refused: both warehouses store it exactly (SQLite's doubles
# reach 15 significant digits), and no studio invoices a billion.
MAX_TOTAL = Decimal("1000000000.00")


def cents(value: Decimal) -> Decimal:
    """``value`` rounded to cents, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def price(value: Decimal) -> Decimal:
    """A unit price as stored (up to 4 places), with at least cents: 0.335 stays 0.335 (the line's
    total is rounded, the price is not), 18.5000 reads 18.50."""
    value = Decimal(value).normalize()
    return value.quantize(CENT) if value.as_tuple().exponent > -2 else value


def decimal(value: Any, what: str) -> Decimal:
    try:
        out = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise StudioError(422, "invalid-amount", f"{what} is not a number") from None
    if not out.is_finite():
        raise StudioError(422, "invalid-amount", f"{what} is not a finite number")
    return out


@dataclass(frozen=True)
class LineTotals:
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal


def line_totals(quantity: Any, unit_price: Any, discount_percent: Any = 0, tax_rate: Any = GST) -> LineTotals:
    """One line's amounts by the rule above; negative inputs, a discount over 100 % and a tax
    rate over 100 % are refused."""
    qty, price = decimal(quantity, "quantity"), decimal(unit_price, "unit price")
    pct, rate = decimal(discount_percent, "discount percent"), decimal(tax_rate, "tax rate")
    if qty <= 0:
        raise StudioError(422, "invalid-amount", "quantity must be above 0")
    if price < 0:
        raise StudioError(422, "invalid-amount", "unit price must not be negative")
    if not 0 <= pct <= HUNDRED:
        raise StudioError(422, "invalid-amount", "discount percent must be between 0 and 100")
    if not 0 <= rate <= 1:
        raise StudioError(422, "invalid-amount", "tax rate must be between 0 and 1 (0.1 is 10 %)")
    subtotal = cents(qty * price)
    discount = cents(subtotal * pct / HUNDRED)
    tax = cents((subtotal - discount) * rate)
    return LineTotals(subtotal, discount, tax, subtotal - discount + tax)


def document_totals(lines: Iterable[LineTotals]) -> Totals:
    """The sums of the lines' amounts; a total above ``MAX_TOTAL`` is refused."""
    lines = list(lines)
    totals = Totals(sum((l.subtotal for l in lines), ZERO), sum((l.discount for l in lines), ZERO),
                    sum((l.tax for l in lines), ZERO), sum((l.total for l in lines), ZERO))
    if totals.total > MAX_TOTAL:
        raise StudioError(422, "amount-too-large", f"a document's total may not exceed {MAX_TOTAL}")
    return totals
