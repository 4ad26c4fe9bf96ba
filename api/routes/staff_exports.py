"""``data.export``: a tenant's transactions or invoices as CSV or Parquet, streamed (any size,
constant memory); each export is written to the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api.deps import EngineDep, Instant
from api.staff import STAFF_RESPONSES, require
from people import audit, exports, records
from people.auth import Access

router = APIRouter(prefix="/tenants/{tenant}/exports", tags=["staff: exports"])
Format = Annotated[Literal["csv", "parquet"], Query(description="csv or parquet")]
EXPORT_RESPONSES = {**STAFF_RESPONSES, 200: {"description": "the rows, streamed",
                                             "content": {media: {} for media in exports.FORMATS.values()}}}


def _streamed(engine, access: Access, what: str, query, fmt: str, filters: dict) -> StreamingResponse:
    with engine.begin() as conn:
        audit.record(conn, access.principal.user_id, access.tenant_id, "export", what=what, format=fmt,
                     filters={k: str(v) for k, v in filters.items() if v is not None})
    name = f"{access.tenant_id}-{what}.{fmt}"
    return StreamingResponse(exports.stream(engine, query, fmt), media_type=exports.FORMATS[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


@router.get("/transactions", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
def export_transactions(access: Annotated[Access, Depends(require("data.export"))], engine: EngineDep,
                        format: Format = "csv", since: Instant | None = None, until: Instant | None = None,
                        status: Annotated[str | None, Query(max_length=32)] = None,
                        category: Annotated[str | None, Query(max_length=100)] = None,
                        linked: bool | None = None) -> StreamingResponse:
    f = records.TransactionFilter(since, until, status, category, linked)
    query = records.transactions_query(access, f).order_by(records.transactions.c.created_at,
                                                           records.transactions.c.id)
    return _streamed(engine, access, "transactions", query, format, f.__dict__)


@router.get("/invoices", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
def export_invoices(access: Annotated[Access, Depends(require("data.export"))], engine: EngineDep,
                    format: Format = "csv", since: Instant | None = None, until: Instant | None = None,
                    status: Annotated[str | None, Query(max_length=32)] = None) -> StreamingResponse:
    query = records.invoices_query(access, since, until, status).order_by(records.invoices.c.id)
    return _streamed(engine, access, "invoices", query, format, {"since": since, "until": until, "status": status})
