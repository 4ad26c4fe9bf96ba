"""The studio's audit trail (the seed's ``log_activity``): every change, who made it and when.

Written in the same transaction as the change it records, so the log never tells of a change
that did not happen, nor misses one that did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from warehouse.tables.studio import studio_activity_logs

ACTOR_KINDS = ("staff", "client", "stripe", "system")


@dataclass(frozen=True)
class Actor:
    """Who does something: a staff member or a client (by ``users.id``), Stripe, or the system."""

    kind: str
    user_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind is one of {ACTOR_KINDS}, not {self.kind!r}")


SYSTEM = Actor("system")
STRIPE = Actor("stripe")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (Decimal, dt.date, dt.datetime)):
        return str(value)
    return value


def log_activity(conn: sa.Connection, tenant_id: str, entity_type: str, entity_id: int, action: str,
                 actor: Actor, **detail: Any) -> None:
    """Record that ``actor`` did ``action`` to ``entity_type`` ``entity_id`` (``detail``: what changed)."""
    conn.execute(sa.insert(studio_activity_logs).values(
        tenant_id=tenant_id, entity_type=entity_type, entity_id=entity_id, action=action, actor_kind=actor.kind,
        actor_id=actor.user_id, detail=_plain(detail)))


def activity_of(conn: sa.Connection, tenant_id: str, entity_type: str, entity_id: int,
                limit: int = 200) -> list[dict[str, Any]]:
    """The entity's log, oldest first."""
    a = studio_activity_logs.c
    rows = conn.execute(sa.select(a.id, a.action, a.actor_kind, a.actor_id, a.detail, a.at)
                        .where(a.tenant_id == tenant_id, a.entity_type == entity_type, a.entity_id == entity_id)
                        .order_by(a.id).limit(limit)).mappings()
    return [dict(r) for r in rows]
