"""File uploads past the app's body limit, on the routes that take files and on no other.

The app caps every request body at ``max_body_bytes`` (64 KiB) in ``BodyLimitMiddleware``, before
routing. A route that takes a file declares the storage bucket it fills (``@uploads_to(bucket)``);
``route_body_limits`` turns those declarations into the middleware's per-route limits: that
bucket's ``max_upload_bytes`` plus ``FORM_OVERHEAD`` for the multipart envelope, for that route's
path and methods only. The middleware refuses a larger declared ``Content-Length`` before reading
a byte and stops a larger stream as it passes the limit (413 either way); ``read_upload`` then
holds the file itself to the bucket's exact limit (413 ``file-too-large``).

An upload route reads its form itself (``form_file``), in its body, rather than declaring a
``File`` parameter: FastAPI reads declared bodies before it runs a route's dependencies, so a
caller without the permission could make it spool a whole file first. Read here, the form is read
only once the route's authorisation passed. ``MULTIPART_BODY`` documents it in the OpenAPI document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from fastapi import Request, UploadFile
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile as FormFile

from api.problems import Problem

from resources.storage import check_bucket
from resources.storage.settings import StorageSettings
from resources.storage.uploads import check_size

FORM_OVERHEAD = 64 * 1024  # boundaries, part headers and the file's name around the file's bytes
CHUNK = 1024 * 1024
F = TypeVar("F", bound=Callable[..., Any])
MULTIPART_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "the file, with its name"}}}}}}}


def uploads_to(bucket: str) -> Callable[[F], F]:
    """Mark a route's endpoint as taking a file for ``bucket`` (its body limit follows the bucket's)."""
    check_bucket(bucket)

    def mark(endpoint: F) -> F:
        endpoint.upload_bucket = bucket  # type: ignore[attr-defined]
        return endpoint

    return mark


def body_up_to(max_bytes: int) -> Callable[[F], F]:
    """Mark a route's endpoint as taking a raw body (not a form) of at most ``max_bytes`` (the logo)."""

    def mark(endpoint: F) -> F:
        endpoint.upload_max_bytes = max_bytes  # type: ignore[attr-defined]
        return endpoint

    return mark


def route_body_limits(routes: Iterable[Any], settings: StorageSettings) -> list[tuple[re.Pattern, frozenset[str], int]]:
    """``(path pattern, methods, limit)`` of every upload route, for ``BodyLimitMiddleware``."""
    limits = []
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        if bucket := getattr(route.endpoint, "upload_bucket", None):
            limits.append((route.path_regex, frozenset(route.methods), settings.max_upload_bytes[bucket] + FORM_OVERHEAD))
        elif raw := getattr(route.endpoint, "upload_max_bytes", None):
            limits.append((route.path_regex, frozenset(route.methods), raw))
    return limits


async def read_upload(file: UploadFile, settings: StorageSettings, bucket: str) -> bytes:
    """The uploaded file's bytes, refused (``TooLarge``, 413) as soon as they pass the bucket's limit."""
    if file.size is not None:
        check_size(settings, bucket, file.size)
    chunks, seen = [], 0
    while chunk := await file.read(CHUNK):
        seen += len(chunk)
        check_size(settings, bucket, seen)
        chunks.append(chunk)
    return b"".join(chunks)


async def form_file(request: Request, settings: StorageSettings, bucket: str) -> tuple[str, bytes, str | None]:
    """``(file name, bytes, declared content type)`` of the form's ``file`` part; 422 without one."""
    form = await request.form(max_files=1, max_fields=8)
    try:
        file = form.get("file")
        if not isinstance(file, FormFile):
            raise Problem(422, "file-missing", "Send the file as the multipart/form-data part named `file`.")
        return file.filename or "", await read_upload(file, settings, bucket), file.content_type
    finally:
        await form.close()
