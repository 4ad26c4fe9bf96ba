"""Instant quotes from 3D models (seed 002, "3D File Processing & Slicing"): upload a model, ask
for a slice (answered 202 at once: the slicer runs in the API processes' slice workers), follow it
by polling or as a server-sent event stream, fetch the G-code through a signed link, and turn
sliced models into priced quote lines.

Every route needs ``studio.view`` (the studio's staff) or ``studio.portal`` (its client, through the customer
portal); a client sees and slices only the files they uploaded themselves.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import STUDIO_ONLY, EngineDep, StorageDep, StorageSettingsDep
from api.problems import Problem, problem_responses
from api.routes.studio_staff import IdempotencyKey, _replayed
from api.routes.studio_files import client as portal_client
from api.studio_schemas import QuoteView
from api.staff import STAFF_RESPONSES, require_any
from api.uploads import MULTIPART_BODY, form_file, uploads_to
from people.auth import Access
from resources.storage import TMP
from studio import quotes
from studio.files import Caller
from studio.slicing import catalog, mesh, orders, pricing
from studio.slicing.options import SliceOptions
from studio.slicing.service import TERMINAL, DoesNotFit, FileNotFound, SliceConflict, SliceService, public

router = APIRouter(prefix="/studios/{tenant}/slicing", tags=["studio: slicing"], dependencies=STUDIO_ONLY)
View = Annotated[Access, Depends(require_any("studio.view", "studio.portal"))]
# Writes (upload, slice, re-slice, order): staff who manage the studio, or a portal client on their own files.
Writer = Annotated[Access, Depends(require_any("studio.manage", "studio.portal"))]
FileId = Annotated[int, Path(ge=1, le=2**63 - 1)]
STREAM_S = 600  # an event stream ends after this long; the client reconnects (EventSource does)


class SliceRequest(SliceOptions):
    """The seed's slice input (``layerHeight``, ``infill``, ``supports``) and the printer and material."""

    printer_id: int | None = Field(None, alias="printerId", ge=1)
    material_id: int | None = Field(None, alias="materialId", ge=1)


class QuoteItem(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    file_id: int = Field(alias="fileId", ge=1, description="a sliced model (an uploaded file's id)")
    quantity: int = Field(1, ge=1, le=10_000, description="how many prints of it")


class QuoteLinesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    items: list[QuoteItem] = Field(min_length=1, max_length=50, description="the models, a line each")
    template_id: int | None = Field(None, alias="templateId", ge=1,
                                    description="the pricing template (none: the studio's first active one)")
    rush: bool = Field(False, description="a rush order: the template's rush multiplier applies")


class QuickOrderRequest(QuoteLinesRequest):
    client_id: int | None = Field(None, alias="clientId", ge=1, le=2**63 - 1,
                                  description="the client it is for (staff); a client orders for themselves")
    notes: str | None = Field(None, max_length=5000, description="the quote's notes")


def slicing(request: Request) -> SliceService:
    return request.app.state.slicing


def owner(access: Access) -> str | None:
    """A client (customer-portal grant) reaches only their own uploads; staff reach the studio's."""
    return access.principal.user_id if access.customer_id is not None else None


def status_url(request: Request, tenant: str, file_id: int) -> str:
    return str(request.url_for("slice_status", tenant=tenant, file_id=file_id).path)


def _view(request: Request, access: Access, row: dict[str, Any]) -> dict[str, Any]:
    return {**public(row), "statusUrl": status_url(request, access.tenant_id, row["id"]),
            "eventsUrl": status_url(request, access.tenant_id, row["id"]) + "/events"}


def _find(svc: SliceService, access: Access, file_id: int) -> dict[str, Any]:
    try:
        return svc.get(access.tenant_id, file_id, owner(access))
    except FileNotFound:
        raise Problem(404, "file-not-found", "This studio has no such file of yours.") from None


def _storage(svc: SliceService):
    if svc.storage is None:
        raise Problem(503, "storage-unavailable", "File storage is not configured on this server.")
    return svc.storage


@router.post("/files", status_code=201, openapi_extra=MULTIPART_BODY,
             responses={**STAFF_RESPONSES, **problem_responses(413, 503)})
@uploads_to(TMP)
async def upload_model(request: Request, access: Writer, settings: StorageSettingsDep) -> JSONResponse:
    """Upload a model (``multipart/form-data``, part ``file``: an STL, ASCII or binary, or a 3MF):
    validated as a mesh and measured, kept as a tmp file (``idle``). The form is read only once the
    caller's permission holds; a body over the tmp bucket's limit is a 413 as it arrives."""
    svc = slicing(request)
    _storage(svc)
    name, data, _ = await form_file(request, settings, TMP)
    try:
        row = await run_in_threadpool(svc.upload, access.tenant_id, access.principal.user_id, name or "model", data)
    except mesh.InvalidModel as exc:
        raise Problem(413 if exc.reason == "too-large" else 422, f"invalid-model-{exc.reason}", str(exc)) from None
    body = _view(request, access, row)
    return JSONResponse(body, status_code=201, headers={"Location": body["statusUrl"]})


@router.get("/files/{file_id}", name="slice_status", responses=STAFF_RESPONSES)
def slice_status(request: Request, file_id: FileId, access: View) -> dict[str, Any]:
    """The file and its slice: status, attempts, settings, metrics (grams, timeSec), fallback, error."""
    return _view(request, access, _find(slicing(request), access, file_id))


@router.post("/files/{file_id}/slice", status_code=202, responses={**STAFF_RESPONSES, **problem_responses(409)})
def request_slice(request: Request, file_id: FileId, body: SliceRequest, access: Writer) -> JSONResponse:
    """Ask for a slice: 202 with the status URL to poll (or ``/events`` to stream); a cached result is
    already ``completed``. A model larger than the printer's build volume: 422 naming both sizes."""
    svc = slicing(request)
    _find(svc, access, file_id)
    options = SliceOptions(**body.model_dump(by_alias=True, exclude={"printer_id", "material_id"}))
    try:
        row = svc.request_slice(access.tenant_id, file_id, options, printer_id=body.printer_id,
                                material_id=body.material_id, owner=owner(access))
    except DoesNotFit as exc:
        raise Problem(422, "model-too-large-for-printer", str(exc)) from None
    except catalog.CatalogError as exc:
        raise Problem(422, "unknown-printer-or-material", str(exc)) from None
    except SliceConflict as exc:
        raise Problem(409, "slice-running", str(exc)) from None
    except FileNotFound:
        raise Problem(404, "file-not-found", "This studio has no such file of yours.") from None
    view = _view(request, access, row)
    return JSONResponse(view, status_code=202, headers={"Location": view["statusUrl"]})


@router.get("/files/{file_id}/events", responses={200: {"content": {"text/event-stream": {}}}, **STAFF_RESPONSES})
async def slice_events(request: Request, file_id: FileId, access: View) -> StreamingResponse:
    """The slice's status as server-sent events (``event: status``), one on every change, ending when
    the slice completes or fails."""
    svc = slicing(request)
    await run_in_threadpool(_find, svc, access, file_id)

    async def stream():
        last, deadline = None, asyncio.get_running_loop().time() + STREAM_S
        while True:
            row = await run_in_threadpool(_find, svc, access, file_id)
            view = _view(request, access, row)
            if view != last:
                yield f"event: status\ndata: {json.dumps(view)}\n\n"
                last = view
            if row["status"] in TERMINAL or row["status"] == "idle":
                return
            if asyncio.get_running_loop().time() > deadline or await request.is_disconnected():
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/files/{file_id}/gcode", responses={**STAFF_RESPONSES, **problem_responses(503)})
def gcode_link(request: Request, file_id: FileId, access: View) -> dict[str, Any]:
    """A signed, expiring link to the slice's G-code."""
    svc = slicing(request)
    row = _find(svc, access, file_id)
    key = (row["metadata"] or {}).get("output")
    if row["status"] != "completed" or not key:
        raise Problem(404, "no-gcode", "This file has no G-code (not sliced yet, or estimated without the slicer).")
    expires = svc.settings.signed_url_s
    url = _storage(svc).signed_url(TMP, key, expires_s=expires, filename=key.rsplit("/", 1)[-1])
    return {"url": url, "expiresIn": expires}


@router.post("/quote-lines", responses={**STAFF_RESPONSES, **problem_responses(409)})
def quote_lines(request: Request, body: QuoteLinesRequest, access: View) -> dict[str, Any]:
    """Price sliced models: one quote line per model (description, quantity, unit price) with its
    breakdown (material, machine time, setup, margin, minimum, rush)."""
    try:
        lines = pricing.quick_order_lines(slicing(request).engine, access.tenant_id,
                                          [{"file_id": i.file_id, "quantity": i.quantity} for i in body.items],
                                          template_id=body.template_id, rush=body.rush, owner=owner(access))
    except catalog.CatalogError as exc:
        raise Problem(404, "not-found", str(exc)) from None
    except pricing.NotSliced as exc:
        raise Problem(409, "not-sliced", str(exc)) from None
    return {"lines": [{**line, "unit_price": str(line["unit_price"])} for line in lines]}


@router.post("/quick-order", status_code=201, response_model=QuoteView,
             responses={**STAFF_RESPONSES, **problem_responses(409),
                        200: {"model": QuoteView, "description": "A replay (same Idempotency-Key): that same quote"}})
def quick_order(body: QuickOrderRequest, access: Writer, engine: EngineDep, storage: StorageDep,
                storage_settings: StorageSettingsDep, response: Response,
                idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """Turn sliced models into a draft quote (one line per model, priced as ``quote-lines`` prices
    it) and the models into the client's order files on that quote. Staff (``studio.manage``) order
    for ``clientId``; a client, through the portal, for themselves and only their own uploads. A
    model is ordered once (409 after); not sliced yet: 409; no such file here: 404."""
    if access.allows("studio.manage") and access.customer_id is None:
        if body.client_id is None:
            raise Problem(422, "client-required", "Name the client the order is for (clientId).")
        caller, client_id, uploader = Caller("staff", access.principal.user_id), body.client_id, None
    else:  # the portal: their own client (none: NOBODY, a 404) and their own uploads
        caller = portal_client(access)
        if body.client_id not in (None, caller.client_id):
            raise Problem(404, "client-not-found", "This studio has no such client.")
        client_id, uploader = caller.client_id, access.principal.user_id
    made = _replayed(response, orders.quick_order(
        engine, storage, storage_settings, access.tenant_id, client_id,
        [{"file_id": i.file_id, "quantity": i.quantity} for i in body.items], caller, template_id=body.template_id,
        rush=body.rush, notes=body.notes, owner=uploader, key=idempotency_key))
    with engine.connect() as conn:
        return quotes.get_quote(conn, access.tenant_id, made.id)
