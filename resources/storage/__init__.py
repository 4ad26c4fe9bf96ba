"""File storage (seed 002, "File Management & Storage"): one interface, two backends.

* ``local`` (:mod:`resources.storage.local`): the embedded default, a folder under
  ``STOREHOUSE_HOME``; downloads through links signed by us (HMAC, expiring) and served by the API
  (``GET /files/{bucket}/{key}``).
* ``s3`` (:mod:`resources.storage.s3`): any S3-compatible store (production), presigned URLs.

:func:`resources.storage.settings.storage_from_settings` picks one from ``STOREHOUSE_STORAGE_*``.

The seed's buckets and key conventions are :data:`BUCKETS` and the ``*_key`` helpers: every
caller builds keys through them, so both backends hold the same layout and no key ever carries
a client's raw file name (it is reduced to a safe, readable one by :func:`safe_filename`). Keys
are always prefixed by the tenant (``{tenant}/…``): one store serves every studio. Every backend
also checks each key it is given (:func:`check_key`), so a key built by hand cannot escape its
bucket either.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Protocol, runtime_checkable
from urllib.parse import quote

ATTACHMENTS, PDFS, TMP, ORDER_FILES = "attachments", "pdfs", "tmp", "order-files"
BUCKETS = (ATTACHMENTS, PDFS, TMP, ORDER_FILES)
MAX_KEY_BYTES = 1024  # S3's limit, kept by both backends so a key works on either
MAX_FILENAME_CHARS = 120
MAX_DOWNLOAD_NAME_CHARS = 200


class StorageError(Exception):
    """The store could not do what was asked (not found, refused, unreachable)."""


class NotFound(StorageError):
    pass


class InvalidKey(StorageError, ValueError):
    """A bucket or key that could name something outside the store (``..``, an absolute path, NUL…)."""


@runtime_checkable
class Storage(Protocol):
    """What every backend does. ``bucket`` is one of :data:`BUCKETS`; ``key`` a relative path."""

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Store (or replace) an object: the same call twice leaves the same object."""

    def get(self, bucket: str, key: str) -> bytes:
        """The object's bytes; :class:`NotFound` when absent."""

    def exists(self, bucket: str, key: str) -> bool: ...

    def delete(self, bucket: str, keys: list[str]) -> int:
        """Delete objects (absent ones are fine); how many existed."""

    def list(self, bucket: str, prefix: str = "") -> list[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, recursively, sorted by key."""

    def signed_url(self, bucket: str, key: str, *, expires_s: int, filename: str | None = None) -> str:
        """A download link that stops working after ``expires_s`` seconds; ``filename`` is the
        name the browser saves it under (default: the key's last part). Callers check that the
        person asking owns the file first, and pass ``StorageSettings.signed_url_expiry_s``."""


# -- keys ---------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^\w.\-]+")  # \w is Unicode: "Pièce_2.stl" stays readable
_RUNS = re.compile(r"_{2,}")


def safe_filename(name: str) -> str:
    """A client's file name reduced to one safe path segment that still reads like the original.

    Only the last part of any path is kept (browsers on Windows send ``C:\\…\\part.stl``); the
    text is NFC-normalised (one spelling per name on every filesystem); anything but letters,
    digits, ``.``, ``-`` and ``_`` becomes ``_`` (spaces, quotes, ``/``, control characters);
    leading dots go (no hidden files, no ``..``); the name is cut to :data:`MAX_FILENAME_CHARS`
    keeping its extension. Never empty: ``file`` when nothing is left.
    """
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", name or ""))[-1]
    cleaned = _RUNS.sub("_", _UNSAFE.sub("_", base)).replace("_.", ".").strip("._ -") or "file"
    return _shorten(cleaned, MAX_FILENAME_CHARS, strip="._-")


def _shorten(name: str, limit: int, strip: str) -> str:
    """``name`` cut to ``limit`` characters keeping its extension (up to 16 characters of it): a
    long "part….stl" stays an STL."""
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = ext[:16] if dot and stem else ""
    return name[:limit - len(ext) - 1].rstrip(strip) + ("." + ext if ext else "")


def _segment(value: object) -> str:
    """An id placed in a key (tenant, invoice, user, client): it must already be one safe segment."""
    text = str(value)
    if not text or safe_filename(text) != text:
        raise InvalidKey(f"{text!r} cannot be part of a storage key")
    return text


def check_bucket(bucket: str) -> str:
    if bucket not in BUCKETS:
        raise InvalidKey(f"unknown bucket {bucket!r}; one of {', '.join(BUCKETS)}")
    return bucket


def check_key(key: str) -> str:
    """``key`` if it is a relative path inside a bucket, else :class:`InvalidKey`: no absolute path,
    drive letter, backslash, empty or ``.``/``..`` segment, control character (NUL included), and at
    most :data:`MAX_KEY_BYTES` bytes of UTF-8."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("a storage key cannot be empty")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise InvalidKey("a storage key cannot contain control characters")
    if key.startswith("/") or "\\" in key or re.match(r"^[A-Za-z]:", key):
        raise InvalidKey("a storage key must be a relative path with '/' separators")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKey("a storage key cannot contain empty, '.' or '..' segments")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKey(f"a storage key is at most {MAX_KEY_BYTES} bytes")
    return key


def attachment_key(tenant_id: str, invoice_id: int, filename: str) -> str:
    """``{tenant}/{invoiceId}/{filename}``: the same name on the same invoice replaces the file."""
    return f"{_segment(tenant_id)}/{_segment(invoice_id)}/{safe_filename(filename)}"


def pdf_key(tenant_id: str, kind: str, number: str) -> str:
    """``{tenant}/{kind}-{number}.pdf`` (``quote-Q-0007.pdf``), the seed's PDF name."""
    return f"{_segment(tenant_id)}/{safe_filename(f'{kind}-{number}.pdf')}"


LOGO_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}


def logo_key(tenant_id: str, content_type: str) -> str:
    """``{tenant}/business/logo.{png|jpg|svg}`` in :data:`ATTACHMENTS`: the studio's own file, not an
    invoice's (no invoice id is a word, so it never meets an ``attachment_key``)."""
    if content_type not in LOGO_TYPES:
        raise InvalidKey(f"a logo is PNG, JPG or SVG, not {content_type!r}")
    return f"{_segment(tenant_id)}/business/logo.{LOGO_TYPES[content_type]}"


def tmp_key(tenant_id: str, user_id: str, filename: str) -> str:
    """``{tenant}/{userId}/{uuid}/{filename}``: a fresh folder per upload, so names never collide."""
    return f"{_segment(tenant_id)}/{_segment(user_id)}/{uuid.uuid4()}/{safe_filename(filename)}"


def order_file_key(tenant_id: str, client_id: int, filename: str) -> str:
    """``{tenant}/{clientId}/{uuid}/{filename}``."""
    return f"{_segment(tenant_id)}/{_segment(client_id)}/{uuid.uuid4()}/{safe_filename(filename)}"


def download_name(filename: str) -> str:
    """The name a browser saves a download under: the client's own name, less any path and any
    character that is not printable (CR/LF could split a header), never empty or hidden."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", filename or ""))[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".").strip()
    return _shorten(base, MAX_DOWNLOAD_NAME_CHARS, strip=" .") or "file"


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """A ``Content-Disposition`` value that every browser reads and no name can break: an ASCII
    ``filename=`` fallback beside the exact UTF-8 ``filename*=`` (RFC 6266, RFC 8187)."""
    name = download_name(filename)
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = re.sub(r'["\\%]', "_", fallback).strip() or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


__all__ = [
    "ATTACHMENTS", "BUCKETS", "InvalidKey", "LOGO_TYPES", "NotFound", "ORDER_FILES", "PDFS", "Storage",
    "StorageError", "TMP", "attachment_key", "check_bucket", "check_key", "content_disposition", "download_name",
    "logo_key", "order_file_key", "pdf_key", "safe_filename", "tmp_key",
]
