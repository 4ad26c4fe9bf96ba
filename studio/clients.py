"""The studio's clients: create, read, list, change, archive (documents are kept)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from studio.activity import Actor, log_activity
from studio.errors import StudioError, not_found
from warehouse.tables.studio import studio_clients
from warehouse.types import now_utc

FIELDS = ("name", "company", "email", "phone", "address", "abn")
COLUMNS = ("id", *FIELDS, "user_id", "archived_at", "created_at", "updated_at")


def _row(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in COLUMNS}


def create_client(conn: sa.Connection, tenant_id: str, actor: Actor, *, once: dict[str, str] | None = None,
                  **fields: Any) -> dict[str, Any]:
    """``once``: the request's idempotency key and digest (``studio.idempotency``), stored, not logged."""
    _check(fields)
    if not (fields.get("name") or "").strip():
        raise StudioError(422, "invalid-client", "a client needs a name")
    client_id = conn.execute(sa.insert(studio_clients).values(tenant_id=tenant_id, **fields, **(once or {}))
                             .returning(studio_clients.c.id)).scalar_one()
    log_activity(conn, tenant_id, "client", client_id, "created", actor, **fields)
    return get_client(conn, tenant_id, client_id)


def get_client(conn: sa.Connection, tenant_id: str, client_id: int) -> dict[str, Any]:
    c = studio_clients.c
    row = conn.execute(sa.select(studio_clients).where(c.tenant_id == tenant_id, c.id == client_id)
                       ).mappings().one_or_none()
    if row is None:
        raise not_found("client")
    return _row(row)


def list_clients(conn: sa.Connection, tenant_id: str, *, include_archived: bool = False, search: str | None = None,
                 limit: int = 100, after: int | None = None) -> list[dict[str, Any]]:
    """By id; ``after``: the last id of the previous page; ``search``: in name, company, email."""
    c = studio_clients.c
    query = sa.select(studio_clients).where(c.tenant_id == tenant_id)
    if not include_archived:
        query = query.where(c.archived_at.is_(None))
    if search:
        like = f"%{search.lower().replace('%', '').replace('_', '')}%"
        query = query.where(sa.or_(sa.func.lower(c.name).like(like), sa.func.lower(c.company).like(like),
                                   sa.func.lower(c.email).like(like)))
    if after is not None:
        query = query.where(c.id > after)
    return [_row(r) for r in conn.execute(query.order_by(c.id).limit(limit)).mappings()]


def update_client(conn: sa.Connection, tenant_id: str, client_id: int, actor: Actor, **fields: Any) -> dict[str, Any]:
    _check(fields)
    if "name" in fields and not (fields["name"] or "").strip():
        raise StudioError(422, "invalid-client", "a client needs a name")
    get_client(conn, tenant_id, client_id)
    if fields:
        c = studio_clients.c
        conn.execute(sa.update(studio_clients).where(c.tenant_id == tenant_id, c.id == client_id)
                     .values(**fields, updated_at=now_utc()))
        log_activity(conn, tenant_id, "client", client_id, "updated", actor, **fields)
    return get_client(conn, tenant_id, client_id)


def archive_client(conn: sa.Connection, tenant_id: str, client_id: int, actor: Actor) -> dict[str, Any]:
    """Hide the client from lists; their documents stay (idempotent)."""
    found = get_client(conn, tenant_id, client_id)
    if found["archived_at"] is None:
        c = studio_clients.c
        conn.execute(sa.update(studio_clients).where(c.tenant_id == tenant_id, c.id == client_id)
                     .values(archived_at=now_utc(), updated_at=now_utc()))
        log_activity(conn, tenant_id, "client", client_id, "archived", actor)
    return get_client(conn, tenant_id, client_id)


def _check(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown client fields {sorted(unknown)}")
