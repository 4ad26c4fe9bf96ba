"""The studio's print shop for its staff (issue 14, "Price and order"): materials, printers and
pricing templates (list, create, change; retire with ``active: false``), and print jobs per
invoice line (queued → printing → done or failed) on a printer, with each printer's status.

Reads need ``studio.view``, changes ``studio.manage``, on the ``{tenant}`` in the path; every query
is scoped to that tenant, so another studio's row is a 404 like a missing one. The lists of
materials, printers and templates are open to the studio's clients too (``studio.portal``), so a
client can choose what to slice and price on: they see the active ones, and only what a client may
know (names, colours, printer status and build volume, a template's minimum and rush multiplier,
which the price breakdown shows anyway), never the studio's costs, rates, margins or profiles.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from api.deps import STUDIO_ONLY, EngineDep
from api.problems import Problem, problem_responses
from api.schemas import Input
from api.staff import STAFF_RESPONSES, ReadConn, require, require_any
from people.auth import Access
from studio.db import writing
from studio.slicing import print_jobs, setup

router = APIRouter(prefix="/studios/{tenant}", tags=["studio: printing"], dependencies=STUDIO_ONLY)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
Viewer = Annotated[Access, Depends(require("studio.view"))]
Manager = Annotated[Access, Depends(require("studio.manage"))]
Chooser = Annotated[Access, Depends(require_any("studio.view", "studio.portal"))]
STAFF_ONLY = "the studio's staff only (absent for a client)"
WRITES = {**STAFF_RESPONSES, **problem_responses((409, "Taken, or not in a state that allows this"))}
Name = Annotated[str, Field(min_length=1, max_length=100)]
Price = Annotated[Decimal, Field(ge=0, le=1_000_000, decimal_places=2)]
Profile = Annotated[str | None, Field(None, max_length=100, description="a shipped PrusaSlicer profile (.ini)")]
Size = Annotated[Decimal, Field(gt=0, le=10_000, decimal_places=2)]
IncludeRetired = Annotated[bool, Query(description="also those retired (active: false)")]


# -- bodies and views ----------------------------------------------------------------------------

class MaterialIn(Input):
    name: Name = Field(description="what the studio and its clients call it, e.g. \"PLA black\"")
    kind: str = Field("PLA", min_length=1, max_length=20, description="the plastic: PLA, PETG, TPU…")
    colour: str | None = Field(None, max_length=40, description="its colour, as shown to clients")
    cost_per_kg: Price = Field(description="what a kilogram costs the studio (the price's material part)")
    density_g_cm3: Decimal = Field(Decimal("1.24"), gt=0, le=30, decimal_places=3,
                                   description="g/cm³: the slicer's and the estimate's grams per volume")
    profile: Profile = None
    active: bool = Field(True, description="offered for new slices (false: retired, kept for old quotes)")


class MaterialPatch(MaterialIn):
    name: Name = None  # type: ignore[assignment]
    cost_per_kg: Price = None  # type: ignore[assignment]


class MaterialView(BaseModel):
    id: int
    name: str
    kind: str
    colour: str | None
    cost_per_kg: Decimal
    density_g_cm3: Decimal
    profile: str | None
    active: bool


class MaterialItem(BaseModel):
    """A material in the list: a client sees the first four fields."""

    id: int
    name: str
    kind: str
    colour: str | None
    cost_per_kg: Decimal | None = Field(None, description=STAFF_ONLY)
    density_g_cm3: Decimal | None = Field(None, description=STAFF_ONLY)
    profile: str | None = Field(None, description=STAFF_ONLY)
    active: bool | None = Field(None, description=STAFF_ONLY)


class PrinterIn(Input):
    name: Name = Field(description="the studio's name for it, e.g. \"MK3S #1\"")
    model: str | None = Field(None, max_length=100, description="maker and model, e.g. \"Prusa MK3S+\"")
    status: Literal["idle", "maintenance", "offline"] = Field(
        "idle", description="idle (ready for jobs), maintenance or offline; printing is set by its jobs")
    hourly_rate: Price = Field(description="what an hour of printing costs (the price's machine part)")
    build_x_mm: Size = Field(description="build volume width, mm (larger models are refused)")
    build_y_mm: Size = Field(description="build volume depth, mm")
    build_z_mm: Size = Field(description="build volume height, mm")
    profile: Profile = None
    active: bool = Field(True, description="offered for new slices and jobs (false: retired)")


class PrinterPatch(PrinterIn):
    name: Name = None  # type: ignore[assignment]
    status: Literal["idle", "maintenance", "offline"] = None  # type: ignore[assignment]
    hourly_rate: Price = None  # type: ignore[assignment]
    build_x_mm: Size = None  # type: ignore[assignment]
    build_y_mm: Size = None  # type: ignore[assignment]
    build_z_mm: Size = None  # type: ignore[assignment]


class PrinterView(BaseModel):
    id: int
    name: str
    model: str | None
    status: str
    hourly_rate: Decimal
    build_x_mm: Decimal
    build_y_mm: Decimal
    build_z_mm: Decimal
    profile: str | None
    active: bool


class PrinterItem(BaseModel):
    """A printer in the list: a client sees its name, model, status and build volume."""

    id: int
    name: str
    model: str | None
    status: str
    build_x_mm: Decimal
    build_y_mm: Decimal
    build_z_mm: Decimal
    hourly_rate: Decimal | None = Field(None, description=STAFF_ONLY)
    profile: str | None = Field(None, description=STAFF_ONLY)
    active: bool | None = Field(None, description=STAFF_ONLY)


class TemplateIn(Input):
    name: Name = Field(description="the template's name, e.g. \"Standard\"")
    setup_fee: Price = Field(Decimal(0), description="added once per model before the margin")
    margin_percent: Decimal = Field(Decimal(0), ge=0, le=1000, decimal_places=2,
                                    description="% added on material + machine + setup")
    minimum_price: Price = Field(Decimal(0), description="a unit price is never below this")
    rush_multiplier: Decimal = Field(Decimal(1), ge=1, le=10, decimal_places=3,
                                     description="the unit price is multiplied by this for a rush order")
    active: bool = Field(True, description="offered for pricing (false: retired)")


class TemplatePatch(TemplateIn):
    name: Name = None  # type: ignore[assignment]


class TemplateView(BaseModel):
    id: int
    name: str
    setup_fee: Decimal
    margin_percent: Decimal
    minimum_price: Decimal
    rush_multiplier: Decimal
    active: bool


class TemplateItem(BaseModel):
    """A pricing template in the list: a client sees its name, minimum price and rush multiplier."""

    id: int
    name: str
    minimum_price: Decimal
    rush_multiplier: Decimal
    setup_fee: Decimal | None = Field(None, description=STAFF_ONLY)
    margin_percent: Decimal | None = Field(None, description=STAFF_ONLY)
    active: bool | None = Field(None, description=STAFF_ONLY)


class JobIn(Input):
    invoice_item_id: RowId = Field(description="the invoice line this job prints (a line's jobs never "
                                               "exceed the quantity it sold)")
    printer_id: RowId | None = Field(None, description="the printer it is planned on (none: chosen at start)")
    material_id: RowId | None = Field(None, description="the material it prints with")
    quantity: int = Field(1, ge=1, le=10_000, description="how many pieces of the line this job prints")
    estimated_s: int | None = Field(None, ge=0, le=10 * 365 * 86400,
                                    description="estimated printing time, seconds (e.g. the slice's)")
    grams: Decimal | None = Field(None, ge=0, le=10_000_000, decimal_places=2,
                                  description="estimated filament, grams (e.g. the slice's)")


class StartIn(Input):
    printer_id: RowId


class FailIn(Input):
    reason: str = Field(min_length=1, max_length=2000)


class JobView(BaseModel):
    id: int
    invoice_item_id: int
    printer_id: int | None
    material_id: int | None
    status: str
    quantity: int
    estimated_s: int | None
    grams: Decimal | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    failure_reason: str | None
    created_at: dt.datetime


class PrinterStatus(BaseModel):
    id: int
    name: str
    status: str
    active: bool
    current_job: JobView | None
    queued_jobs: int


# -- materials, printers, templates ---------------------------------------------------------------

def _listed(conn, access: Access, kind: str, item: type[BaseModel], include_retired: bool) -> list[dict[str, Any]]:
    """Staff: every field (retired ones too when asked). A client: the active rows, and of them only
    the item's required fields (the staff-only ones are left unset, so they are absent)."""
    if access.customer_id is None and access.allows("studio.view"):
        return setup.list_rows(conn, access.tenant_id, kind, include_retired=include_retired)
    shown = [name for name, field in item.model_fields.items() if field.is_required()]
    return [{name: row[name] for name in shown} for row in setup.list_rows(conn, access.tenant_id, kind)]


LIST = dict(responses=STAFF_RESPONSES, response_model_exclude_unset=True)


@router.get("/materials", response_model=list[MaterialItem], **LIST)
def list_materials(access: Chooser, conn: ReadConn, include_retired: IncludeRetired = False) -> list[dict[str, Any]]:
    """The studio's materials, oldest first (a client: the active ones, without costs)."""
    return _listed(conn, access, "material", MaterialItem, include_retired)


@router.post("/materials", response_model=MaterialView, status_code=201, responses=WRITES)
def create_material(body: MaterialIn, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """A name the studio already uses: 409; a profile that is not shipped: 422."""
    with writing(engine) as conn:
        return setup.create_row(conn, access.tenant_id, "material", **body.model_dump())


@router.patch("/materials/{material_id}", response_model=MaterialView, responses=WRITES)
def update_material(material_id: Id, body: MaterialPatch, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """Set the fields given; ``active: false`` retires it."""
    with writing(engine) as conn:
        return setup.update_row(conn, access.tenant_id, "material", material_id, **body.model_dump(exclude_unset=True))


@router.get("/printers", response_model=list[PrinterItem], **LIST)
def list_printers(access: Chooser, conn: ReadConn, include_retired: IncludeRetired = False) -> list[dict[str, Any]]:
    """The studio's printers, oldest first (a client: the active ones, without rates)."""
    return _listed(conn, access, "printer", PrinterItem, include_retired)


@router.post("/printers", response_model=PrinterView, status_code=201, responses=WRITES)
def create_printer(body: PrinterIn, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """A name the studio already uses: 409; a profile that is not shipped: 422."""
    with writing(engine) as conn:
        return setup.create_row(conn, access.tenant_id, "printer", **body.model_dump())


@router.patch("/printers/{printer_id}", response_model=PrinterView, responses=WRITES)
def update_printer(printer_id: Id, body: PrinterPatch, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """Set the fields given; ``status`` (idle, maintenance, offline) not while it prints (409)."""
    with writing(engine) as conn:
        return setup.update_row(conn, access.tenant_id, "printer", printer_id, **body.model_dump(exclude_unset=True))


@router.get("/product-templates", response_model=list[TemplateItem], **LIST)
def list_templates(access: Chooser, conn: ReadConn, include_retired: IncludeRetired = False) -> list[dict[str, Any]]:
    """The studio's pricing templates, oldest first (the first active one prices by default; a
    client: the active ones, without fees and margins)."""
    return _listed(conn, access, "template", TemplateItem, include_retired)


@router.post("/product-templates", response_model=TemplateView, status_code=201, responses=WRITES)
def create_template(body: TemplateIn, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """Add a pricing template: setup fee, margin, minimum price and rush multiplier (a price per model
    is material + machine time + setup, plus the margin, never under the minimum)."""
    with writing(engine) as conn:
        return setup.create_row(conn, access.tenant_id, "template", **body.model_dump())


@router.patch("/product-templates/{template_id}", response_model=TemplateView, responses=WRITES)
def update_template(template_id: Id, body: TemplatePatch, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """Change the fields given (``active: false`` retires it; quotes already made keep their prices)."""
    with writing(engine) as conn:
        return setup.update_row(conn, access.tenant_id, "template", template_id, **body.model_dump(exclude_unset=True))


# -- print jobs -----------------------------------------------------------------------------------

def _job(conn, tenant_id: str, job_id: int) -> dict[str, Any]:
    found = print_jobs.get(conn, tenant_id, job_id)
    if found is None:
        raise Problem(404, "print-job-not-found", "This studio has no such print job.")
    return found


def _moved(engine, tenant_id: str, job_id: int, move, *args, **kwargs) -> dict[str, Any]:
    with writing(engine) as conn:
        _job(conn, tenant_id, job_id)
        try:
            move(conn, tenant_id, job_id, *args, **kwargs)
        except print_jobs.JobStateError as exc:
            raise Problem(409, "print-job-state", str(exc)) from None
        return _job(conn, tenant_id, job_id)


@router.get("/printers/{printer_id}/status", response_model=PrinterStatus, responses=STAFF_RESPONSES)
def printer_status(printer_id: Id, access: Viewer, conn: ReadConn) -> dict[str, Any]:
    """Idle, printing (and the job), maintenance or offline; how many jobs wait for it."""
    found = print_jobs.printer_status(conn, access.tenant_id, printer_id)
    if found is None:
        raise Problem(404, "printer-not-found", "This studio has no such printer.")
    return found


@router.get("/printers/{printer_id}/jobs", response_model=list[JobView], responses=STAFF_RESPONSES)
def printer_jobs(printer_id: Id, access: Viewer, conn: ReadConn,
                 status: Literal["queued", "printing", "done", "failed"] | None = None,
                 limit: Annotated[int, Query(ge=1, le=200)] = 100) -> list[dict[str, Any]]:
    """The printer's jobs, newest first."""
    setup.get_row(conn, access.tenant_id, "printer", printer_id)
    return print_jobs.of_printer(conn, access.tenant_id, printer_id, status=status, limit=limit)


@router.post("/print-jobs", response_model=JobView, status_code=201, responses=WRITES)
def create_job(body: JobIn, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """Queue a job for a line of one of the studio's invoices (on a printer, or any later)."""
    with writing(engine) as conn:
        try:
            job_id = print_jobs.queue(conn, access.tenant_id, body.invoice_item_id, quantity=body.quantity,
                                      printer_id=body.printer_id, material_id=body.material_id,
                                      estimated_s=body.estimated_s,
                                      grams=float(body.grams) if body.grams is not None else None)
        except LookupError as exc:
            raise Problem(404, "not-found", str(exc)) from None
        except print_jobs.JobStateError as exc:
            raise Problem(409, "print-job-state", str(exc)) from None
        return _job(conn, access.tenant_id, job_id)


@router.get("/print-jobs/{job_id}", response_model=JobView, responses=STAFF_RESPONSES)
def get_job(job_id: Id, access: Viewer, conn: ReadConn) -> dict[str, Any]:
    """One print job: its invoice line, printer, material, status (queued, printing, done, failed),
    quantity, estimates and times."""
    return _job(conn, access.tenant_id, job_id)


@router.post("/print-jobs/{job_id}/start", response_model=JobView, responses=WRITES)
def start_job(job_id: Id, body: StartIn, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """Queued → printing on an idle, active printer (which is printing until the job ends)."""
    return _moved(engine, access.tenant_id, job_id, print_jobs.start, body.printer_id)


@router.post("/print-jobs/{job_id}/finish", response_model=JobView, responses=WRITES)
def finish_job(job_id: Id, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """Printing → done; the printer is idle again."""
    return _moved(engine, access.tenant_id, job_id, print_jobs.finish)


@router.post("/print-jobs/{job_id}/fail", response_model=JobView, responses=WRITES)
def fail_job(job_id: Id, body: FailIn, access: Manager, engine: EngineDep) -> dict[str, Any]:
    """Queued or printing → failed with its reason; a printer it was on is idle again."""
    return _moved(engine, access.tenant_id, job_id, print_jobs.finish, failed=body.reason)
