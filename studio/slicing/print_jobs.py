"""Print jobs per invoice line (the seed's ``jobs``): queued → printing → done or failed, on a
printer whose status follows (``printing`` while it prints a job, ``idle`` after).

Each move is one conditional ``UPDATE`` naming the state it leaves, so two staff members pressing
"start" at once start it once (the second gets :class:`JobStateError`), and a printer prints one
job at a time.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from studio.db import locked
from warehouse.tables.studio import studio_invoice_items, studio_invoices
from warehouse.tables.studio_print import studio_materials, studio_print_jobs as jobs, studio_printers as printers
from warehouse.types import now_utc

MOVES = {"printing": ("queued",), "done": ("printing",), "failed": ("queued", "printing")}


class JobStateError(RuntimeError):
    """The job or printer is not in a state that allows this move."""


def queue(conn: sa.Connection, tenant_id: str, invoice_item_id: int, *, quantity: int = 1,
          printer_id: int | None = None, material_id: int | None = None, estimated_s: int | None = None,
          grams: float | None = None) -> int:
    """A queued job for one line of this studio's invoice."""
    i, inv = studio_invoice_items.c, studio_invoices.c
    # The line is locked while its jobs are counted, so two jobs queued at once cannot both fit.
    item = conn.execute(locked(conn, sa.select(i.id, i.quantity, inv.status, inv.document_number)
                               .join(studio_invoices, inv.id == i.invoice_id)
                               .where(i.tenant_id == tenant_id, i.id == invoice_item_id))).first()
    if item is None:
        raise LookupError(f"this studio has no invoice line {invoice_item_id}")
    for table, row_id, what in ((printers, printer_id, "printer"), (studio_materials, material_id, "material")):
        if row_id is not None and conn.execute(sa.select(table.c.id).where(
                table.c.tenant_id == tenant_id, table.c.id == row_id)).first() is None:
            raise LookupError(f"this studio has no {what} {row_id}")
    if item.status in ("draft", "void"):
        raise JobStateError(f"invoice {item.document_number} is {item.status}: only an issued invoice's lines are printed")
    # A line is printed as many times as it was sold: jobs that did not fail count against it, so a
    # second press of "queue" (or a job of 99 for a line of 1) is refused; a failed print is redone.
    taken = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(jobs.c.quantity), 0)).where(
        jobs.c.tenant_id == tenant_id, jobs.c.invoice_item_id == invoice_item_id, jobs.c.status != "failed")
    ).scalar_one()
    if taken + quantity > item.quantity:
        raise JobStateError(f"line {invoice_item_id} sells {item.quantity:g} and {taken} are queued or printed already: "
                            f"{quantity} more would print too many")
    return conn.execute(sa.insert(jobs).values(
        tenant_id=tenant_id, invoice_item_id=invoice_item_id, printer_id=printer_id, material_id=material_id,
        quantity=quantity, estimated_s=estimated_s, grams=grams).returning(jobs.c.id)).scalar_one()


def start(conn: sa.Connection, tenant_id: str, job_id: int, printer_id: int) -> None:
    """Start printing on an idle, active printer of the studio."""
    taken = conn.execute(sa.update(printers).where(
        printers.c.tenant_id == tenant_id, printers.c.id == printer_id, printers.c.active,
        printers.c.status == "idle").values(status="printing", updated_at=now_utc()))
    if taken.rowcount != 1:
        raise JobStateError(f"printer {printer_id} is not an idle printer of this studio")
    _move(conn, tenant_id, job_id, "printing", printer_id=printer_id, started_at=now_utc())


def finish(conn: sa.Connection, tenant_id: str, job_id: int, *, failed: str | None = None) -> None:
    """Done, or failed with its reason; the printer is idle again."""
    job = get(conn, tenant_id, job_id)
    if failed is None:
        _move(conn, tenant_id, job_id, "done", finished_at=now_utc())
    else:
        _move(conn, tenant_id, job_id, "failed", finished_at=now_utc(), failure_reason=failed[:2000])
    if job and job["status"] == "printing" and job["printer_id"] is not None:
        conn.execute(sa.update(printers).where(printers.c.tenant_id == tenant_id, printers.c.id == job["printer_id"],
                                               printers.c.status == "printing")
                     .values(status="idle", updated_at=now_utc()))


def get(conn: sa.Connection, tenant_id: str, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(jobs).where(jobs.c.tenant_id == tenant_id, jobs.c.id == job_id)).first()
    return dict(row._mapping) if row else None


def of_printer(conn: sa.Connection, tenant_id: str, printer_id: int, *, status: str | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
    """The printer's jobs, newest first (``status``: only those)."""
    query = sa.select(jobs).where(jobs.c.tenant_id == tenant_id, jobs.c.printer_id == printer_id)
    if status is not None:
        query = query.where(jobs.c.status == status)
    return [dict(r) for r in conn.execute(query.order_by(jobs.c.id.desc()).limit(limit)).mappings()]


def printer_status(conn: sa.Connection, tenant_id: str, printer_id: int) -> dict[str, Any] | None:
    """The printer's status, the job it prints now (if any) and how many wait for it."""
    row = conn.execute(sa.select(printers.c.id, printers.c.name, printers.c.status, printers.c.active).where(
        printers.c.tenant_id == tenant_id, printers.c.id == printer_id)).mappings().first()
    if row is None:
        return None
    printing = of_printer(conn, tenant_id, printer_id, status="printing", limit=1)
    queued = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
        jobs.c.tenant_id == tenant_id, jobs.c.printer_id == printer_id, jobs.c.status == "queued")).scalar_one()
    return {**dict(row), "current_job": printing[0] if printing else None, "queued_jobs": queued}


def _move(conn: sa.Connection, tenant_id: str, job_id: int, to: str, **values: Any) -> None:
    moved = conn.execute(sa.update(jobs).where(jobs.c.tenant_id == tenant_id, jobs.c.id == job_id,
                                               jobs.c.status.in_(MOVES[to]))
                         .values(status=to, updated_at=now_utc(), **values))
    if moved.rowcount != 1:
        raise JobStateError(f"job {job_id} cannot move to {to}")
