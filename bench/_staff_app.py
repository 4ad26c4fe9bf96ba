"""The API as ``storehouse api`` serves it, plus one bench-only route: the staff transactions page
without authorisation (same query, same serialisation, same middleware), for comparison."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.app import create_app
from api.routes.staff_records import Page, _page
from api.staff import ReadConn
from people import records
from people.auth import Access, Principal

bare = APIRouter()
NOBODY = Principal("bench", "bench@example.invalid", "bench", False, "key")


@bare.get("/bench/tenants/{tenant}/transactions", response_model=Page)
def unauthorised_page(tenant: str, conn: ReadConn, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                      cursor: str | None = None) -> Page:
    access = Access(NOBODY, tenant, "clinic_staff", frozenset({"transactions.view"}))
    return _page(lambda: records.transaction_page(conn, access, records.TransactionFilter(), limit, cursor))


def create():
    app = create_app()
    app.include_router(bare)
    return app
