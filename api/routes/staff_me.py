"""``/me``: who the caller is, their tenants and permissions per tenant; and their API keys."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from api.deps import EngineDep
from api.problems import Problem
from api.staff import STAFF_RESPONSES, AuthDep, SignedIn
from people import users as people

router = APIRouter(prefix="/me", tags=["me"])


class TenantAccessView(BaseModel):
    tenant_id: str
    role: str
    permissions: list[str]
    customer_id: str | None = None


class MeView(BaseModel):
    id: str
    email: str
    name: str
    super_admin: bool
    via: str = Field(description="session or key")
    tenants: list[TenantAccessView]


class KeyView(BaseModel):
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class NewKeyRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class NewKeyView(BaseModel):
    name: str
    prefix: str
    key: str = Field(description="shown this once; only its hash is kept")


@router.get("", response_model=MeView, responses=STAFF_RESPONSES)
def me(principal: SignedIn, auth: AuthDep) -> MeView:
    grants = auth.live_grants(principal)
    return MeView(id=principal.user_id, email=principal.email, name=principal.name,
                  super_admin=principal.super_admin, via=principal.via,
                  tenants=[TenantAccessView(tenant_id=a.tenant_id, role=a.role, permissions=sorted(a.permissions),
                                            customer_id=a.customer_id) for a in grants])


@router.get("/keys", response_model=list[KeyView], responses=STAFF_RESPONSES)
def my_keys(principal: SignedIn, engine: EngineDep) -> list[KeyView]:
    with engine.connect() as conn:
        return [KeyView(**k) for k in people.list_keys(conn, principal.user_id)]


@router.post("/keys", response_model=NewKeyView, status_code=201, responses=STAFF_RESPONSES)
def new_key(body: NewKeyRequest, principal: SignedIn, engine: EngineDep, response: Response) -> NewKeyView:
    """A new API key acting as you; the key is in this answer only."""
    with engine.begin() as conn:
        key = people.create_key(conn, principal.user_id, body.name)
    response.headers["Cache-Control"] = "no-store"
    return NewKeyView(name=body.name, prefix=key.prefix, key=key.key)


@router.delete("/keys/{prefix}", status_code=204, responses=STAFF_RESPONSES)
def revoke_key(prefix: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")], principal: SignedIn,
               engine: EngineDep) -> Response:
    with engine.begin() as conn:
        if not people.revoke_key(conn, principal.user_id, prefix):
            raise Problem(404, "key-not-found", "You have no live API key with this prefix.")
    return Response(status_code=204)
