"""The API as ``storehouse api`` serves it, plus one bench-only route: the staff transactions page
without authorisation, for comparison.

The bench route is the real route's own handler (``list_transactions``) under the same parameters,
its ``access`` given by a dependency that does nothing (no credential, no lookup): same query
parameters parsed, same query, same serialisation, same middleware, the same per-request
connection (``ReadConn``) and the same place in the route table, so the difference between the two
is exactly the authorisation."""

from __future__ import annotations

import inspect
from typing import Annotated

from fastapi import Depends

from api.app import create_app
from api.routes import staff_records
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
    """The app, the bench route placed just before the real one: a request is matched against the
    routes in order (a regex each), so both are found after the same number of tries."""
    app = create_app()
    app.add_api_route("/bench/tenants/{tenant}/transactions", unauthorised_page, methods=["GET"], response_model=Page)
    routes = app.router.routes
    bench = routes.pop()
    # FastAPI keeps an included router as one entry (its routes inside): the bench route goes just
    # before the entry holding the real route, whose first route it is.
    real = next(i for i, r in enumerate(routes) if getattr(r, "original_router", None) is staff_records.router)
    routes.insert(real, bench)
    return app
