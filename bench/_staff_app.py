"""The API as ``storehouse api`` serves it, plus one bench-only route: the staff transactions page
without authorisation, for comparison.

The bench route is the real route's own handler (``list_transactions``) under the same parameters,
its ``access`` given by a dependency that does nothing (no credential, no lookup): same query
parameters parsed, same query, same serialisation, same middleware, and the same per-request
connection (``ReadConn``), so the difference between the two is exactly the authorisation."""

from __future__ import annotations

import inspect
from typing import Annotated

from fastapi import Depends

from api.app import create_app
from api.routes.staff_records import Page, list_transactions
from people.auth import Access, Principal

NOBODY = Principal("bench", "bench@example.invalid", "bench", False, "key")


async def nobody(tenant: str) -> Access:
    return Access(NOBODY, tenant, "clinic_staff", frozenset({"transactions.view"}))


def unauthorised_page(**kwargs) -> Page:
    return list_transactions(**kwargs)


_real = inspect.signature(list_transactions, eval_str=True)
unauthorised_page.__signature__ = _real.replace(parameters=[  # type: ignore[attr-defined]
    p.replace(annotation=Annotated[Access, Depends(nobody)]) if p.name == "access" else p
    for p in _real.parameters.values()])


def create():
    app = create_app()
    app.add_api_route("/bench/tenants/{tenant}/transactions", unauthorised_page, methods=["GET"], response_model=Page)
    return app
