"""The studio's marts and checks (analytics/models/studio, seed 002): built by dbt on this run's
database (SQLite, or PostgreSQL in CI's second pass) over studio rows written here, with the
numbers an analyst would work out by hand; the checks on the studio's tables fail on bad data
and hold back the marts built on them."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from resources.dbt import run_dbt
from tests.test_marts import marts_url, money, rows  # noqa: F401  (marts_url: a warehouse of this module's own)
from warehouse.db import make_engine
from warehouse.tables.core import tenants
from warehouse.tables.studio import (
    studio_clients, studio_invoice_items, studio_invoices, studio_payments, studio_quote_items, studio_quotes,
)

UTC = dt.timezone.utc
S1, S2 = "studio-a", "studio-b"
AS_OF = "2026-06-30"
VARS = {"studio_as_of": AS_OF}
CENT = Decimal("0.01")


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def line(position: int, price: str, quantity: str = "1", discount: str = "0") -> dict:
    """A line as the studio computes it: each amount rounded to the cent, GST 10 % on the discounted amount."""
    subtotal = (Decimal(quantity) * Decimal(price)).quantize(CENT, ROUND_HALF_UP)
    cut = (subtotal * Decimal(discount) / 100).quantize(CENT, ROUND_HALF_UP)
    tax = ((subtotal - cut) * Decimal("0.1")).quantize(CENT, ROUND_HALF_UP)
    return {"position": position, "description": f"print {position}", "quantity": Decimal(quantity),
            "unit_price": Decimal(price), "discount_percent": Decimal(discount), "tax_rate": Decimal("0.1"),
            "line_subtotal": subtotal, "line_discount": cut, "line_tax": tax, "line_total": subtotal - cut + tax}


def document(conn, table, items, tenant, client, number, prefix, status, lines, issue=None, **extra) -> int:
    """A quote or invoice with its lines, its totals the sums of them; returns its id."""
    totals = {"subtotal": sum(l["line_subtotal"] for l in lines), "discount_total": sum(l["line_discount"] for l in lines),
              "tax_total": sum(l["line_tax"] for l in lines), "total": sum(l["line_total"] for l in lines)}
    row = {"tenant_id": tenant, "client_id": client, "number": number, "document_number": f"{prefix}{number:04d}",
           "status": status, "issue_date": day(issue) if issue else None, "currency": "AUD", **totals, **extra}
    if table is studio_invoices:
        row.setdefault("balance_due", totals["total"] - row.get("amount_paid", 0) + row.get("amount_refunded", 0))
    new_id = conn.execute(sa.insert(table).values(row).returning(table.c.id)).scalar_one()
    key = "quote_id" if table is studio_quotes else "invoice_id"
    conn.execute(sa.insert(items), [{"tenant_id": tenant, key: new_id, **l} for l in lines])
    return new_id


def pay(conn, tenant, invoice, method, amount, when, kind="payment") -> None:
    conn.execute(sa.insert(studio_payments).values(
        tenant_id=tenant, invoice_id=invoice, kind=kind, method=method, amount=Decimal(amount), currency="AUD",
        received_at=at(when), processor_id=f"{kind}-{invoice}-{when}" if method == "STRIPE" else None))


@pytest.fixture(scope="module")
def studio(marts_url) -> dict:  # noqa: F811
    """Two studios: quotes and invoices across months and states, payments by several methods,
    a refund, a payment after the as-of day, an invoice voided after it and one voided before."""
    engine = make_engine(marts_url)
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        conn.execute(sa.insert(tenants), [{"tenant_id": S1, "name": "Studio A"}, {"tenant_id": S2, "name": "Studio B"}])
        c1, c2, c3 = (conn.execute(sa.insert(studio_clients).values(tenant_id=t, name=n, email=f"{n}@example.com")
                                   .returning(studio_clients.c.id)).scalar_one()
                      for t, n in ((S1, "ann"), (S1, "bob"), (S2, "cy")))

        def quote(tenant, client, number, status, lines, issue=None, **extra):
            ids[f"{tenant}:Q{number}"] = document(conn, studio_quotes, studio_quote_items, tenant, client, number,
                                                  "Q-", status, lines, issue, **extra)
            return ids[f"{tenant}:Q{number}"]

        def invoice(tenant, client, number, status, lines, issue=None, **extra):
            if issue:
                extra.setdefault("due_date", day(issue) + dt.timedelta(days=14))
                extra.setdefault("issued_at", at(f"{issue}T01:00:00"))
            ids[f"{tenant}:I{number}"] = document(conn, studio_invoices, studio_invoice_items, tenant, client, number,
                                                  "INV-", status, lines, issue, **extra)
            return ids[f"{tenant}:I{number}"]

        quote(S1, c1, 1, "accepted", [line(1, "100")], "2026-04-03", sent_at=at("2026-04-03T02:00:00"))
        quote(S1, c2, 2, "declined", [line(1, "50")], "2026-04-03", sent_at=at("2026-04-03T03:00:00"))
        quote(S1, c1, 3, "accepted", [line(1, "200")], "2026-05-02", sent_at=at("2026-05-02T02:00:00"))
        quote(S1, c2, 4, "expired", [line(1, "30")], sent_at=at("2026-05-20T23:30:00"))  # no printed date: the day sent
        quote(S1, c2, 5, "draft", [line(1, "10")])
        quote(S1, c1, 6, "sent", [line(1, "10")], "2026-05-28", sent_at=at("2026-05-28T02:00:00"))
        quote(S2, c3, 1, "sent", [line(1, "20")], "2026-05-05", sent_at=at("2026-05-05T02:00:00"))

        i1 = invoice(S1, c1, 1, "partially_paid", [line(1, "100")], "2026-04-05", quote_id=ids[f"{S1}:Q1"],
                     amount_paid=Decimal(110), amount_refunded=Decimal(10))
        conn.execute(sa.update(studio_quotes).where(studio_quotes.c.id == ids[f"{S1}:Q1"]).values(invoice_id=i1))
        i2 = invoice(S1, c2, 2, "partially_paid", [line(1, "200")], "2026-04-20", amount_paid=Decimal(120))
        invoice(S1, c1, 3, "overdue", [line(1, "200")], "2026-05-03", quote_id=ids[f"{S1}:Q3"])  # linked one way only
        i4 = invoice(S1, c2, 4, "overdue", [line(1, "50")], "2026-03-01", amount_paid=Decimal(5))
        i5 = invoice(S1, c1, 5, "partially_paid", [line(1, "45", quantity="2", discount="10"), line(2, "10")],
                     "2026-06-20", amount_paid=Decimal("0.10"))
        invoice(S1, c1, 6, "void", [line(1, "30")], "2026-05-25", voided_at=at("2026-07-02T05:00:00"))  # void after
        invoice(S1, c2, 7, "void", [line(1, "10")], "2026-06-01", voided_at=at("2026-06-05T05:00:00"))  # void before
        invoice(S1, c1, 8, "draft", [line(1, "20")])
        invoice(S1, c2, 9, "issued", [line(1, "40")], "2026-07-01")  # issued after the as-of day
        j1 = invoice(S2, c3, 1, "partially_paid", [line(1, "1000")], "2026-06-10", amount_paid=Decimal(100))

        pay(conn, S1, i1, "STRIPE", "110", "2026-04-10T04:00:00")
        pay(conn, S1, i1, "STRIPE", "10", "2026-04-12T04:00:00", kind="refund")
        pay(conn, S1, i2, "BANK_TRANSFER", "100", "2026-05-10T04:00:00")
        pay(conn, S1, i2, "BANK_TRANSFER", "20", "2026-07-03T04:00:00")  # after the as-of day
        pay(conn, S1, i4, "CASH", "5", "2026-03-20T04:00:00")
        pay(conn, S1, i5, "CARD", "0.10", "2026-06-25T23:59:59")
        pay(conn, S2, j1, "STRIPE", "100", "2026-06-11T04:00:00")
    engine.dispose()
    return {"url": marts_url, "ids": ids}


@pytest.fixture(scope="module")
def built(studio, tmp_path_factory) -> dict:
    """One ``dbt build`` of the studio's sources (their checks) and marts, aged at AS_OF."""
    work = tmp_path_factory.mktemp("studio-dbt")
    result = dbt(studio, work, "build", "--select", "studio", "source:warehouse.studio_quotes+",
                 "source:warehouse.studio_invoices+", "source:warehouse.studio_payments+")
    assert result.returncode == 0, result.stdout[-6000:]
    assert "ERROR=0" in result.stdout and "SKIP=0" in result.stdout
    return {**studio, "work": work}


def dbt(world: dict, work, *args: str, check: bool = False):
    return run_dbt(list(args), world["url"], work / "profiles", target_path=work / "target", check=check,
                   extra_vars=VARS)


def mart(built, name: str, key: str) -> list[dict]:
    return rows(built["url"], f"select * from {name} order by {key}")


def plain(row: dict, *money_columns: str) -> dict:
    """A mart row with its days as ISO text and its amounts as 4-place Decimals (one form on both databases)."""
    out = {k: (str(v)[:10] if k in ("day", "month", "as_of", "issued_on", "due_date") and v is not None else v)
           for k, v in row.items()}
    return {**out, **{c: money(out[c]) for c in money_columns}}


def test_documents_issued_per_day(built):
    got = [plain(r, "amount") for r in mart(built, "studio_documents_daily", "tenant_id, kind, day")]
    assert [(r["tenant_id"], r["kind"], r["day"], r["documents"], r["amount"]) for r in got] == [
        (S1, "invoice", "2026-03-01", 1, Decimal("55.0000")),
        (S1, "invoice", "2026-04-05", 1, Decimal("110.0000")),
        (S1, "invoice", "2026-04-20", 1, Decimal("220.0000")),
        (S1, "invoice", "2026-05-03", 1, Decimal("220.0000")),
        (S1, "invoice", "2026-05-25", 1, Decimal("33.0000")),   # void since: it was issued
        (S1, "invoice", "2026-06-01", 1, Decimal("11.0000")),
        (S1, "invoice", "2026-06-20", 1, Decimal("100.1000")),
        (S1, "invoice", "2026-07-01", 1, Decimal("44.0000")),   # the draft (number 8) is not issued
        (S1, "quote", "2026-04-03", 2, Decimal("165.0000")),
        (S1, "quote", "2026-05-02", 1, Decimal("220.0000")),
        (S1, "quote", "2026-05-20", 1, Decimal("33.0000")),    # the UTC day it was sent
        (S1, "quote", "2026-05-28", 1, Decimal("11.0000")),
        (S2, "invoice", "2026-06-10", 1, Decimal("1100.0000")),
        (S2, "quote", "2026-05-05", 1, Decimal("22.0000")),
    ]


def test_quote_to_invoice_conversion(built):
    got = [plain(r, "quoted_amount", "converted_amount")
           for r in mart(built, "studio_quote_conversion", "tenant_id, month")]
    assert [(r["tenant_id"], r["month"], r["quotes"], r["accepted"], r["declined"], r["expired"], r["converted"],
             r["quoted_amount"], r["converted_amount"]) for r in got] == [
        (S1, "2026-04-01", 2, 1, 1, 0, 1, Decimal("165.0000"), Decimal("110.0000")),
        (S1, "2026-05-01", 3, 1, 0, 1, 1, Decimal("264.0000"), Decimal("220.0000")),  # Q3: only its invoice names it
        (S2, "2026-05-01", 1, 0, 0, 0, 0, Decimal("22.0000"), Decimal("0.0000")),
    ]
    assert [float(r["conversion_rate"]) for r in got] == [0.5, pytest.approx(0.3333), 0.0]


def test_receivables_ageing_at_the_as_of_day(built):
    owed = {(r["tenant_id"], r["document_number"]): plain(r, "total", "paid_to_date", "balance")
            for r in mart(built, "studio_receivables", "tenant_id, invoice_id")}
    assert {k: (r["paid_to_date"], r["balance"], r["days_overdue"], r["bucket"]) for k, r in owed.items()} == {
        (S1, "INV-0001"): (Decimal("100.0000"), Decimal("10.0000"), 72, "61-90"),   # paid 110, refunded 10
        (S1, "INV-0002"): (Decimal("100.0000"), Decimal("120.0000"), 57, "31-60"),  # the 20 paid on 3 July: not yet
        (S1, "INV-0003"): (Decimal("0.0000"), Decimal("220.0000"), 44, "31-60"),
        (S1, "INV-0004"): (Decimal("5.0000"), Decimal("50.0000"), 107, "over_90"),
        (S1, "INV-0005"): (Decimal("0.1000"), Decimal("100.0000"), 0, "current"),
        (S1, "INV-0006"): (Decimal("0.0000"), Decimal("33.0000"), 22, "1-30"),     # voided on 2 July: owed on 30 June
        (S2, "INV-0001"): (Decimal("100.0000"), Decimal("1000.0000"), 6, "1-30"),
    }  # S1's 7 (void by then), 8 (draft) and 9 (issued 1 July) owe nothing on 30 June
    assert {r["as_of"] for r in owed.values()} == {AS_OF}
    ageing = {r["tenant_id"]: plain(r, "current_amount", "overdue_1_30", "overdue_31_60", "overdue_61_90",
                                    "overdue_over_90", "total_outstanding")
              for r in mart(built, "studio_receivables_ageing", "tenant_id")}
    a, b = ageing[S1], ageing[S2]
    assert (a["as_of"], a["currency"], a["invoices"], a["overdue_invoices"]) == (AS_OF, "AUD", 6, 5)
    assert [a[c] for c in ("current_amount", "overdue_1_30", "overdue_31_60", "overdue_61_90", "overdue_over_90",
                           "total_outstanding")] == [Decimal(x) for x in ("100", "33", "340", "10", "50", "533")]
    assert (b["invoices"], b["overdue_1_30"], b["total_outstanding"]) == (1, Decimal("1000.0000"), Decimal("1000.0000"))


def test_payments_by_method_per_month(built):
    got = [plain(r, "amount_paid", "amount_refunded", "net_amount")
           for r in mart(built, "studio_payments_by_method", "tenant_id, month, method")]
    assert [(r["tenant_id"], r["month"], r["method"], r["payments"], r["amount_paid"], r["refunds"],
             r["amount_refunded"], r["net_amount"]) for r in got] == [
        (S1, "2026-03-01", "CASH", 1, Decimal("5.0000"), 0, Decimal("0.0000"), Decimal("5.0000")),
        (S1, "2026-04-01", "STRIPE", 1, Decimal("110.0000"), 1, Decimal("10.0000"), Decimal("100.0000")),
        (S1, "2026-05-01", "BANK_TRANSFER", 1, Decimal("100.0000"), 0, Decimal("0.0000"), Decimal("100.0000")),
        (S1, "2026-06-01", "CARD", 1, Decimal("0.1000"), 0, Decimal("0.0000"), Decimal("0.1000")),
        (S1, "2026-07-01", "BANK_TRANSFER", 1, Decimal("20.0000"), 0, Decimal("0.0000"), Decimal("20.0000")),
        (S2, "2026-06-01", "STRIPE", 1, Decimal("100.0000"), 0, Decimal("0.0000"), Decimal("100.0000")),
    ]


def test_revenue_per_month(built):
    got = [plain(r, "revenue", "gst", "invoiced", "collected")
           for r in mart(built, "studio_revenue_monthly", "tenant_id, month")]
    assert [(r["tenant_id"], r["month"], r["invoices"], r["revenue"], r["gst"], r["invoiced"], r["collected"])
            for r in got] == [
        (S1, "2026-03-01", 1, Decimal("50.0000"), Decimal("5.0000"), Decimal("55.0000"), Decimal("5.0000")),
        (S1, "2026-04-01", 2, Decimal("300.0000"), Decimal("30.0000"), Decimal("330.0000"), Decimal("100.0000")),
        (S1, "2026-05-01", 1, Decimal("200.0000"), Decimal("20.0000"), Decimal("220.0000"), Decimal("100.0000")),
        (S1, "2026-06-01", 1, Decimal("91.0000"), Decimal("9.1000"), Decimal("100.1000"), Decimal("0.1000")),
        (S1, "2026-07-01", 1, Decimal("40.0000"), Decimal("4.0000"), Decimal("44.0000"), Decimal("20.0000")),
        (S2, "2026-06-01", 1, Decimal("1000.0000"), Decimal("100.0000"), Decimal("1100.0000"), Decimal("100.0000")),
    ]  # the void invoices (6, 7) and the draft (8) are no revenue


def test_the_marts_have_real_types(built):
    """Dates are dates and money exact decimals on PostgreSQL; on SQLite every value has its type."""
    engine = make_engine(built["url"])
    try:
        columns = {c["name"]: str(c["type"]).lower() for c in sa.inspect(engine).get_columns("studio_receivables_ageing")}
        dialect = engine.dialect.name
        with engine.connect() as conn:
            stored = conn.execute(sa.text("select typeof(as_of), typeof(total_outstanding), typeof(invoices) "
                                          "from studio_receivables_ageing limit 1")).one() if dialect == "sqlite" else None
    finally:
        engine.dispose()
    if dialect == "postgresql":
        assert columns["as_of"] == "date" and columns["total_outstanding"].startswith("numeric")
        assert columns["invoices"] == "bigint"
    else:
        assert tuple(stored) == ("text", "real", "integer")


def test_today_is_the_as_of_day_without_the_var(built):
    """Without ``studio_as_of`` the receivables are aged at the build's day (UTC); a var that is
    not a date is refused before any SQL runs."""
    work = built["work"]
    result = run_dbt(["run", "--select", "studio_receivables"], built["url"], work / "profiles",
                     target_path=work / "target", check=False)
    try:
        assert result.returncode == 0, result.stdout[-3000:]
        as_of = {str(r["as_of"])[:10] for r in rows(built["url"], "select as_of from studio_receivables")}
        assert as_of == {dt.datetime.now(UTC).date().isoformat()}
    finally:
        dbt(built, work, "run", "--select", "studio_receivables", check=True)
    bad = run_dbt(["run", "--select", "studio_receivables"], built["url"], work / "profiles",
                  target_path=work / "target", check=False, extra_vars={"studio_as_of": "2026-06-30'; drop"})
    assert bad.returncode != 0 and "not a YYYY-MM-DD date" in bad.stdout


# -- the checks: each fails on its bad data, and the marts built on that table wait -----------------

BAD = {  # check -> (table, document, what breaks it, what puts it back, what the check returns)
    "invoice_totals_equal_lines": (studio_invoices, "I3", {"total": Decimal("221")}, {"total": Decimal("220")},
                                   ("INV-0003", 221.0, 220.0)),
    "invoice_paid_equals_payments": (studio_invoices, "I2", {"amount_paid": Decimal("150")},
                                     {"amount_paid": Decimal("120")}, ("INV-0002", 150.0, 120.0)),
    "quote_totals_equal_lines": (studio_quotes, "Q3", {"tax_total": Decimal("21")}, {"tax_total": Decimal("20")},
                                 ("Q-0003", 220.0, 220.0)),
}


@pytest.mark.parametrize("check", sorted(BAD))
def test_a_money_check_fails_on_the_document_that_breaks_it(built, check):
    table, document_key, broken, fixed, returned = BAD[check]
    target = built["ids"][f"{S1}:{document_key}"]
    update(built, table, target, broken)
    try:
        failed = dbt(built, built["work"], "test", "--select", check)
        assert failed.returncode != 0 and f"FAIL 1 {check}" in failed.stdout, failed.stdout[-3000:]
        (row,) = rows(built["url"], _check_sql(built, check))
        assert (row["tenant_id"], *[float(v) if isinstance(v, Decimal) else v for v in list(row.values())[1:]]) == (
            S1, *returned)
    finally:
        update(built, table, target, fixed)
    assert dbt(built, built["work"], "test", "--select", check).returncode == 0


def test_the_number_check_fails_on_a_gap_and_on_a_duplicate(built):
    ninth = built["ids"][f"{S1}:I9"]
    update(built, studio_invoices, ninth, {"number": 10, "document_number": "INV-0010"})  # 9 is missing
    try:
        gap = dbt(built, built["work"], "test", "--select", "invoice_numbers_unique_and_gapless")
        assert gap.returncode != 0 and "FAIL 1 invoice_numbers_unique_and_gapless" in gap.stdout, gap.stdout[-3000:]
        update(built, studio_invoices, ninth, {"number": 9, "document_number": "INV-0008"})  # printed twice
        twice = dbt(built, built["work"], "test", "--select", "invoice_numbers_unique_and_gapless")
        assert twice.returncode != 0 and "FAIL 1 invoice_numbers_unique_and_gapless" in twice.stdout
        failing = rows(built["url"], _check_sql(built, "invoice_numbers_unique_and_gapless"))
        assert [(r["tenant_id"], r["problem"], r["detail"]) for r in failing] == [
            (S1, "duplicate document number", "INV-0008")]
    finally:
        update(built, studio_invoices, ninth, {"number": 9, "document_number": "INV-0009"})
    first = built["ids"][f"{S2}:Q1"]
    update(built, studio_quotes, first, {"number": 2})  # a studio's first quote is 1
    try:
        assert dbt(built, built["work"], "test", "--select", "quote_numbers_unique_and_gapless").returncode != 0
        failing = rows(built["url"], _check_sql(built, "quote_numbers_unique_and_gapless"))
        assert [(r["tenant_id"], r["problem"], r["detail"]) for r in failing] == [(S2, "gap", "1")]
    finally:
        update(built, studio_quotes, first, {"number": 1})
    assert dbt(built, built["work"], "test", "--select", "quote_numbers_unique_and_gapless "
               "invoice_numbers_unique_and_gapless").returncode == 0


def update(built, table, row_id, values) -> None:
    engine = make_engine(built["url"])
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == row_id).values(**values))
    finally:
        engine.dispose()


def _check_sql(built, name: str) -> str:
    """The compiled SQL of a check (what it returns are the documents that break it)."""
    target = built["work"] / "target" / "compiled" / "storehouse"
    (path,) = [p for p in target.rglob(f"{name}*.sql")]
    return path.read_text()


# -- in Dagster: the studio's tables feed its marts, their checks sit on them and hold the marts back ---

STUDIO_MARTS = ["studio_documents_daily", "studio_quote_conversion", "studio_receivables", "studio_receivables_ageing",
                "studio_payments_by_method", "studio_revenue_monthly"]
PRINT_MARTS = {"studio_printer_utilisation_daily", "studio_quote_value_monthly", "studio_slices",
               "studio_slices_daily"}  # on the printing tables (and quotes): tests/test_studio_print_marts.py
ON_INVOICES = {"studio_documents_daily", "studio_quote_conversion", "studio_receivables", "studio_receivables_ageing",
               "studio_revenue_monthly"}  # every mart that reads studio_invoices (directly or through another)


def test_dagster_draws_the_studio_tables_their_checks_and_marts():
    import dagster as dg

    from pipelines.definitions import build_defs

    graph = build_defs().resolve_asset_graph()
    parents = {k.path[-1]: {p.to_user_string() for p in graph.get(k).parent_keys}
               for k in graph.get_all_asset_keys() if k.path[0] == "studio"}
    assert set(parents) == set(STUDIO_MARTS) | PRINT_MARTS
    assert parents["studio_receivables"] == {"api/studio_invoices", "api/studio_payments", "warehouse/tenants"}
    assert parents["studio_quote_conversion"] == {"api/studio_invoices", "api/studio_quotes", "warehouse/tenants"}
    assert graph.get(dg.AssetKey(["studio", "studio_receivables"])).group_name == "marts"
    checks = {(k.asset_key.to_user_string(), k.name): graph.get_check_spec(k)
              for k in graph.get_check_keys_for_assets({dg.AssetKey(["api", t]) for t in ("studio_invoices", "studio_quotes")})}
    assert set(checks) == {("api/studio_invoices", "invoice_totals_equal_lines"),
                           ("api/studio_invoices", "invoice_paid_equals_payments"),
                           ("api/studio_invoices", "invoice_numbers_unique_and_gapless"),
                           ("api/studio_quotes", "quote_totals_equal_lines"),
                           ("api/studio_quotes", "quote_numbers_unique_and_gapless")}
    assert all(spec.blocking and spec.description for spec in checks.values())
    table = graph.get(dg.AssetKey(["api", "studio_invoices"]))
    assert table.group_name == "api" and table.metadata["dagster/table_name"] == "studio_invoices"


def test_a_failed_check_holds_back_the_marts_on_its_table_in_the_marts_job(built, monkeypatch, tmp_path):
    """The marts job runs the checks on the studio's tables first: an invoice whose total is not its
    lines holds back every mart that reads invoices, the others build, and the run fails naming the
    check; once the invoice is put right, the next run builds those held back."""
    import dagster as dg

    from pipelines.definitions import build_defs

    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", built["url"])  # what the definitions' warehouse resource reads
    job, instance = build_defs().resolve_job_def("marts"), dg.DagsterInstance.ephemeral()
    selection = [dg.AssetKey(["studio", name]) for name in STUDIO_MARTS]

    def run():
        result = job.execute_in_process(instance=instance, asset_selection=selection, raise_on_error=False)
        made = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
        evaluations = {c.check_name: c for c in result.get_asset_check_evaluations() if c.asset_key.path[0] == "api"}
        checks = {name: c.passed for name, c in evaluations.items()}
        found.update(evaluations)
        held = {e.asset_key.path[-1]: e.event_specific_data.asset_observation.metadata for e in result.all_events
                if e.is_asset_observation}
        return result, made, checks, held

    found = {}
    second = built["ids"][f"{S1}:I2"]
    update(built, studio_invoices, second, {"total": Decimal("221")})
    try:
        result, made, checks, held = run()
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        assert "invoice_totals_equal_lines" in failure.step_failure_data.error.message
        assert checks["invoice_totals_equal_lines"] is False and checks["invoice_paid_equals_payments"] is True
        assert set(checks) >= {"quote_totals_equal_lines", "invoice_numbers_unique_and_gapless"}
        failing = found["invoice_totals_equal_lines"].metadata  # which studio, which invoice
        assert failing["tenants"].value == S1 and "INV-0002" in failing["failing_rows"].value
        assert made == set(STUDIO_MARTS) - ON_INVOICES == {"studio_payments_by_method"}
        assert set(held) == ON_INVOICES
        assert "api/studio_invoices:invoice_totals_equal_lines" in held["studio_receivables_ageing"][
            "failed_blocking_checks"].value
    finally:
        update(built, studio_invoices, second, {"total": Decimal("220")})
    result, made, checks, held = run()
    # the held-back marts build now; studio_payments_by_method, built last run on unchanged inputs, is up to date
    assert result.success and made == ON_INVOICES and held == {}
    assert all(checks.values()) and len(checks) == 5


def test_the_readme_examples_answer(built):
    """The studio's example queries in the README's "For analysts" hold on these studios."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## For analysts", 1)[1].split("\n## ", 1)[0]
    queries = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    assert len(queries) == 3
    dbt(built, built["work"], "run", "--select", "studio", check=True)  # at AS_OF again (Dagster's run aged at today)
    answers = [rows(built["url"], query) for query in queries]
    assert [len(a) for a in answers] == [2, 2, 3]
    assert [(r["tenant_id"], r["document_number"]) for r in answers[1]] == [(S1, "INV-0004"), (S1, "INV-0001")]
    assert [r["clients"] for r in answers[2]] == [2, 2, 1]
