"""A tenant's transactions and invoices for its staff: filtered lists with cursor pagination, detail
with lines, and the nurse's one write (``invoices.update_data_sent``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from api.deps import EngineDep, Instant
from api.problems import Problem
from api.staff import STAFF_RESPONSES, ReadConn, require
from people import audit, records
from people.auth import Access

router = APIRouter(prefix="/tenants/{tenant}", tags=["staff: records"])
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=200)]
Id = Annotated[int, Path(ge=0, le=2**63 - 1)]


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class DataSent(BaseModel):
    data_sent: bool


def _page(fetch) -> Page:
    try:
        items, cursor = fetch()
    except records.BadCursor as exc:
        raise Problem(400, "bad-cursor", str(exc)) from None
    return Page(items=[_plain(i) for i in items], next_cursor=cursor)


def _plain(row: dict) -> dict:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


@router.get("/transactions", response_model=Page, responses=STAFF_RESPONSES)
def list_transactions(access: Annotated[Access, Depends(require("transactions.view"))], conn: ReadConn,
                      since: Instant | None = None, until: Instant | None = None,
                      status: Annotated[str | None, Query(max_length=32)] = None,
                      category: Annotated[str | None, Query(max_length=100)] = None,
                      linked: bool | None = None, limit: Limit = 50, cursor: Cursor = None) -> Page:
    """Newest first; ``linked`` keeps those with (true) or without (false) an invoice."""
    f = records.TransactionFilter(since, until, status, category, linked)
    return _page(lambda: records.transaction_page(conn, access, f, limit, cursor))


@router.get("/transactions/{transaction_id}", responses=STAFF_RESPONSES)
def get_transaction(transaction_id: Id, access: Annotated[Access, Depends(require("transactions.view"))],
                    conn: ReadConn) -> dict[str, Any]:
    found = records.transaction_detail(conn, access, transaction_id)
    if found is None:
        raise Problem(404, "transaction-not-found", "This tenant has no such transaction.")
    return _deep(found)


@router.get("/invoices", response_model=Page, responses=STAFF_RESPONSES)
def list_invoices(access: Annotated[Access, Depends(require("invoices.view"))], conn: ReadConn,
                  since: Instant | None = None, until: Instant | None = None,
                  status: Annotated[str | None, Query(max_length=32)] = None,
                  limit: Limit = 50, cursor: Cursor = None) -> Page:
    return _page(lambda: records.invoice_page(conn, access, limit, cursor, since=since, until=until, status=status))


@router.get("/invoices/{invoice_id}", responses=STAFF_RESPONSES)
def get_invoice(invoice_id: Id, access: Annotated[Access, Depends(require("invoices.view"))],
                conn: ReadConn) -> dict[str, Any]:
    found = records.invoice_detail(conn, access, invoice_id)
    if found is None:
        raise Problem(404, "invoice-not-found", "This tenant has no such invoice.")
    return _deep(found)


@router.put("/invoices/{invoice_id}/data-sent", response_model=DataSent, responses=STAFF_RESPONSES)
def put_data_sent(invoice_id: Id, body: DataSent,
                  access: Annotated[Access, Depends(require("invoices.update_data_sent"))],
                  engine: EngineDep) -> DataSent:
    """The seed's "data sent to provider" flag of one invoice."""
    with engine.begin() as conn:
        if not records.set_data_sent(conn, access, invoice_id, body.data_sent):
            raise Problem(404, "invoice-not-found", "This tenant has no such invoice.")
        audit.record(conn, access.principal.user_id, access.tenant_id, "invoices.update_data_sent",
                     invoice_id=invoice_id, data_sent=body.data_sent)
    return body


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return str(value) if isinstance(value, Decimal) else value
