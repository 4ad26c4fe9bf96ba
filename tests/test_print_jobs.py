"""Print jobs per invoice line: queued → printing → done / failed, the printer's status following."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from studio.slicing import print_jobs
from tests.slicing_world import make_studio
from warehouse.tables.studio import studio_clients, studio_invoice_items, studio_invoices
from warehouse.tables.studio_print import studio_printers


def invoice_line(conn, tenant_id: str, status: str = "issued") -> int:
    client = conn.execute(sa.insert(studio_clients).values(tenant_id=tenant_id, name="Ada")
                          .returning(studio_clients.c.id)).scalar_one()
    invoice = conn.execute(sa.insert(studio_invoices).values(tenant_id=tenant_id, client_id=client, number=1,
                                                             document_number="INV-1", status=status)
                           .returning(studio_invoices.c.id)
                           ).scalar_one()
    return conn.execute(sa.insert(studio_invoice_items).values(
        tenant_id=tenant_id, invoice_id=invoice, position=1, description="3D print: cube.stl", quantity=3,
        unit_price=20, line_subtotal=60, line_discount=0, line_tax=6, line_total=66)
        .returning(studio_invoice_items.c.id)).scalar_one()


def printer_status(conn, printer_id: int) -> str:
    return conn.execute(sa.select(studio_printers.c.status).where(studio_printers.c.id == printer_id)).scalar_one()


def test_job_lifecycle_and_printer_status(engine, tenant_id):
    ids = make_studio(engine, tenant_id)
    with engine.begin() as conn:
        item = invoice_line(conn, tenant_id)
        first = print_jobs.queue(conn, tenant_id, item, quantity=2, estimated_s=2400, grams=8)
        second = print_jobs.queue(conn, tenant_id, item)
        with pytest.raises(LookupError):
            print_jobs.queue(conn, "another-studio", item)
    with engine.begin() as conn:
        print_jobs.start(conn, tenant_id, first, ids["printer"])
        assert printer_status(conn, ids["printer"]) == "printing"
    with pytest.raises(print_jobs.JobStateError), engine.begin() as conn:  # one job at a time per printer
        print_jobs.start(conn, tenant_id, second, ids["printer"])
    with pytest.raises(print_jobs.JobStateError), engine.begin() as conn:  # done only from printing
        print_jobs.finish(conn, tenant_id, second)
    with engine.begin() as conn:
        print_jobs.finish(conn, tenant_id, first)
        assert print_jobs.get(conn, tenant_id, first)["status"] == "done"
        assert printer_status(conn, ids["printer"]) == "idle"
        print_jobs.start(conn, tenant_id, second, ids["printer"])
        print_jobs.finish(conn, tenant_id, second, failed="nozzle clogged")
        job = print_jobs.get(conn, tenant_id, second)
        assert job["status"] == "failed" and job["failure_reason"] == "nozzle clogged" and job["finished_at"]
        assert printer_status(conn, ids["printer"]) == "idle"
    with pytest.raises(print_jobs.JobStateError), engine.begin() as conn:  # finished stays finished
        print_jobs.finish(conn, tenant_id, first, failed="late")


def test_a_line_is_printed_as_many_times_as_it_sold(engine, tenant_id):
    ids = make_studio(engine, tenant_id)
    with engine.begin() as conn:
        item = invoice_line(conn, tenant_id)  # quantity 3
        first = print_jobs.queue(conn, tenant_id, item, quantity=2)
        print_jobs.queue(conn, tenant_id, item)
    for quantity in (1, 99):  # a second press of "queue", or far too many
        with pytest.raises(print_jobs.JobStateError, match="too many"), engine.begin() as conn:
            print_jobs.queue(conn, tenant_id, item, quantity=quantity)
    with engine.begin() as conn:  # a failed print is printed again
        print_jobs.start(conn, tenant_id, first, ids["printer"])
        print_jobs.finish(conn, tenant_id, first, failed="warped")
        print_jobs.queue(conn, tenant_id, item, quantity=2)


@pytest.mark.parametrize("status", ["draft", "void"])
def test_a_draft_or_void_invoice_is_not_printed(engine, tenant_id, status):
    make_studio(engine, tenant_id)
    with engine.begin() as conn:
        item = invoice_line(conn, tenant_id, status)
        with pytest.raises(print_jobs.JobStateError, match=status):
            print_jobs.queue(conn, tenant_id, item)
