"""The studio's files (seed 002, "Invoice Attachments", "Order Files"): a file in storage and its
row in the warehouse, kept together.

* Attachments of an invoice live at the seed's key ``{tenant}/{invoiceId}/{filename}``, so the
  same name on the same invoice **replaces** the file (one row, updated; ``uq_studio_attachments_key``
  makes it one row under concurrent uploads too). Two names that reduce to the same safe name
  (``safe_filename``: "Spec sheet.pdf" and "Spec_sheet.pdf") are the same attachment.
* Order files of a client live at ``{tenant}/{clientId}/{uuid}/{filename}``; the same content
  under the same name for the same client is one order file (``sha256`` + name, unique): sending
  it again returns the one already kept and stores nothing.

Nothing is left behind: the row is written first, inside a transaction, then the object is put,
then the transaction commits. A refused or failing row write stores nothing; a failing put rolls
the row back; a failing commit deletes the new object, or puts a replaced attachment's previous
bytes back (they are read before it is overwritten). Deleting removes the row and the object in
one transaction: if the commit fails after the object went, the row stays and deleting again
finishes the job (deleting an absent object is fine), so no object is ever orphaned.

Every function is scoped to its tenant and checks ownership before it answers or issues a link:
a client (``Caller.client_id``) only ever reaches their own invoices (sent ones, never drafts)
and their own files; any other row, another tenant's included, is a 404, the same as a row that
does not exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from resources.storage import (
    ATTACHMENTS, ORDER_FILES, NotFound, Storage, attachment_key, download_name, order_file_key,
)
from resources.storage.settings import StorageSettings
from resources.storage.uploads import check_upload
from studio.activity import Actor, log_activity
from studio.db import locked, writing
from studio.errors import not_found
from warehouse.tables.studio import studio_attachments, studio_clients, studio_invoices, studio_order_files
from warehouse.types import now_utc

log = logging.getLogger(__name__)
MAX_NAME = 255  # the filename columns
NOBODY = 0  # no client has id 0: a caller who is no client of this studio matches nothing


@dataclass(frozen=True)
class Caller:
    """Who asks: the studio's staff (every client's files) or one client (only their own)."""

    kind: str  # "staff" or "client"
    user_id: str | None = None
    client_id: int | None = None  # a client's studio_clients.id (NOBODY when they are none)

    def __post_init__(self) -> None:
        if self.kind not in ("staff", "client"):
            raise ValueError(f"a caller is staff or client, not {self.kind!r}")
        if self.kind == "client" and self.client_id is None:
            raise ValueError("a client caller needs their client id (NOBODY when they are none)")

    @property
    def is_client(self) -> bool:
        return self.kind == "client"


# -- ownership --------------------------------------------------------------------------------------

def _invoice(conn: sa.Connection, tenant_id: str, invoice_id: int, caller: Caller) -> None:
    """Nothing when ``caller`` may see the invoice's files, else 404 (never 403: no existence leak)."""
    i = studio_invoices.c
    query = sa.select(i.id).where(i.tenant_id == tenant_id, i.id == invoice_id)
    if caller.is_client:
        query = query.where(i.client_id == caller.client_id, i.status != "draft")
    if conn.execute(query).first() is None:
        raise not_found("invoice")


def _client(conn: sa.Connection, tenant_id: str, client_id: int, caller: Caller) -> None:
    if caller.is_client and client_id != caller.client_id:
        raise not_found("client")
    c = studio_clients.c
    if conn.execute(sa.select(c.id).where(c.tenant_id == tenant_id, c.id == client_id)).first() is None:
        raise not_found("client")


def _stored_name(filename: str) -> str:
    return download_name(filename)[:MAX_NAME]


def _log(conn: sa.Connection, tenant_id: str, entity_type: str, entity_id: int, action: str, caller: Caller,
         **detail: Any) -> None:
    log_activity(conn, tenant_id, entity_type, entity_id, action, Actor(caller.kind, caller.user_id), **detail)


def _link(storage: Storage, settings: StorageSettings, bucket: str, key: str, filename: str) -> dict[str, Any]:
    expires_s = settings.signed_url_expiry_s
    expires_at = now_utc().replace(microsecond=0) + dt.timedelta(seconds=expires_s)
    return {"url": storage.signed_url(bucket, key, expires_s=expires_s, filename=filename), "expires_at": expires_at}


# -- attachments ------------------------------------------------------------------------------------

A = studio_attachments.c
ATTACHMENT_VIEW = (A.id, A.invoice_id, A.filename, A.content_type, A.size_bytes, A.uploaded_by, A.created_at)


def add_attachment(engine: sa.Engine, storage: Storage, settings: StorageSettings, tenant_id: str, invoice_id: int,
                   caller: Caller, filename: str, data: bytes, content_type: str | None) -> tuple[dict[str, Any], bool]:
    """Attach ``data`` to the invoice (staff only); ``(attachment, created)``, ``created`` False when
    it replaced the attachment of the same name. Refusals: 404 (no such invoice), 413/415 (the
    storage rules, ``check_upload``), before anything is written."""
    if caller.is_client:
        raise not_found("invoice")
    kind = check_upload(settings, ATTACHMENTS, data, content_type=content_type, filename=filename)
    key = attachment_key(tenant_id, invoice_id, filename)
    try:
        return _put_attachment(engine, storage, tenant_id, invoice_id, caller, filename, key, data, kind)
    except sa.exc.IntegrityError:  # a concurrent first upload of this name won: replace what it stored
        return _put_attachment(engine, storage, tenant_id, invoice_id, caller, filename, key, data, kind)


def _put_attachment(engine: sa.Engine, storage: Storage, tenant_id: str, invoice_id: int, caller: Caller,
                    filename: str, key: str, data: bytes, kind: str) -> tuple[dict[str, Any], bool]:
    values = dict(filename=_stored_name(filename), content_type=kind, size_bytes=len(data), uploaded_by=caller.user_id)
    stored, previous = False, None
    try:
        with writing(engine) as conn:
            _invoice(conn, tenant_id, invoice_id, caller)
            existing = conn.execute(locked(conn, sa.select(A.id, A.content_type).where(
                A.tenant_id == tenant_id, A.storage_key == key))).first()
            if existing is None:
                att_id = conn.execute(sa.insert(studio_attachments).values(
                    tenant_id=tenant_id, invoice_id=invoice_id, storage_key=key, **values).returning(A.id)).scalar_one()
            else:
                att_id = existing.id
                conn.execute(sa.update(studio_attachments).where(A.id == att_id).values(**values))
                previous = _previous(storage, key, existing.content_type)
            action = "attachment_added" if existing is None else "attachment_replaced"
            _log(conn, tenant_id, "invoice", invoice_id, action, caller, attachment_id=att_id,
                 filename=values["filename"], size_bytes=len(data), content_type=kind)
            storage.put(ATTACHMENTS, key, data, kind)  # inside the transaction: a failed put rolls the row back
            stored = True
            row = conn.execute(sa.select(*ATTACHMENT_VIEW).where(A.id == att_id)).mappings().one()
    except BaseException:
        if stored:
            _undo_put(storage, ATTACHMENTS, key, previous)
        raise
    return dict(row), existing is None


def _previous(storage: Storage, key: str, content_type: str) -> tuple[bytes, str] | None:
    """The bytes an upload is about to replace, to put back if its transaction fails."""
    try:
        return storage.get(ATTACHMENTS, key), content_type
    except NotFound:
        return None


def _undo_put(storage: Storage, bucket: str, key: str, previous: tuple[bytes, str] | None) -> None:
    """After a put whose row did not commit: the previous object back, or none at all."""
    try:
        if previous is None:
            storage.delete(bucket, [key])
        else:
            storage.put(bucket, key, *previous)
    except Exception:  # the original failure is what the caller must see; this one is logged
        log.exception("could not undo the upload of %s/%s after its row failed", bucket, key)


def list_attachments(conn: sa.Connection, tenant_id: str, invoice_id: int, caller: Caller) -> list[dict[str, Any]]:
    """The invoice's attachments, oldest first."""
    _invoice(conn, tenant_id, invoice_id, caller)
    rows = conn.execute(sa.select(*ATTACHMENT_VIEW).where(A.tenant_id == tenant_id, A.invoice_id == invoice_id)
                        .order_by(A.id)).mappings()
    return [dict(r) for r in rows]


def _attachment(conn: sa.Connection, tenant_id: str, invoice_id: int, attachment_id: int, caller: Caller,
                lock: bool = False) -> sa.Row:
    _invoice(conn, tenant_id, invoice_id, caller)
    query = sa.select(A.id, A.storage_key, A.filename).where(
        A.tenant_id == tenant_id, A.invoice_id == invoice_id, A.id == attachment_id)
    found = conn.execute(locked(conn, query) if lock else query).first()
    if found is None:
        raise not_found("attachment")
    return found


def attachment_link(conn: sa.Connection, storage: Storage, settings: StorageSettings, tenant_id: str,
                    invoice_id: int, attachment_id: int, caller: Caller) -> dict[str, Any]:
    """``{url, expires_at}``: a download link for the attachment, issued once ownership is checked."""
    found = _attachment(conn, tenant_id, invoice_id, attachment_id, caller)
    return _link(storage, settings, ATTACHMENTS, found.storage_key, found.filename)


def delete_attachment(engine: sa.Engine, storage: Storage, tenant_id: str, invoice_id: int, attachment_id: int,
                      caller: Caller) -> None:
    """Remove the attachment: its row and its object (staff only)."""
    if caller.is_client:
        raise not_found("attachment")
    with writing(engine) as conn:
        found = _attachment(conn, tenant_id, invoice_id, attachment_id, caller, lock=True)
        conn.execute(sa.delete(studio_attachments).where(A.id == found.id))
        _log(conn, tenant_id, "invoice", invoice_id, "attachment_deleted", caller, attachment_id=found.id,
             filename=found.filename)
        storage.delete(ATTACHMENTS, [found.storage_key])


# -- order files --------------------------------------------------------------------------------------

O = studio_order_files.c
ORDER_FILE_VIEW = (O.id, O.client_id, O.quote_id, O.filename, O.content_type, O.size_bytes, O.sha256, O.created_at)


def add_order_file(engine: sa.Engine, storage: Storage, settings: StorageSettings, tenant_id: str, client_id: int,
                   caller: Caller, filename: str, data: bytes, content_type: str | None) -> tuple[dict[str, Any], bool]:
    """Keep a 3D model (or its settings) for the client (staff only); ``(file, created)``, ``created``
    False when the client already has this content under this name (nothing stored again)."""
    if caller.is_client:
        raise not_found("client")
    kind = check_upload(settings, ORDER_FILES, data, content_type=content_type, filename=filename)
    name, digest = _stored_name(filename), hashlib.sha256(data).hexdigest()
    try:
        return _put_order_file(engine, storage, tenant_id, client_id, caller, filename, name, digest, data, kind)
    except sa.exc.IntegrityError:  # the same file sent twice at once: the other one is kept
        return _put_order_file(engine, storage, tenant_id, client_id, caller, filename, name, digest, data, kind)


def _put_order_file(engine: sa.Engine, storage: Storage, tenant_id: str, client_id: int, caller: Caller,
                    filename: str, name: str, digest: str, data: bytes, kind: str) -> tuple[dict[str, Any], bool]:
    mine = (O.tenant_id == tenant_id, O.client_id == client_id)
    stored, key = False, order_file_key(tenant_id, client_id, filename)
    try:
        with writing(engine) as conn:
            _client(conn, tenant_id, client_id, caller)
            kept = conn.execute(sa.select(*ORDER_FILE_VIEW).where(*mine, O.sha256 == digest, O.filename == name)
                                ).mappings().first()
            if kept is not None:
                return dict(kept), False
            file_id = conn.execute(sa.insert(studio_order_files).values(
                tenant_id=tenant_id, client_id=client_id, filename=name, storage_key=key, content_type=kind,
                size_bytes=len(data), sha256=digest).returning(O.id)).scalar_one()
            _log(conn, tenant_id, "client", client_id, "order_file_added", caller, order_file_id=file_id,
                 filename=name, size_bytes=len(data), sha256=digest)
            storage.put(ORDER_FILES, key, data, kind)
            stored = True
            row = conn.execute(sa.select(*ORDER_FILE_VIEW).where(O.id == file_id)).mappings().one()
    except BaseException:
        if stored:
            _undo_put(storage, ORDER_FILES, key, None)
        raise
    return dict(row), True


def keep_order_file(conn: sa.Connection, storage: Storage, settings: StorageSettings, tenant_id: str,
                    client_id: int, caller: Caller, filename: str, data: bytes, content_type: str | None, *,
                    quote_id: int | None = None) -> tuple[dict[str, Any], str | None]:
    """Inside the caller's write transaction (a quick order's, beside its quote): keep ``data`` as
    the client's order file, ordered on ``quote_id``; a client may keep files only for themselves.
    ``(file, stored_key)``: the key just put, which the caller deletes if its transaction then fails
    (``undo_order_file``); None when the client already had this content under this name (kept as it was)."""
    _client(conn, tenant_id, client_id, caller)
    kind = check_upload(settings, ORDER_FILES, data, content_type=content_type, filename=filename)
    name, digest = _stored_name(filename), hashlib.sha256(data).hexdigest()
    kept = conn.execute(sa.select(*ORDER_FILE_VIEW).where(
        O.tenant_id == tenant_id, O.client_id == client_id, O.sha256 == digest, O.filename == name)).mappings().first()
    if kept is not None:
        return dict(kept), None
    key = order_file_key(tenant_id, client_id, filename)
    file_id = conn.execute(sa.insert(studio_order_files).values(
        tenant_id=tenant_id, client_id=client_id, quote_id=quote_id, filename=name, storage_key=key, content_type=kind,
        size_bytes=len(data), sha256=digest).returning(O.id)).scalar_one()
    _log(conn, tenant_id, "client", client_id, "order_file_added", caller, order_file_id=file_id, filename=name,
         size_bytes=len(data), sha256=digest, quote_id=quote_id)
    storage.put(ORDER_FILES, key, data, kind)
    return dict(conn.execute(sa.select(*ORDER_FILE_VIEW).where(O.id == file_id)).mappings().one()), key


def undo_order_file(storage: Storage, key: str) -> None:
    """Delete an order file's object whose row did not commit (``keep_order_file``)."""
    _undo_put(storage, ORDER_FILES, key, None)


def list_order_files(conn: sa.Connection, tenant_id: str, client_id: int, caller: Caller) -> list[dict[str, Any]]:
    """The client's order files, oldest first."""
    _client(conn, tenant_id, client_id, caller)
    rows = conn.execute(sa.select(*ORDER_FILE_VIEW).where(O.tenant_id == tenant_id, O.client_id == client_id)
                        .order_by(O.id)).mappings()
    return [dict(r) for r in rows]


def _order_file(conn: sa.Connection, tenant_id: str, client_id: int, file_id: int, caller: Caller,
                lock: bool = False) -> sa.Row:
    _client(conn, tenant_id, client_id, caller)
    query = sa.select(O.id, O.storage_key, O.filename).where(
        O.tenant_id == tenant_id, O.client_id == client_id, O.id == file_id)
    found = conn.execute(locked(conn, query) if lock else query).first()
    if found is None:
        raise not_found("order-file")
    return found


def order_file_link(conn: sa.Connection, storage: Storage, settings: StorageSettings, tenant_id: str, client_id: int,
                    file_id: int, caller: Caller) -> dict[str, Any]:
    """``{url, expires_at}`` for the client's order file, issued once ownership is checked."""
    found = _order_file(conn, tenant_id, client_id, file_id, caller)
    return _link(storage, settings, ORDER_FILES, found.storage_key, found.filename)


def delete_order_file(engine: sa.Engine, storage: Storage, tenant_id: str, client_id: int, file_id: int,
                      caller: Caller) -> None:
    """Remove the order file: its row and its object (staff only)."""
    if caller.is_client:
        raise not_found("order-file")
    with writing(engine) as conn:
        found = _order_file(conn, tenant_id, client_id, file_id, caller, lock=True)
        conn.execute(sa.delete(studio_order_files).where(O.id == found.id))
        _log(conn, tenant_id, "client", client_id, "order_file_deleted", caller, order_file_id=found.id,
             filename=found.filename)
        storage.delete(ORDER_FILES, [found.storage_key])
