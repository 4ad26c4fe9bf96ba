"""The local backend: files under ``{root}/{bucket}/{key}`` (root: ``STOREHOUSE_HOME/storage``).

Writes are atomic: the bytes go to a temporary file in ``{root}/.partial`` (same filesystem) and
are renamed over the target, so a reader sees the old file or the new one, never half of one,
and a crash leaves no partial object behind in a bucket. The content type given to ``put`` is
kept beside the tree, in ``{root}/.meta/{bucket}/{key}``, so a download answers with it, as S3
would.

Downloads go through links we sign (:class:`LinkSigner`): HMAC-SHA256 over bucket, key, expiry
and download name, under a key derived from the API's secret, served by ``GET /files/{bucket}/
{key}?expires=…&filename=…&signature=…`` (``api/routes/files.py``). Changing any part of a link,
or using it after ``expires``, gets 403.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import math
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from resources.storage import InvalidKey, NotFound, StorageError, check_bucket, check_key

MAX_LINK_S = 7 * 24 * 3600  # S3's own ceiling for a presigned URL
META, PARTIAL = ".meta", ".partial"  # not bucket names: BUCKETS never start with '.'
DEFAULT_TYPE = "application/octet-stream"


class LinkRefused(StorageError):
    """A download link that is altered, malformed or expired (the API answers 403)."""


class LinkSigner:
    """Signs and checks download links. The signing key is derived from the secret for this one
    use, so a link signature can never stand in for another HMAC made with the same secret (an
    order token, say)."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("a link signer needs a secret")
        self._key = hmac.new(secret, b"storehouse/storage-links/v1", hashlib.sha256).digest()

    def signature(self, bucket: str, key: str, expires: int, filename: str | None) -> str:
        message = "\n".join((bucket, key, str(expires), filename or "")).encode("utf-8")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def check(self, bucket: str, key: str, expires: str | int | None, filename: str | None,
              signature: str | None, *, now: float | None = None) -> None:
        """Nothing when the link is intact and unexpired, else :class:`LinkRefused`."""
        try:
            at = int(str(expires))
        except ValueError:
            raise LinkRefused("The link is malformed.") from None
        expected = self.signature(bucket, key, at, filename)
        if not signature or not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise LinkRefused("The link is not valid.")
        if (time.time() if now is None else now) > at:
            raise LinkRefused("The link has expired.")


class LocalStorage:
    """:class:`resources.storage.Storage` on a local folder; ``base_url`` is where the API is reached."""

    def __init__(self, root: Path | str, secret: bytes, base_url: str) -> None:
        self.root = Path(root).resolve()
        self.signer = LinkSigner(secret)
        self.base_url = base_url.rstrip("/")

    # -- paths ----------------------------------------------------------------------------------

    def _path(self, bucket: str, key: str, tree: str | None = None) -> Path:
        base = self.root / (tree or "") / check_bucket(bucket)
        path = base / check_key(key)
        # check_key already refuses '..'; this also catches a symlink someone placed in the tree
        if not path.resolve().is_relative_to(base.resolve()):
            raise InvalidKey("the key leads outside its bucket")
        return path

    def _write(self, path: Path, data: bytes) -> None:
        partial = self.root / PARTIAL
        partial.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=partial)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            for attempt in range(3):  # a concurrent delete may remove the empty folder in between
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(temp, path)
                    return
                except FileNotFoundError:
                    if attempt == 2:
                        raise
        except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            raise StorageError(f"cannot store at {path.name}: another key is a folder on its path") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    # -- the Storage protocol ---------------------------------------------------------------------

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        path, meta = self._path(bucket, key), self._path(bucket, key, META)
        self._write(meta, (content_type or DEFAULT_TYPE).encode("utf-8"))
        self._write(path, bytes(data))

    def get(self, bucket: str, key: str) -> bytes:
        try:
            return self._path(bucket, key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"{bucket}/{key}") from None

    def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def content_type(self, bucket: str, key: str) -> str:
        try:
            return self._path(bucket, key, META).read_text("utf-8").strip() or DEFAULT_TYPE
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return DEFAULT_TYPE

    def delete(self, bucket: str, keys: list[str]) -> int:
        paths = [(self._path(bucket, key), self._path(bucket, key, META)) for key in keys]  # all checked first
        existed = 0
        for path, meta in paths:
            try:
                path.unlink()
                existed += 1
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                pass
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                meta.unlink()
            self._prune(path.parent, self.root / bucket)
            self._prune(meta.parent, self.root / META / bucket)
        return existed

    @staticmethod
    def _prune(folder: Path, stop: Path) -> None:
        """Remove folders left empty (a tmp upload's ``{uuid}/``), up to the bucket's own."""
        while folder != stop and stop in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone
                return
            folder = folder.parent

    def list(self, bucket: str, prefix: str = "") -> list[tuple[str, int]]:
        base = self.root / check_bucket(bucket)
        if prefix:
            check_key(prefix.rstrip("/") or "/")
        start = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base  # walk only the prefix's folder
        found = []
        for folder, _dirs, files in os.walk(start):
            for name in files:
                key = (Path(folder) / name).relative_to(base).as_posix()
                if key.startswith(prefix):
                    found.append((key, (Path(folder) / name).stat().st_size))
        return sorted(found)

    def signed_url(self, bucket: str, key: str, *, expires_s: int, filename: str | None = None) -> str:
        check_bucket(bucket)
        check_key(key)
        if not 1 <= expires_s <= MAX_LINK_S:
            raise ValueError(f"expires_s must be between 1 and {MAX_LINK_S}")
        expires = math.ceil(time.time()) + int(expires_s)  # at least expires_s from now, whole seconds
        query = {"expires": expires}
        if filename is not None:
            query["filename"] = filename
        query["signature"] = self.signer.signature(bucket, key, expires, filename)
        return f"{self.base_url}/files/{bucket}/{quote(key, safe='/')}?{urlencode(query)}"

    def file_path(self, bucket: str, key: str) -> Path:
        """The file itself, for the API to stream (:class:`NotFound` when absent)."""
        path = self._path(bucket, key)
        if not path.is_file():
            raise NotFound(f"{bucket}/{key}")
        return path
