"""The studio's audit trail (the seed's ``log_activity``): one row per change, who and when.

Written in the caller's transaction, so an entry exists exactly when the change it describes was
committed (a rolled-back webhook leaves no trace of itself here either).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from warehouse.tables.studio import studio_activity_logs

ACTORS = frozenset({"staff", "client", "stripe", "system"})


def log_activity(conn: sa.Connection, tenant_id: str, entity_type: str, entity_id: int, action: str,
                 actor_kind: str, actor_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Record that ``actor_kind`` (``actor_id``: the user, when a person) did ``action`` to the entity."""
    if actor_kind not in ACTORS:
        raise ValueError(f"actor_kind must be one of {sorted(ACTORS)}, not {actor_kind!r}")
    conn.execute(sa.insert(studio_activity_logs).values(
        tenant_id=tenant_id, entity_type=entity_type, entity_id=entity_id, action=action,
        actor_kind=actor_kind, actor_id=actor_id, detail=detail or {}))
