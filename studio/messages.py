"""Messages between a studio's staff and a client on a quote or invoice (``studio_user_messages``).

A client reads and writes only on their own documents (not drafts): ``client_id`` scopes every
call made for one. Posting a message is logged like any other change."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from studio.activity import Actor, log_activity
from studio.documents import KINDS, load
from studio.errors import StudioError
from warehouse.tables.studio import studio_user_messages

MAX_BODY = 10_000


def post_message(conn: sa.Connection, tenant_id: str, entity_type: str, entity_id: int, author: Actor, body: str,
                 client_id: int | None = None) -> dict[str, Any]:
    """Add a message by ``author`` (staff or client) on the quote or invoice."""
    if author.kind not in ("staff", "client"):
        raise ValueError("messages are written by staff or clients")
    load(conn, KINDS[entity_type], tenant_id, entity_id, client_id=client_id)
    body = body.strip()
    if not body or len(body) > MAX_BODY:
        raise StudioError(422, "invalid-message", f"a message has 1 to {MAX_BODY} characters")
    m = studio_user_messages.c
    message_id = conn.execute(sa.insert(studio_user_messages).values(
        tenant_id=tenant_id, entity_type=entity_type, entity_id=entity_id, author_kind=author.kind,
        author_id=author.user_id, body=body).returning(m.id)).scalar_one()
    log_activity(conn, tenant_id, entity_type, entity_id, "message", author, message_id=message_id)
    return _one(conn, tenant_id, message_id)


def messages_of(conn: sa.Connection, tenant_id: str, entity_type: str, entity_id: int,
                client_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The thread, oldest first."""
    load(conn, KINDS[entity_type], tenant_id, entity_id, client_id=client_id)
    m = studio_user_messages.c
    rows = conn.execute(sa.select(*COLUMNS).where(m.tenant_id == tenant_id, m.entity_type == entity_type,
                                                  m.entity_id == entity_id).order_by(m.id).limit(limit)).mappings()
    return [dict(r) for r in rows]


COLUMNS = tuple(studio_user_messages.c[c] for c in ("id", "entity_type", "entity_id", "author_kind", "author_id",
                                                    "body", "created_at"))


def _one(conn: sa.Connection, tenant_id: str, message_id: int) -> dict[str, Any]:
    m = studio_user_messages.c
    return dict(conn.execute(sa.select(*COLUMNS).where(m.tenant_id == tenant_id, m.id == message_id)).mappings().one())
