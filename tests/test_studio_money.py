"""The studio's one rounding rule (studio/money.py), on lines and documents."""

from decimal import Decimal as D

import pytest

from studio.errors import StudioError
from studio.money import MAX_TOTAL, document_totals, line_totals


def test_each_amount_is_rounded_half_up_to_cents_where_it_is_made():
    line = line_totals("3", "12.345", "10", "0.1")
    assert line.subtotal == D("37.04")  # 37.035 -> half up
    assert line.discount == D("3.70")  # 3.704
    assert line.tax == D("3.33")  # (37.04 - 3.70) x 0.1 = 3.334
    assert line.total == D("36.67")
    assert line_totals("1", "0.005").subtotal == D("0.01")  # a half cent rounds up, never to even
    assert line_totals("1", "0.015").subtotal == D("0.02")
    assert line_totals("1", "0.0049").subtotal == D("0.00")
    assert line_totals("2.5", "10", "0", "0").total == D("25.00")


def test_gst_is_ten_percent_unless_the_line_says_otherwise():
    assert line_totals("1", "100").tax == D("10.00")
    assert line_totals("1", "100", tax_rate="0").tax == D("0.00")


def test_a_document_is_the_sum_of_its_lines_even_where_rounding_the_sum_would_differ():
    lines = [line_totals("1", "0.333") for _ in range(3)]  # each 0.33 + 0.03 GST
    totals = document_totals(lines)
    assert totals.subtotal == D("0.99") and totals.tax_total == D("0.09") and totals.total == D("1.08")
    assert totals.total != (D("0.999") * D("1.1")).quantize(D("0.01"))  # 1.10: not how it is done
    assert document_totals([]).total == D("0.00")


@pytest.mark.parametrize("args", [("0", "1"), ("-1", "1"), ("1", "-0.01"), ("1", "1", "101"), ("1", "1", "0", "1.5"),
                                  ("x", "1"), ("1", "NaN"), ("1", "Infinity")])
def test_impossible_lines_are_refused(args):
    with pytest.raises(StudioError) as refused:
        line_totals(*args)
    assert refused.value.status == 422


def test_a_total_beyond_what_is_stored_exactly_is_refused():
    with pytest.raises(StudioError) as refused:
        document_totals([line_totals("1000", "1000000", tax_rate="0.5")] * 3)
    assert refused.value.kind == "amount-too-large"
    assert document_totals([line_totals("1", MAX_TOTAL, tax_rate="0")]).total == MAX_TOTAL
