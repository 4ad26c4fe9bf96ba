"""The audit log: who did what to which tenant, when (grants, revocations, configuration, exports,
manual syncs). Written in the same transaction as the change it records."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from warehouse.tables.people import audit_log


def record(conn: sa.Connection, actor_id: str | None, tenant_id: str | None, action: str, **detail: Any) -> None:
    conn.execute(sa.insert(audit_log).values(actor_id=actor_id, tenant_id=tenant_id, action=action, detail=detail))


def entries(conn: sa.Connection, tenant_id: str, limit: int = 100, before_id: int | None = None) -> list[dict]:
    a = audit_log.c
    query = sa.select(audit_log).where(a.tenant_id == tenant_id)
    if before_id is not None:
        query = query.where(a.id < before_id)
    return [dict(r) for r in conn.execute(query.order_by(a.id.desc()).limit(limit)).mappings()]
