"""Downloads from the local storage backend, through the links it signs (``LocalStorage.signed_url``).

The link is the permission: whoever issued it (a studio route) checked that the caller owns the
file; this route only checks that the link is intact and unexpired (403 otherwise, before the
file system is touched) and streams the file as an attachment, under its stored content type.
Always ``attachment``: a file a client uploaded is never rendered on the API's own origin. With
the S3 backend the links point at the store itself and this route serves nothing (404).
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from api.deps import StorageDep
from api.problems import Problem, problem_responses
from resources.storage import BUCKETS, NotFound, StorageError, content_disposition
from resources.storage.local import LinkRefused, LocalStorage

router = APIRouter(prefix="/files", tags=["files"])
Bucket = Annotated[Literal[BUCKETS], Path(description="the storage bucket")]


@router.get("/{bucket}/{key:path}", response_class=FileResponse, responses={
    200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
          "description": "The file, as an attachment named by the link's `filename` (else the key's last part)."},
    **problem_responses((403, "The link is altered, malformed or expired: ask for a new one."),
                        (404, "The file is gone (or this deployment keeps its files in S3)."), 422)})
def download(bucket: Bucket, key: Annotated[str, Path(description="the object's key in the bucket")],
             storage: StorageDep,
             expires: Annotated[str | None, Query(max_length=20, description="unix time the link expires")] = None,
             filename: Annotated[str | None, Query(max_length=255, description="the download's name")] = None,
             signature: Annotated[str | None, Query(max_length=128, description="the link's signature")] = None,
             ) -> FileResponse:
    """A file of the local storage backend, for a link it signed."""
    if not isinstance(storage, LocalStorage):
        raise Problem(404, "not-found", "Files are not served here.")
    try:
        storage.signer.check(bucket, key, expires, filename, signature)
        path = storage.file_path(bucket, key)
    except LinkRefused as exc:
        raise Problem(403, "link-refused", str(exc)) from None
    except NotFound:
        raise Problem(404, "file-not-found", "The file no longer exists.") from None
    except StorageError:  # a key no link of ours carries, signed or not
        raise Problem(404, "file-not-found", "No such file.") from None
    return FileResponse(path, media_type=storage.content_type(bucket, key), headers={
        "Content-Disposition": content_disposition(filename or posixpath.basename(key)),
        "Cache-Control": "private, no-store"})
