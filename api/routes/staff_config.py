"""``config.update``: a tenant's connections and options. Credentials are write-only: answers name
the credential fields a connection holds, never their values."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from api.deps import ServicesDep
from api.problems import Problem
from api.staff import STAFF_RESPONSES, require
from people import audit
from people.auth import Access
from resources.connection import ConnectionConfigError
from resources.systems import spec_for
from warehouse.tenants import connected_systems, get_connection, set_connection

router = APIRouter(prefix="/tenants/{tenant}/connections", tags=["staff: configuration"])
System = Annotated[str, Path(pattern=r"^[a-z_]{2,32}$")]


class ConnectionView(BaseModel):
    system: str
    base_url: str
    options: dict[str, Any]
    credential_fields: list[str] = Field(description="names of the stored credentials (their values are never shown)")


class ConnectionUpdate(BaseModel):
    base_url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")
    credentials: dict[str, Any] | None = Field(None, description="write-only; omitted: the stored ones stay")
    options: dict[str, Any] | None = Field(None, description="omitted: the stored ones stay")


def _view(connection) -> ConnectionView:
    return ConnectionView(system=connection.system, base_url=connection.base_url, options=connection.options,
                          credential_fields=sorted(connection.credentials))


@router.get("", response_model=list[ConnectionView], responses=STAFF_RESPONSES)
def connections(access: Annotated[Access, Depends(require("config.update"))],
                services: ServicesDep) -> list[ConnectionView]:
    with services.engine.connect() as conn:
        return [_view(get_connection(conn, access.tenant_id, s)) for s in connected_systems(conn, access.tenant_id)]


@router.put("/{system}", response_model=ConnectionView, responses=STAFF_RESPONSES)
def put_connection(system: System, body: ConnectionUpdate,
                   access: Annotated[Access, Depends(require("config.update"))],
                   services: ServicesDep) -> ConnectionView:
    """Set one connection; what it holds is checked against the system's declaration first."""
    with services.engine.begin() as conn:
        stored = get_connection(conn, access.tenant_id, system)
        credentials = body.credentials if body.credentials is not None else (stored.credentials if stored else {})
        options = body.options if body.options is not None else (stored.options if stored else {})
        try:
            spec_for(system).check(credentials, options)
        except ConnectionConfigError as exc:
            raise Problem(422, "invalid-connection", str(exc)) from None
        set_connection(conn, access.tenant_id, system, body.base_url, credentials, options)
        audit.record(conn, access.principal.user_id, access.tenant_id, "config.update", system=system,
                     base_url=body.base_url, options=sorted(options),
                     credentials_changed=sorted(body.credentials or {}))
        saved = get_connection(conn, access.tenant_id, system)
    services.storefronts.forget(access.tenant_id)  # this worker's cache; others see it within tenant_cache_s
    return _view(saved)
