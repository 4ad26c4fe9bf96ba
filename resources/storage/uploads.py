"""What every upload passes before it is stored: a size limit and a content-type check, per bucket.

One function, :func:`check_upload`, for every upload route (attachments, a client's 3D models,
settings files), so the rules live in one place and in the settings
(``STOREHOUSE_STORAGE_MAX_UPLOAD_BYTES``, ``STOREHOUSE_STORAGE_ALLOWED_TYPES``). It raises plain
exceptions; ``api/problems.py`` answers :class:`TooLarge` with 413 and :class:`UnsupportedType`
with 415.

The declared type is not trusted where checking is cheap: PDF, PNG, JPEG, GIF, WebP and 3MF (a
ZIP) must start with their magic numbers, and text kinds (plain, CSV, JSON) must hold no NUL byte.
A missing or generic type (``application/octet-stream``, what browsers send for ``.stl``) is
read from the bytes, then from the file name's extension. STL and OBJ have no magic number: the
slicing helper, which parses them anyway, is their real check.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from resources.storage import ATTACHMENTS, LOGO_TYPES, ORDER_FILES, PDFS, TMP, StorageError, check_bucket

if TYPE_CHECKING:
    from resources.storage.settings import StorageSettings

MiB = 1024 * 1024
MODELS = ("model/stl", "model/3mf", "model/obj")
SLICER_SETTINGS = ("application/json", "text/plain")  # slicer profiles: .json, .ini
DEFAULT_MAX_UPLOAD_BYTES = {ATTACHMENTS: 25 * MiB, PDFS: 20 * MiB, TMP: 100 * MiB, ORDER_FILES: 100 * MiB}
DEFAULT_ALLOWED_TYPES = {
    ATTACHMENTS: ["application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "text/csv"],
    PDFS: ["application/pdf"],
    TMP: [*MODELS, *SLICER_SETTINGS],
    ORDER_FILES: [*MODELS, *SLICER_SETTINGS],
}

# Other names clients use for the same kinds; stored under the canonical one.
ALIASES = {
    "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf",
    "application/sla": "model/stl", "application/vnd.ms-pki.stl": "model/stl", "model/x.stl-ascii": "model/stl",
    "model/x.stl-binary": "model/stl", "application/x-stl": "model/stl",
    "application/vnd.ms-package.3dmanufacturing-3dmodel+xml": "model/3mf",
    "text/x-ini": "text/plain", "text/json": "application/json",
}
GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
EXTENSIONS = {
    ".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".txt": "text/plain", ".csv": "text/csv", ".ini": "text/plain", ".json": "application/json",
    ".stl": "model/stl", ".3mf": "model/3mf", ".obj": "model/obj", ".svg": "image/svg+xml",
}
# Where the kind must begin with one of these (PDF: anywhere in the first KiB, as readers allow).
MAGIC = {
    "application/pdf": (b"%PDF-",), "image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"), "model/3mf": (b"PK\x03\x04",),
}
TEXT = {"text/plain", "text/csv", "application/json"}


class UploadRefused(StorageError):
    """An upload the rules refuse; the message is safe to show the person who sent it."""


class TooLarge(UploadRefused):
    def __init__(self, bucket: str, size: int, limit: int) -> None:
        super().__init__(f"The file is {size} bytes; at most {limit} bytes are accepted here.")
        self.bucket, self.size, self.limit = bucket, size, limit


class UnsupportedType(UploadRefused):
    def __init__(self, bucket: str, content_type: str, allowed: list[str], reason: str) -> None:
        super().__init__(f"{reason} Accepted here: {', '.join(allowed)}.")
        self.bucket, self.content_type, self.allowed = bucket, content_type, allowed


def canonical_type(content_type: str | None) -> str:
    """``image/JPG; charset=x`` → ``image/jpeg``: lower case, no parameters, aliases resolved."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def sniff(data: bytes) -> str | None:
    """The kind the bytes themselves show, for the kinds with a magic number; else None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"%PDF-" in data[:1024]:
        return "application/pdf"
    return next((kind for kind, magics in MAGIC.items() if data.startswith(magics)), None)


def matches(content_type: str, data: bytes) -> bool:
    """Whether ``data`` can be of ``content_type`` as far as a cheap look can tell."""
    if content_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if content_type == "application/pdf":
        return b"%PDF-" in data[:1024]
    if content_type in MAGIC:
        return data.startswith(MAGIC[content_type])
    if content_type in TEXT:
        return b"\x00" not in data[:8192]
    if content_type == "image/svg+xml":  # XML text with an <svg> root near its start
        return b"\x00" not in data[:8192] and b"<svg" in data[:4096].lower()
    return True


def check_size(settings: StorageSettings, bucket: str, size: int) -> None:
    """:class:`TooLarge` when ``size`` bytes exceed the bucket's limit: callers with a declared
    ``Content-Length`` refuse before reading the body."""
    limit = settings.max_upload_bytes[check_bucket(bucket)]
    if size > limit:
        raise TooLarge(bucket, size, limit)


def check_upload(settings: StorageSettings, bucket: str, data: bytes, *, content_type: str | None,
                 filename: str | None = None) -> str:
    """The content type to store ``data`` under in ``bucket``, or :class:`TooLarge` /
    :class:`UnsupportedType`. ``content_type`` is what the client declared; ``filename`` its name
    (for the extension, when the declared type says nothing)."""
    check_size(settings, bucket, len(data))
    allowed = settings.allowed_types[bucket]
    declared = canonical_type(content_type)
    kind = declared
    if kind in GENERIC:
        extension = posixpath.splitext((filename or "").lower())[1]
        kind = sniff(data) or EXTENSIONS.get(extension, "")
    if not kind:
        raise UnsupportedType(bucket, declared, allowed, "The file's type could not be told from its name or content.")
    if kind not in allowed:
        raise UnsupportedType(bucket, kind, allowed, f"Files of type {kind} are not accepted here.")
    if not matches(kind, data):
        raise UnsupportedType(bucket, kind, allowed, f"The file's content is not {kind}.")
    return kind


MAX_LOGO_BYTES = MiB  # a studio's logo: printed a few centimetres wide, so more is waste in every PDF


def check_logo(settings: StorageSettings, data: bytes, *, content_type: str | None, filename: str | None = None) -> str:
    """:func:`check_upload` for a studio's logo (kept in :data:`ATTACHMENTS` under
    ``resources.storage.logo_key``): PNG, JPEG or SVG only, at most :data:`MAX_LOGO_BYTES` (or the
    bucket's own limit, if lower). SVG is accepted here and nowhere else in the bucket: the PDF
    renderer embeds it and fetches nothing it names."""
    limit = min(MAX_LOGO_BYTES, settings.max_upload_bytes[ATTACHMENTS])
    rules = settings.model_copy(update={"max_upload_bytes": {**settings.max_upload_bytes, ATTACHMENTS: limit},
                                        "allowed_types": {**settings.allowed_types, ATTACHMENTS: list(LOGO_TYPES)}})
    return check_upload(rules, ATTACHMENTS, data, content_type=content_type, filename=filename)
