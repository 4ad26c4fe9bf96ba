"""File storage (seed 002, "File Management & Storage"): one interface, two backends.

* ``local``: the embedded default, a folder under ``STOREHOUSE_HOME``; downloads through links
  signed by us (HMAC, expiring) and served by the API.
* ``s3``: any S3-compatible store (production), presigned URLs.

The seed's buckets and key conventions are :data:`BUCKETS` and the ``*_key`` helpers: every
caller builds keys through them, so both backends hold the same layout. Keys are always
prefixed by the tenant (``{tenant}/…``): one store serves every studio.
"""

from __future__ import annotations

import uuid
from typing import Protocol, runtime_checkable

ATTACHMENTS, PDFS, TMP, ORDER_FILES = "attachments", "pdfs", "tmp", "order-files"
BUCKETS = (ATTACHMENTS, PDFS, TMP, ORDER_FILES)


class StorageError(Exception):
    """The store could not do what was asked (not found, refused, unreachable)."""


class NotFound(StorageError):
    pass


@runtime_checkable
class Storage(Protocol):
    """What every backend does. ``bucket`` is one of :data:`BUCKETS`; ``key`` a relative path."""

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Store (or replace) an object."""

    def get(self, bucket: str, key: str) -> bytes:
        """The object's bytes; :class:`NotFound` when absent."""

    def exists(self, bucket: str, key: str) -> bool: ...

    def delete(self, bucket: str, keys: list[str]) -> int:
        """Delete objects (absent ones are fine); how many existed."""

    def list(self, bucket: str, prefix: str = "") -> list[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, recursively."""

    def signed_url(self, bucket: str, key: str, *, expires_s: int, filename: str | None = None) -> str:
        """A download link that stops working after ``expires_s`` seconds."""


def attachment_key(tenant_id: str, invoice_id: int, filename: str) -> str:
    return f"{tenant_id}/{invoice_id}/{filename}"


def pdf_key(tenant_id: str, kind: str, number: str) -> str:
    return f"{tenant_id}/{kind}-{number}.pdf"


def tmp_key(tenant_id: str, user_id: str, filename: str) -> str:
    return f"{tenant_id}/{user_id}/{uuid.uuid4()}/{filename}"


def order_file_key(tenant_id: str, client_id: int, filename: str) -> str:
    return f"{tenant_id}/{client_id}/{uuid.uuid4()}/{filename}"
