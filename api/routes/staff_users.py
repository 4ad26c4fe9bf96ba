"""Users of a tenant: invite (by email), list, change role, set expiry, revoke; the invitation
link's page and acceptance; and the tenant's audit log (owners)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from api.deps import EngineDep, ServicesDep
from api.problems import Problem, problem_responses
from api.staff import STAFF_RESPONSES, AuthDep, require
from people import audit, invitations, users as people
from people.auth import Access
from people.roles import may_grant
from resources.http import ProviderError
from warehouse.tables.people import user_tenant_permissions

router = APIRouter(tags=["staff: users"])
UserId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]


class InviteRequest(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    role: str = Field(max_length=50)
    permissions: dict[str, list[str]] = Field(default_factory=dict, description='overrides {"add": [], "remove": []}')
    expires_at: dt.datetime | None = Field(None, description="when the grant ends (null: never)")
    customer_id: str | None = Field(None, max_length=64, description="role customer: which of the tenant's customers")


class InvitationView(BaseModel):
    id: str
    email: str
    role: str
    expires_at: dt.datetime


class AcceptRequest(BaseModel):
    token: str = Field(min_length=1, max_length=2048)
    name: str = Field("", max_length=200)
    password: str | None = Field(None, min_length=10, max_length=1024)


class ChangeRequest(BaseModel):
    role: str | None = Field(None, max_length=50)
    expires_at: dt.datetime | None = None


def _refusal(exc: people.PeopleError) -> Problem:
    return Problem(exc.status, exc.kind, str(exc))


@router.get("/tenants/{tenant}/users", responses=STAFF_RESPONSES)
def tenant_users(access: Annotated[Access, Depends(require("users.view"))], engine: EngineDep) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return people.tenant_users(conn, access.tenant_id)


@router.post("/tenants/{tenant}/invitations", response_model=InvitationView, status_code=201,
             responses={**STAFF_RESPONSES, **problem_responses(409, 502)})
def invite(body: InviteRequest, access: Annotated[Access, Depends(require("users.invite"))], auth: AuthDep,
           services: ServicesDep) -> InvitationView:
    """Email an invitation link; you may grant only the roles (and permissions) your role may grant."""
    storefront = services.storefronts.get(access.tenant_id)
    connection = storefront.connection("resend") if storefront else None
    if connection is None:
        raise Problem(409, "no-email-connection", "This tenant has no email (Resend) connection to send from.")
    client = services.email_clients.get(connection)
    try:
        with services.engine.begin() as conn:
            made = invitations.invite(conn, auth, access, body.email, body.role, body.permissions, body.expires_at,
                                      services.settings.public_url, client.send, body.customer_id)
    except people.PeopleError as exc:
        raise _refusal(exc) from None
    except ProviderError:
        raise Problem(502, "email-failed", "The invitation email could not be sent; nothing was recorded.") from None
    return InvitationView(**made)


@router.get("/invitations/accept", responses=STAFF_RESPONSES)
def invitation(token: Annotated[str, Query(max_length=2048)], auth: AuthDep, engine: EngineDep) -> dict[str, Any]:
    """What the link offers (tenant, role, email), for the page that accepts it."""
    with engine.connect() as conn:
        found = invitations.pending(conn, auth, token)
    if found is None:
        raise Problem(404, "invitation-not-found", "This invitation link is not valid, or has expired or been used.")
    return {"tenant": found["tenant_name"], "role": found["role"], "email": found["email"],
            "expires_at": found["expires_at"]}


@router.post("/invitations/accept", status_code=201, responses=STAFF_RESPONSES)
def accept(body: AcceptRequest, auth: AuthDep, engine: EngineDep) -> dict[str, Any]:
    try:
        with engine.begin() as conn:
            done = invitations.accept(conn, auth, body.token, body.name, body.password)
            if done is None:
                raise Problem(404, "invitation-not-found",
                              "This invitation link is not valid, or has expired or been used.")
    except people.PeopleError as exc:
        raise _refusal(exc) from None
    return done


def _grant_of(conn, tenant_id: str, user_id: str) -> dict | None:
    g = user_tenant_permissions.c
    row = conn.execute(sa.select(user_tenant_permissions).where(g.tenant_id == tenant_id, g.user_id == user_id)
                       ).mappings().one_or_none()
    return dict(row) if row else None


@router.patch("/tenants/{tenant}/users/{user_id}", responses=STAFF_RESPONSES)
def change(user_id: UserId, body: ChangeRequest, access: Annotated[Access, Depends(require("users.manage"))],
           engine: EngineDep) -> dict[str, Any]:
    """Change a user's role on this tenant and/or the grant's expiry (``expires_at: null``: never)."""
    actor = access.principal.user_id
    with engine.begin() as conn:
        current = _grant_of(conn, access.tenant_id, user_id)
        if current is None:
            raise Problem(404, "user-not-found", "This user holds no grant on this tenant.")
        try:
            if body.role is not None and body.role != current["role"]:
                why_not = may_grant(access.role, access.permissions, body.role, current["permissions"])
                if why_not:
                    raise Problem(403, "forbidden", why_not)
                people.grant(conn, user_id, access.tenant_id, body.role, overrides=current["permissions"],
                             expires_at=body.expires_at if "expires_at" in body.model_fields_set
                             else current["expires_at"], customer_id=current["customer_id"], actor_id=actor)
            elif "expires_at" in body.model_fields_set:
                people.set_expiry(conn, user_id, access.tenant_id, body.expires_at, actor_id=actor)
        except people.PeopleError as exc:
            raise _refusal(exc) from None
        now = _grant_of(conn, access.tenant_id, user_id)
    return {"user_id": user_id, "role": now["role"], "expires_at": now["expires_at"], "is_active": now["is_active"]}


@router.delete("/tenants/{tenant}/users/{user_id}", status_code=204, responses=STAFF_RESPONSES)
def revoke(user_id: UserId, access: Annotated[Access, Depends(require("users.manage"))],
           engine: EngineDep) -> Response:
    """End the user's grant on this tenant, at once on every worker."""
    with engine.begin() as conn:
        if not people.revoke(conn, user_id, access.tenant_id, actor_id=access.principal.user_id):
            raise Problem(404, "user-not-found", "This user holds no live grant on this tenant.")
    return Response(status_code=204)


@router.get("/tenants/{tenant}/audit", responses=STAFF_RESPONSES)
def audit_log(access: Annotated[Access, Depends(require("audit.view"))], engine: EngineDep,
              limit: Annotated[int, Query(ge=1, le=500)] = 100,
              before: Annotated[int | None, Query(ge=1)] = None) -> list[dict[str, Any]]:
    """Grants, revocations, configuration changes, exports and manual syncs on this tenant, newest first."""
    with engine.connect() as conn:
        return audit.entries(conn, access.tenant_id, limit, before)
