"""The studio's files (seed 002, "Invoice Attachments", "Order Files"): staff attach files to
invoices and keep clients' order files; a client, through the portal, lists and downloads the
files of their own invoices and their own order files.

Uploads are ``multipart/form-data`` with one part ``file`` (what a browser form sends), up to the
bucket's ``max_upload_bytes`` (``api/uploads.py`` lifts the app's 64 KiB body limit for these
routes only). Downloads are never served here: a route answers ``{url, expires_at}``, a signed
link (``GET /files/…`` on the local backend, presigned on S3) that works for
``STOREHOUSE_STORAGE_SIGNED_URL_EXPIRY_S`` seconds, issued only after ownership is checked.

Staff need ``studio.manage`` to upload and delete, ``studio.view`` to list and download; the portal
needs ``studio.portal`` and the grant's ``customer_id`` (the client's ``studio_clients.id``). A row
the caller may not see, another tenant's or another client's, is a 404 like a missing one.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import EngineDep, STUDIO_ONLY, StorageDep, StorageSettingsDep
from api.problems import problem_responses
from api.staff import STAFF_RESPONSES, ReadConn, require
from api.uploads import MULTIPART_BODY, form_file, uploads_to
from people.auth import Access
from resources.storage import ATTACHMENTS, ORDER_FILES
from studio import files
from studio.files import NOBODY, Caller

router = APIRouter(prefix="/studios/{tenant}", tags=["studio: files"], dependencies=STUDIO_ONLY)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Viewer = Annotated[Access, Depends(require("studio.view"))]
Manager = Annotated[Access, Depends(require("studio.manage"))]
Portal = Annotated[Access, Depends(require("studio.portal"))]
UPLOADS = {**STAFF_RESPONSES, **problem_responses((413, "The file is larger than this kind of file may be"),
                                                  (415, "This type of file is not accepted here"))}
UPLOAD_ROUTE = dict(status_code=201, openapi_extra=MULTIPART_BODY)


class AttachmentView(BaseModel):
    id: int
    invoice_id: int
    filename: str
    content_type: str
    size_bytes: int
    uploaded_by: str | None
    created_at: dt.datetime


class OrderFileView(BaseModel):
    id: int
    client_id: int
    quote_id: int | None
    filename: str
    content_type: str
    size_bytes: int
    sha256: str | None
    created_at: dt.datetime


class Link(BaseModel):
    url: str
    expires_at: dt.datetime


def staff(access: Access) -> Caller:
    return Caller("staff", access.principal.user_id)


def client(access: Access) -> Caller:
    """The portal's caller: their client id in this studio (``NOBODY`` when they are none)."""
    found = access.customer_id
    ok = found is not None and found.isascii() and found.isdigit() and 0 < int(found) < 2**63
    return Caller("client", access.principal.user_id, int(found) if ok else NOBODY)


# -- staff: invoice attachments ----------------------------------------------------------------------

@router.post("/invoices/{invoice_id}/attachments", response_model=AttachmentView, **UPLOAD_ROUTE,
             responses={**UPLOADS, 200: {"model": AttachmentView, "description": "Replaced the file of that name"}})
@uploads_to(ATTACHMENTS)
async def upload_attachment(invoice_id: Id, access: Manager, engine: EngineDep, storage: StorageDep,
                            settings: StorageSettingsDep, request: Request, response: Response) -> dict:
    """Attach a file (PDF, image, text, CSV) to the invoice. The same name again replaces it (200)."""
    name, data, declared = await form_file(request, settings, ATTACHMENTS)
    found, created = await run_in_threadpool(files.add_attachment, engine, storage, settings, access.tenant_id,
                                             invoice_id, staff(access), name, data, declared)
    response.status_code = 201 if created else 200
    return found


@router.get("/invoices/{invoice_id}/attachments", response_model=list[AttachmentView], responses=STAFF_RESPONSES)
def list_attachments(invoice_id: Id, access: Viewer, conn: ReadConn) -> list[dict]:
    return files.list_attachments(conn, access.tenant_id, invoice_id, staff(access))


@router.get("/invoices/{invoice_id}/attachments/{attachment_id}/url", response_model=Link, responses=STAFF_RESPONSES)
def attachment_url(invoice_id: Id, attachment_id: Id, access: Viewer, conn: ReadConn, storage: StorageDep,
                   settings: StorageSettingsDep) -> dict:
    """A download link for the attachment, valid for the configured 60–300 s."""
    return files.attachment_link(conn, storage, settings, access.tenant_id, invoice_id, attachment_id, staff(access))


@router.delete("/invoices/{invoice_id}/attachments/{attachment_id}", status_code=204, responses=STAFF_RESPONSES)
def delete_attachment(invoice_id: Id, attachment_id: Id, access: Manager, engine: EngineDep,
                      storage: StorageDep) -> Response:
    files.delete_attachment(engine, storage, access.tenant_id, invoice_id, attachment_id, staff(access))
    return Response(status_code=204)


# -- staff: a client's order files ---------------------------------------------------------------------

@router.post("/clients/{client_id}/files", response_model=OrderFileView, **UPLOAD_ROUTE,
             responses={**UPLOADS, 200: {"model": OrderFileView, "description": "The client has this file already"}})
@uploads_to(ORDER_FILES)
async def upload_order_file(client_id: Id, access: Manager, engine: EngineDep, storage: StorageDep,
                            settings: StorageSettingsDep, request: Request, response: Response) -> dict:
    """Keep a client's 3D model (STL, 3MF, OBJ) or print settings; the same file again is kept once (200)."""
    name, data, declared = await form_file(request, settings, ORDER_FILES)
    found, created = await run_in_threadpool(files.add_order_file, engine, storage, settings, access.tenant_id,
                                             client_id, staff(access), name, data, declared)
    response.status_code = 201 if created else 200
    return found


@router.get("/clients/{client_id}/files", response_model=list[OrderFileView], responses=STAFF_RESPONSES)
def list_order_files(client_id: Id, access: Viewer, conn: ReadConn) -> list[dict]:
    return files.list_order_files(conn, access.tenant_id, client_id, staff(access))


@router.get("/clients/{client_id}/files/{file_id}/url", response_model=Link, responses=STAFF_RESPONSES)
def order_file_url(client_id: Id, file_id: Id, access: Viewer, conn: ReadConn, storage: StorageDep,
                   settings: StorageSettingsDep) -> dict:
    return files.order_file_link(conn, storage, settings, access.tenant_id, client_id, file_id, staff(access))


@router.delete("/clients/{client_id}/files/{file_id}", status_code=204, responses=STAFF_RESPONSES)
def delete_order_file(client_id: Id, file_id: Id, access: Manager, engine: EngineDep, storage: StorageDep) -> Response:
    files.delete_order_file(engine, storage, access.tenant_id, client_id, file_id, staff(access))
    return Response(status_code=204)


# -- the client portal -------------------------------------------------------------------------------------

@router.get("/portal/invoices/{invoice_id}/attachments", response_model=list[AttachmentView],
            responses=STAFF_RESPONSES)
def my_attachments(invoice_id: Id, access: Portal, conn: ReadConn) -> list[dict]:
    """The files attached to one of my invoices."""
    return files.list_attachments(conn, access.tenant_id, invoice_id, client(access))


@router.get("/portal/invoices/{invoice_id}/attachments/{attachment_id}/url", response_model=Link,
            responses=STAFF_RESPONSES)
def my_attachment_url(invoice_id: Id, attachment_id: Id, access: Portal, conn: ReadConn, storage: StorageDep,
                      settings: StorageSettingsDep) -> dict:
    return files.attachment_link(conn, storage, settings, access.tenant_id, invoice_id, attachment_id, client(access))


@router.get("/portal/files", response_model=list[OrderFileView], responses=STAFF_RESPONSES)
def my_order_files(access: Portal, conn: ReadConn) -> list[dict]:
    """My order files (none when I am no client of this studio)."""
    caller = client(access)
    if caller.client_id == NOBODY:
        return []
    return files.list_order_files(conn, access.tenant_id, caller.client_id, caller)


@router.get("/portal/files/{file_id}/url", response_model=Link, responses=STAFF_RESPONSES)
def my_order_file_url(file_id: Id, access: Portal, conn: ReadConn, storage: StorageDep,
                      settings: StorageSettingsDep) -> dict:
    caller = client(access)
    return files.order_file_link(conn, storage, settings, access.tenant_id, caller.client_id, file_id, caller)
