"""The studio's printing marts (issue 14): printer utilisation per day, slices per day with the
fallback rate, average quote value per month. Built by dbt on this run's database (SQLite, or
PostgreSQL when DATABASE_URL names one) over rows written here, with the numbers worked out by hand;
the slices outlive the tmp files the housekeeping deletes."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from resources.dbt import run_dbt
from tests.test_marts import marts_url, money, rows  # noqa: F401  (marts_url: a warehouse of this module's own)
from tests.test_studio_marts import at, document, line
from warehouse.db import make_engine
from warehouse.tables.core import tenants
from warehouse.tables.studio import (
    studio_clients, studio_invoice_items, studio_invoices, studio_quote_items, studio_quotes,
)
from warehouse.tables.studio_print import studio_print_jobs, studio_printers, studio_tmp_files

S1, S2 = "print-a", "print-b"
MODELS = ["studio_printer_utilisation_daily", "studio_quote_value_monthly", "studio_slices", "studio_slices_daily"]


def tmp_file(conn, tenant, n, status, when, **meta) -> int:
    return conn.execute(sa.insert(studio_tmp_files).values(
        tenant_id=tenant, user_id="user-1", storage_key=f"{tenant}/user-1/{n}/part.stl", filename="part.stl",
        size_bytes=100, mime_type="model/stl", sha256="0" * 64, status=status,
        metadata={"settings": {"options": {"layerHeight": 0.2}, "printerId": 1, "materialId": 1}, "output": None,
                  **meta},
        created_at=at(when), updated_at=at(when)).returning(studio_tmp_files.c.id)).scalar_one()


@pytest.fixture(scope="module")
def world(marts_url) -> dict:  # noqa: F811
    engine = make_engine(marts_url)
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        conn.execute(sa.insert(tenants), [{"tenant_id": S1, "name": "Print A"}, {"tenant_id": S2, "name": "Print B"}])

        def printer(tenant, name):
            return conn.execute(sa.insert(studio_printers).values(
                tenant_id=tenant, name=name, hourly_rate=Decimal(4), build_x_mm=250, build_y_mm=210, build_z_mm=210
            ).returning(studio_printers.c.id)).scalar_one()

        p1, p2, q1 = printer(S1, "MK4"), printer(S1, "Mini"), printer(S2, "XL")
        ids.update(p1=p1, p2=p2, q1=q1)
        item = {}
        for tenant in (S1, S2):
            client = conn.execute(sa.insert(studio_clients).values(tenant_id=tenant, name="ann", email="a@example.com")
                                  .returning(studio_clients.c.id)).scalar_one()
            invoice = document(conn, studio_invoices, studio_invoice_items, tenant, client, 1, "INV-", "issued",
                               [line(1, "100")], "2026-06-01", issued_at=at("2026-06-01T01:00:00"),
                               due_date=dt.date(2026, 6, 15))
            item[tenant] = conn.execute(sa.select(studio_invoice_items.c.id).where(
                studio_invoice_items.c.invoice_id == invoice)).scalar_one()

        def job(tenant, printer_id, status, start=None, end=None):
            conn.execute(sa.insert(studio_print_jobs).values(
                tenant_id=tenant, invoice_item_id=item[tenant], printer_id=printer_id, status=status,
                started_at=at(start) if start else None, finished_at=at(end) if end else None))

        job(S1, p1, "done", "2026-06-01T10:00:00", "2026-06-01T16:00:00")  # 6 h
        job(S1, p1, "failed", "2026-06-01T22:00:00", "2026-06-02T04:00:00")  # 2 h on the 1st, 4 h on the 2nd
        job(S1, p1, "done", "2026-06-04T00:00:00", "2026-06-04T12:00:00")  # the 3rd idle between
        job(S1, p1, "printing", "2026-06-05T00:00:00")  # not ended: not yet counted
        job(S1, p1, "queued")
        job(S1, p2, "done", "2026-06-02T06:00:00", "2026-06-02T06:30:00")
        job(S2, q1, "done", "2026-06-01T00:00:00", "2026-06-01T23:00:00")

        tmp_file(conn, S1, 1, "completed", "2026-06-01T10:00:00", fallback=False)
        tmp_file(conn, S1, 2, "completed", "2026-06-01T11:00:00", fallback=True, error="timed out")
        tmp_file(conn, S1, 3, "failed", "2026-06-01T12:00:00", fallback=False)
        tmp_file(conn, S1, 4, "completed", "2026-06-02T09:00:00", fallback=False, cached=True)
        tmp_file(conn, S1, 5, "running", "2026-06-02T10:00:00")
        tmp_file(conn, S1, 6, "idle", "2026-06-02T11:00:00")
        tmp_file(conn, S2, 7, "completed", "2026-06-03T23:59:00", fallback=True)

        def quote(tenant, number, status, price, sent):
            document(conn, studio_quotes, studio_quote_items, tenant, 1, number, "Q-", status, [line(1, price)],
                     sent_at=at(sent) if sent else None)

        quote(S1, 1, "accepted", "100", "2026-04-03T02:00:00")  # 110 with GST
        quote(S1, 2, "declined", "50", "2026-04-10T02:00:00")  # 55
        quote(S1, 3, "sent", "10", "2026-04-30T23:00:00")  # 11
        quote(S1, 4, "draft", "70", None)  # left out
        quote(S1, 5, "accepted", "200", "2026-05-02T02:00:00")  # 220
        quote(S2, 1, "expired", "20", "2026-05-05T02:00:00")  # 22
    engine.dispose()
    return {"url": marts_url, "ids": ids}


def dbt(world, work, *args):
    return run_dbt(list(args), world["url"], work / "profiles", target_path=work / "target")


@pytest.fixture(scope="module")
def built(world, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("print-dbt")
    result = dbt(world, work, "build", "--select", *MODELS)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "ERROR=0" in result.stdout and "SKIP=0" in result.stdout
    return {**world, "work": work}


def text_day(value) -> str:
    return str(value)[:10]


def test_printer_utilisation_per_day(built):
    got = [(r["tenant_id"], r["printer_name"], text_day(r["day"]), r["jobs"], float(r["hours_printing"]),
            r["hours_available"], float(r["utilisation"]))
           for r in rows(built["url"], "select * from studio_printer_utilisation_daily order by tenant_id, printer_id, day")]
    assert got == [
        (S1, "MK4", "2026-06-01", 2, 8.0, 24, 0.3333),
        (S1, "MK4", "2026-06-02", 1, 4.0, 24, 0.1667),
        (S1, "MK4", "2026-06-03", 0, 0.0, 24, 0.0),
        (S1, "MK4", "2026-06-04", 1, 12.0, 24, 0.5),
        (S1, "Mini", "2026-06-02", 1, 0.5, 24, 0.0208),
        (S2, "XL", "2026-06-01", 1, 23.0, 24, 0.9583),
    ]


def test_average_quote_value_per_month(built):
    got = [(r["tenant_id"], text_day(r["month"]), r["currency"], r["quotes"], money(r["quoted_amount"]),
            money(r["average_value"]), r["accepted"],
            None if r["average_accepted_value"] is None else money(r["average_accepted_value"]))
           for r in rows(built["url"], "select * from studio_quote_value_monthly order by tenant_id, month")]
    assert got == [
        (S1, "2026-04-01", "AUD", 3, money("176"), money("58.6667"), 1, money("110")),
        (S1, "2026-05-01", "AUD", 1, money("220"), money("220"), 1, money("220")),
        (S2, "2026-05-01", "AUD", 1, money("22"), money("22"), 0, None),
    ]


def daily(url) -> list[tuple]:
    return [(r["tenant_id"], text_day(r["day"]), r["slices"], r["completed"], r["failed"], r["cached"], r["fallbacks"],
             None if r["fallback_rate"] is None else float(r["fallback_rate"]))
            for r in rows(url, "select * from studio_slices_daily order by tenant_id, day")]


def test_slices_per_day_with_the_fallback_rate_outlive_the_housekeeping(built):
    assert daily(built["url"]) == [
        (S1, "2026-06-01", 3, 2, 1, 0, 1, 0.5),
        (S1, "2026-06-02", 1, 1, 0, 1, 0, 0.0),
        (S2, "2026-06-03", 1, 1, 0, 0, 1, 1.0),
    ]
    engine = make_engine(built["url"])
    with engine.begin() as conn:  # the housekeeping deletes the 1st's files; a slice ends on the 5th
        conn.execute(sa.delete(studio_tmp_files).where(studio_tmp_files.c.tenant_id == S1,
                                                       studio_tmp_files.c.updated_at < at("2026-06-02T00:00:00")))
        tmp_file(conn, S1, 8, "completed", "2026-06-05T08:00:00", fallback=True)
    engine.dispose()
    result = dbt(built, built["work"], "build", "--select", "studio_slices", "studio_slices_daily")
    assert result.returncode == 0, result.stdout[-6000:]
    assert daily(built["url"]) == [
        (S1, "2026-06-01", 3, 2, 1, 0, 1, 0.5),
        (S1, "2026-06-02", 1, 1, 0, 1, 0, 0.0),
        (S1, "2026-06-05", 1, 1, 0, 0, 1, 1.0),
        (S2, "2026-06-03", 1, 1, 0, 0, 1, 1.0),
    ]
    assert rows(built["url"], "select count(*) as n from studio_slices")[0]["n"] == 6


def test_dagster_draws_the_print_tables_feeding_the_marts():
    import dagster as dg

    from pipelines.definitions import build_defs

    graph = build_defs().resolve_asset_graph()

    def parents(model):
        return {p.to_user_string() for p in graph.get(dg.AssetKey(["studio", model])).parent_keys}

    assert parents("studio_printer_utilisation_daily") == {"api/studio_print_jobs", "api/studio_printers",
                                                           "warehouse/tenants"}
    assert parents("studio_slices") == {"api/studio_tmp_files", "warehouse/tenants"}
    assert parents("studio_slices_daily") == {"studio/studio_slices", "warehouse/tenants"}
    assert parents("studio_quote_value_monthly") == {"api/studio_quotes", "warehouse/tenants"}
