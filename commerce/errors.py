"""The one error the shop services raise when they refuse a request.

A ``Problem`` carries an HTTP status and a short ``kind`` because its reader is nearly always a
client of the API: ``api.problems`` answers it as RFC 9457 problem details. Callers outside the
API (assets, the CLI) read ``kind`` and ``detail``.
"""

from __future__ import annotations

from typing import Any


class Problem(Exception):
    """A refusal with a status, a ``kind`` (the problem ``type`` URI's last segment) and a detail."""

    def __init__(self, status: int, kind: str, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.title = status, kind, detail, title
        self.headers, self.extra = headers or {}, extra
