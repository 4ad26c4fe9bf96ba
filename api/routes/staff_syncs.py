"""``sync.manual``: a tenant's manual syncs (seed 003, "Enhanced Manual Sync") and their live
progress ("Real-Time Progress Feedback").

``POST`` queues one (``202``, its URL in ``Location``); the sync-request sensor runs it as a
Dagster run of the tenant's partition, which writes its progress (the seed's eight steps,
percent, statistics) to ``sync_progress``. ``GET …/{id}`` reads it; ``GET …/{id}/events`` (or
``Accept: text/event-stream`` on the same URL) streams it as Server-Sent Events until it ends.

The stream is a plain ``StreamingResponse`` over an async generator that reads the row every
``POLL_S`` (in a worker thread) and sends an event when it changed, a comment line as keep-alive,
and stops when the sync ended, the client left or ``STREAM_MAX_S`` passed (clients reconnect): a dozen lines that need no new dependency
(sse-starlette would add a package for the same). A browser reads it with ``fetch()`` (the bearer
token goes in a header, which ``EventSource`` cannot send).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep
from api.problems import Problem, problem_responses
from api.staff import STAFF_RESPONSES, require
from people import audit
from people.auth import Access
from syncing.progress import MX_STEPS
from warehouse import sync_progress as progress
from warehouse.tenants import connected_systems

router = APIRouter(prefix="/tenants/{tenant}/syncs", tags=["staff: manual sync"])
SyncId = Annotated[int, Path(ge=1, le=2**31 - 1)]
MX_JOB = "mx_merchant_sync"  # the seed's manual sync is the MX Merchant one (pipelines/mx_merchant.py)
POLL_S = 0.5
KEEPALIVE_S = 15.0
STREAM_MAX_S = 300.0  # a stream ends after this even if the sync goes on; clients reconnect (retry)
MAX_RANGE = dt.timedelta(days=366)
SyncManual = Annotated[Access, Depends(require("sync.manual"))]


class SyncRequest(BaseModel):
    mode: Literal["incremental", "recovery"] = Field(
        "incremental", description="incremental: the normal sync, now; recovery: re-read up to 1,000 payments "
        "created in [date_from, date_to) and repair what differs (the seed's emergency mode)")
    date_from: dt.date | None = Field(None, description="recovery: first day of the range")
    date_to: dt.date | None = Field(None, description="recovery: last day of the range (inclusive)")

    @model_validator(mode="after")
    def _range(self) -> "SyncRequest":
        if self.mode == "recovery":
            if self.date_from is None or self.date_to is None:
                raise ValueError("recovery needs date_from and date_to")
            if self.date_to < self.date_from or self.date_to - self.date_from > MAX_RANGE:
                raise ValueError("date_to must be on or after date_from, at most a year later")
        elif self.date_from is not None or self.date_to is not None:
            raise ValueError("a date range is for recovery mode only")
        return self


class SyncStats(BaseModel):
    payments_read: int = 0
    payments_new: int = 0
    payments_updated: int = 0
    invoices_wanted: int = 0
    invoices_fetched: int = 0
    linkage_rate: float | None = Field(None, description="invoice-referencing transactions linked to their invoice")
    api_calls: int = 0
    calls_per_transaction: float | None = None
    quarantined: int = 0
    errors: int = 0


class SyncView(BaseModel):
    id: int
    tenant_id: str
    mode: str
    date_from: dt.datetime | None
    date_to: dt.datetime | None
    status: str = Field(description="queued, running, succeeded or failed")
    step: int = Field(description="the seed's step, 1-8 (0: not started)")
    step_name: str | None
    steps: int = len(MX_STEPS)
    percent: int
    stats: SyncStats
    run_id: str | None
    error: str | None
    requested_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class SyncCreated(BaseModel):
    id: int
    url: str
    status: str = "queued"


def _view(row: dict[str, Any]) -> SyncView:
    return SyncView(**{k: row.get(k) for k in SyncView.model_fields if k not in ("stats", "steps")},
                    stats=SyncStats(**{k: v for k, v in row["stats"].items() if k in SyncStats.model_fields}))


def _url(access: Access, sync_id: int) -> str:
    return f"/tenants/{access.tenant_id}/syncs/{sync_id}"


@router.post("", status_code=202, response_model=SyncCreated,
             responses={**STAFF_RESPONSES, **problem_responses((409, "a manual sync of this tenant is queued or "
                                                                      "running, or it has no MX Merchant connection"))})
def start_sync(body: SyncRequest, access: SyncManual, engine: EngineDep, response: Response) -> SyncCreated:
    """Queue a manual sync of the tenant (one at a time per tenant); it runs as a Dagster run of the
    tenant's partition."""
    with engine.connect() as conn:
        if "mx_merchant" not in connected_systems(conn, access.tenant_id):
            raise Problem(409, "not-connected", "This tenant has no MX Merchant connection to sync.")
    date_from = date_to = None
    if body.mode == "recovery":
        date_from = dt.datetime.combine(body.date_from, dt.time(), dt.timezone.utc)
        date_to = dt.datetime.combine(body.date_to + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    try:
        sync_id = progress.request_manual_sync(
            engine, access.tenant_id, MX_JOB, access.principal.user_id, body.mode, date_from, date_to,
            label=access.principal.email)
    except progress.Busy as busy:
        extra = {"sync_id": busy.request_id} if busy.request_id else {}
        raise Problem(409, "sync-in-progress", "A manual sync of this tenant is already queued or running; "
                      "wait for it to finish.", **extra) from None
    with engine.begin() as conn:
        audit.record(conn, access.principal.user_id, access.tenant_id, "sync.manual", sync_id=sync_id,
                     mode=body.mode, date_from=body.date_from and body.date_from.isoformat(),
                     date_to=body.date_to and body.date_to.isoformat())
    url = _url(access, sync_id)
    response.headers["Location"] = url
    return SyncCreated(id=sync_id, url=url)


@router.get("", response_model=list[SyncView], responses=STAFF_RESPONSES)
def list_syncs(access: SyncManual, engine: EngineDep) -> list[SyncView]:
    """The tenant's latest manual syncs, newest first."""
    with engine.connect() as conn:
        return [_view(row) for row in progress.listing(conn, access.tenant_id)]


def _read(engine, tenant_id: str, sync_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = progress.get(conn, tenant_id, sync_id)
    if row is None:
        raise Problem(404, "not-found", "No such sync on this tenant.")
    return row


def _event(view: SyncView) -> bytes:
    return f"event: progress\ndata: {view.model_dump_json()}\n\n".encode()


async def _events(request: Request, engine, tenant_id: str, sync_id: int):
    last, quiet, waited = None, 0.0, 0.0
    yield b"retry: 2000\n\n"
    while True:
        view = _view(await run_in_threadpool(_read, engine, tenant_id, sync_id))
        data = view.model_dump_json()
        if data != last:
            last, quiet = data, 0.0
            yield _event(view)
        elif quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield b": keep-alive\n\n"
        if view.status in progress.DONE:
            yield f"event: end\ndata: {json.dumps({'status': view.status})}\n\n".encode()
            return
        if await request.is_disconnected() or waited >= STREAM_MAX_S:
            return
        await asyncio.sleep(POLL_S)
        quiet += POLL_S
        waited += POLL_S


EVENT_RESPONSES = {**STAFF_RESPONSES, 200: {
    "description": "the sync (JSON), or with Accept: text/event-stream its progress as Server-Sent Events",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SyncView"}},
                "text/event-stream": {}}}}


def _stream(request: Request, engine, access: Access, sync_id: int) -> StreamingResponse:
    _read(engine, access.tenant_id, sync_id)  # 404 before the stream starts
    return StreamingResponse(_events(request, engine, access.tenant_id, sync_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/{sync_id}", response_model=SyncView, responses=EVENT_RESPONSES)
def get_sync(sync_id: SyncId, access: SyncManual, engine: EngineDep, request: Request):
    """The sync's status, step, percent and statistics (``Accept: text/event-stream``: as a stream)."""
    if "text/event-stream" in request.headers.get("accept", ""):
        return _stream(request, engine, access, sync_id)
    return _view(_read(engine, access.tenant_id, sync_id))


@router.get("/{sync_id}/events", response_class=StreamingResponse, responses={**STAFF_RESPONSES, 200: {
    "description": "progress events until the sync ends", "content": {"text/event-stream": {}}}})
def sync_events(sync_id: SyncId, access: SyncManual, engine: EngineDep, request: Request) -> StreamingResponse:
    """The sync's progress as Server-Sent Events (``progress`` on each change, ``end`` when it ends)."""
    return _stream(request, engine, access, sync_id)
