"""A studio's staff set up what prices a print: materials, printers and pricing templates
(issue 14, "Price and order"). List, create and change; never delete (a printed job or a quote
keeps naming them): retire one with ``active = false``.

Each write runs in the caller's transaction, scoped to its tenant; a name the studio already uses
is a 409, a slicer profile that is not shipped a 422. (``kind`` is positional-only: materials
have a ``kind`` column of their own.) A printer's ``status`` is the print jobs'
while it prints (``print_jobs``): staff set idle, maintenance or offline, never over a print.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from studio.errors import StudioError, not_found
from studio.slicing.catalog import DEFAULT_PROFILES, CatalogError, profile_path
from warehouse.tables.studio_print import studio_materials, studio_printers, studio_product_templates
from warehouse.types import now_utc

TABLES = {"material": studio_materials, "printer": studio_printers, "template": studio_product_templates}
PROFILE_DEFAULT = {"material": DEFAULT_PROFILES[1], "printer": DEFAULT_PROFILES[0]}


def _table(kind: str) -> sa.Table:
    return TABLES[kind]


def list_rows(conn: sa.Connection, tenant_id: str, kind: str, *, include_retired: bool = False
              ) -> list[dict[str, Any]]:
    t = _table(kind)
    query = sa.select(t).where(t.c.tenant_id == tenant_id).order_by(t.c.id)
    if not include_retired:
        query = query.where(t.c.active)
    return [dict(r) for r in conn.execute(query).mappings()]


def get_row(conn: sa.Connection, tenant_id: str, kind: str, row_id: int) -> dict[str, Any]:
    t = _table(kind)
    row = conn.execute(sa.select(t).where(t.c.tenant_id == tenant_id, t.c.id == row_id)).mappings().first()
    if row is None:
        raise not_found(kind)
    return dict(row)


def create_row(conn: sa.Connection, tenant_id: str, kind: str, /, **fields: Any) -> dict[str, Any]:
    _check(kind, fields)
    t = _table(kind)
    try:
        with conn.begin_nested():
            row_id = conn.execute(sa.insert(t).values(tenant_id=tenant_id, **fields).returning(t.c.id)).scalar_one()
    except sa.exc.IntegrityError:
        raise _taken(kind, fields.get("name")) from None
    return get_row(conn, tenant_id, kind, row_id)


def update_row(conn: sa.Connection, tenant_id: str, kind: str, row_id: int, /, **fields: Any) -> dict[str, Any]:
    """Set the fields given. A printer's status: not while it prints (409)."""
    _check(kind, fields)
    t = _table(kind)
    current = get_row(conn, tenant_id, kind, row_id)
    if not fields:
        return current
    where = [t.c.tenant_id == tenant_id, t.c.id == row_id]
    if kind == "printer" and "status" in fields:
        where.append(t.c.status != "printing")
    try:
        with conn.begin_nested():
            changed = conn.execute(sa.update(t).where(*where).values(updated_at=now_utc(), **fields)).rowcount
    except sa.exc.IntegrityError:
        raise _taken(kind, fields.get("name")) from None
    if changed != 1:
        raise StudioError(409, "printer-printing", f"Printer {current['name']!r} is printing a job: finish or fail "
                          "that job first.")
    return get_row(conn, tenant_id, kind, row_id)


def _check(kind: str, fields: dict[str, Any]) -> None:
    if fields.get("profile") is not None:
        try:
            profile_path(fields["profile"], PROFILE_DEFAULT[kind])
        except CatalogError as exc:
            raise StudioError(422, "unknown-profile", str(exc)) from None


def _taken(kind: str, name: str | None) -> StudioError:
    return StudioError(409, f"{kind}-name-taken", f"This studio already has a {kind} named {name!r}.")
