"""Quick orders (issue 14, "Price and order"): sliced models become one draft quote of the studio's
documents, one line per model priced by ``pricing``, and the models become the client's permanent
order files, ordered on that quote.

One transaction makes the quote (its number included), keeps each model as an order file (row,
then object) and marks each tmp file ``ordered`` in its metadata (``{"quoteId", "orderFileId",
"clientId", "at"}``), so housekeeping never deletes a model that became an order, and a model is
ordered once: a second order of it is refused (409). If anything fails, the transaction rolls back
and the objects it put are deleted. With an ``Idempotency-Key`` a retry finds the first quote
(``studio.idempotency``) before anything is priced again.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from resources.storage import TMP, NotFound, Storage
from resources.storage.settings import StorageSettings
from studio import files as order_files
from studio.activity import Actor, log_activity
from studio.db import locked, writing
from studio.documents import live_client
from studio.errors import StudioError
from studio.files import Caller
from studio.idempotency import Created, create_once
from studio.quotes import create_quote
from studio.slicing import catalog, pricing
from warehouse.tables.people import user_tenant_permissions
from warehouse.tables.studio import studio_quotes
from warehouse.tables.studio_print import studio_tmp_files as tmp_files
from warehouse.types import now_utc

T = tmp_files.c


def ordered(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The order a tmp file became (``None``: not ordered, housekeeping may delete it)."""
    return (metadata or {}).get("ordered")


def quick_order(engine: sa.Engine, storage: Storage, settings: StorageSettings, tenant_id: str, client_id: int,
                items: list[dict[str, Any]], caller: Caller, *, template_id: int | None = None, rush: bool = False,
                notes: str | None = None, owner: str | None = None, key: str | None = None) -> Created:
    """The draft quote of ``items`` (``{"file_id", "quantity"}``) for the client; ``owner``: only
    files that user uploaded (a client orders their own). Refusals: 404 (no such file, client,
    template, printer or material here), 409 (not sliced, or ordered already), 422 (a file twice)."""
    ids = [int(i["file_id"]) for i in items]
    if len(set(ids)) != len(ids):
        raise StudioError(422, "duplicate-file", "Each model appears once; give it a quantity instead.")
    body = {"client_id": client_id, "items": items, "template_id": template_id, "rush": rush, "notes": notes}

    def create(once: dict[str, str]) -> int:
        with engine.connect() as conn:  # an unknown client is named as such, before any file is looked at
            live_client(conn, tenant_id, client_id)
        lines = _priced(engine, tenant_id, items, template_id, rush, owner)
        models = _models(engine, storage, tenant_id, client_id, lines)
        return _order(engine, storage, settings, tenant_id, client_id, caller, lines, models, notes, once)

    return create_once(engine, studio_quotes, tenant_id, key, body, create)


def _priced(engine: sa.Engine, tenant_id: str, items: list[dict[str, Any]], template_id: int | None, rush: bool,
            owner: str | None) -> list[dict[str, Any]]:
    try:
        return pricing.quick_order_lines(engine, tenant_id, items, template_id=template_id, rush=rush, owner=owner)
    except catalog.CatalogError as exc:
        raise StudioError(404, "not-found", str(exc)) from None
    except pricing.NotSliced as exc:
        raise StudioError(409, "not-sliced", str(exc)) from None


def _models(engine: sa.Engine, storage: Storage, tenant_id: str, client_id: int, lines: list[dict[str, Any]]
            ) -> list[tuple]:
    """``(row, bytes)`` of each line's model, read before the transaction (storage is slow). A
    model another client of the studio uploaded is not this client's to order (404, as if absent):
    staff order their own uploads or the client's."""
    g = user_tenant_permissions.c
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(T.id, T.storage_key, T.filename, T.mime_type, T.user_id).where(
            T.tenant_id == tenant_id, T.id.in_([line["tmp_file_id"] for line in lines])))}
        clients = dict(conn.execute(sa.select(g.user_id, g.customer_id).where(
            g.tenant_id == tenant_id, g.customer_id.is_not(None), g.user_id.in_({r.user_id for r in rows.values()}))
        ).all())
    for row in rows.values():
        if row.user_id in clients and clients[row.user_id] != str(client_id):
            raise StudioError(404, "not-found", f"no file {row.id}")
    models = []
    for line in lines:
        row = rows[line["tmp_file_id"]]
        try:
            models.append((row, storage.get(TMP, row.storage_key)))
        except NotFound:
            raise StudioError(409, "model-gone", f"{row.filename} is no longer stored; upload it again.") from None
    return models


def _order(engine: sa.Engine, storage: Storage, settings: StorageSettings, tenant_id: str, client_id: int,
           caller: Caller, lines: list[dict[str, Any]], models: list[tuple], notes: str | None,
           once: dict[str, str]) -> int:
    actor, stored = Actor(caller.kind, caller.user_id), []
    try:
        with writing(engine) as conn:
            quote_id = create_quote(conn, tenant_id, client_id, [
                {"description": line["description"], "quantity": line["quantity"], "unit_price": line["unit_price"],
                 "discount_percent": 0, "tax_rate": None} for line in lines], actor, notes=notes, once=once)
            for line, (row, data) in zip(lines, models):
                kept, key = order_files.keep_order_file(conn, storage, settings, tenant_id, client_id, caller,
                                                        row.filename, data, row.mime_type, quote_id=quote_id)
                if key is not None:
                    stored.append(key)
                _mark(conn, tenant_id, row.id, row.filename, {"quoteId": quote_id, "orderFileId": kept["id"],
                                                              "clientId": client_id})
            log_activity(conn, tenant_id, "quote", quote_id, "quick_order", actor,
                         tmp_file_ids=[r.id for r, _ in models], breakdowns=[line["breakdown"] for line in lines])
    except BaseException:
        for key in stored:
            order_files.undo_order_file(storage, key)
        raise
    return quote_id


def _mark(conn: sa.Connection, tenant_id: str, file_id: int, filename: str, order: dict[str, Any]) -> None:
    """Mark the tmp file ordered, once: a file ordered already (by a concurrent order too) is a 409."""
    row = conn.execute(locked(conn, sa.select(T.metadata, T.status).where(T.tenant_id == tenant_id, T.id == file_id))
                       ).one()
    if ordered(row.metadata) is not None:
        raise StudioError(409, "already-ordered", f"{filename} is on quote {ordered(row.metadata)['quoteId']} already.")
    if row.status != "completed":
        raise StudioError(409, "not-sliced", f"{filename} is being sliced again; order it once that is done.")
    meta = {**row.metadata, "ordered": {**order, "at": now_utc().isoformat()}}
    conn.execute(sa.update(tmp_files).where(T.tenant_id == tenant_id, T.id == file_id)
                 .values(metadata=meta, updated_at=now_utc()))
