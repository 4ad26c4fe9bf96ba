"""A folder that keeps objects by bucket and key, for the slicing tests until the storage backends
(resources/storage, built beside this work) are merged: the slicer only uses the Storage protocol."""

from __future__ import annotations

import time
from pathlib import Path

from resources.storage import NotFound


class FolderStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def get(self, bucket: str, key: str) -> bytes:
        try:
            return self._path(bucket, key).read_bytes()
        except FileNotFoundError:
            raise NotFound(key) from None

    def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def delete(self, bucket: str, keys: list[str]) -> int:
        gone = 0
        for key in keys:
            path = self._path(bucket, key)
            if path.is_file():
                path.unlink()
                gone += 1
        return gone

    def list(self, bucket: str, prefix: str = "") -> list[tuple[str, int]]:
        base = self.root / bucket
        return sorted((str(p.relative_to(base)), p.stat().st_size) for p in base.rglob("*")
                      if p.is_file() and str(p.relative_to(base)).startswith(prefix))

    def signed_url(self, bucket: str, key: str, *, expires_s: int, filename: str | None = None) -> str:
        return f"/files/{bucket}/{key}?expires={int(time.time()) + expires_s}"
