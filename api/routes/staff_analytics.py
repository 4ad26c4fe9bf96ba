"""Investors: analytics across exactly the tenants they hold ``analytics.view`` on (aggregates
only, no customer rows); and the same for one tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.deps import Day, EngineDep
from api.staff import STAFF_RESPONSES, across, require
from people import analytics
from people.auth import Access

router = APIRouter(tags=["staff: analytics"])


@router.get("/analytics", responses=STAFF_RESPONSES)
def across_tenants(granted: Annotated[list[Access], Depends(across("analytics.view"))], engine: EngineDep,
                   since: Day | None = None, until: Day | None = None) -> dict[str, Any]:
    """Daily aggregates for every tenant you hold analytics.view on, and no other."""
    with engine.connect() as conn:
        return analytics.summary(conn, [a.tenant_id for a in granted], since, until)


@router.get("/tenants/{tenant}/analytics", responses=STAFF_RESPONSES)
def one_tenant(access: Annotated[Access, Depends(require("analytics.view"))], engine: EngineDep,
               since: Day | None = None, until: Day | None = None) -> dict[str, Any]:
    with engine.connect() as conn:
        return analytics.summary(conn, [access.tenant_id], since, until)
