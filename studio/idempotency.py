"""Creates that a client may retry: the same ``Idempotency-Key`` with the same body finds the row
the first request made; with another body it is refused (422), as the shop's checkout does.

The key and a digest of the body are stored on the row, unique per studio. A retry is found
before any work is done; two requests racing with one key both insert, and the unique index
refuses the second, whose whole transaction (its document number included: ``studio.numbers``
takes it in the same transaction) rolls back, so no number is burned and no row doubled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from studio.errors import StudioError


@dataclass(frozen=True)
class Created:
    id: int
    created: bool  # False: a replay of an earlier request with this key


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _existing(engine: sa.Engine, table: sa.Table, tenant_id: str, key: str, digest: str) -> int | None:
    t = table.c
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.id, t.request_hash).where(t.tenant_id == tenant_id, t.idempotency_key == key)
                           ).one_or_none()
    if row is None:
        return None
    if row.request_hash != digest:
        raise StudioError(422, "idempotency-key-reused",
                          "This Idempotency-Key was already used with another body; use a new key for a new request.")
    return row.id


def create_once(engine: sa.Engine, table: sa.Table, tenant_id: str, key: str | None, body: dict[str, Any],
                create: Callable[[dict[str, Any]], int]) -> Created:
    """Run ``create(fields)`` (which inserts one row of ``table`` with ``fields`` among its values and
    returns its id) once per key; without a key, every call creates."""
    if key is None:
        return Created(create({}), True)
    digest = request_hash(body)
    found = _existing(engine, table, tenant_id, key, digest)
    if found is not None:
        return Created(found, False)
    try:
        return Created(create({"idempotency_key": key, "request_hash": digest}), True)
    except sa.exc.IntegrityError:
        found = _existing(engine, table, tenant_id, key, digest)  # a concurrent request with this key won
        if found is None:
            raise
        return Created(found, False)
