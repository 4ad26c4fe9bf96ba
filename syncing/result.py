"""``SyncResult``: what one sync of one stream did. It becomes a ``sync_runs`` row and the run's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SyncResult:
    """Counts (records received, rows written, API calls, quarantined), the run's duration, and
    ``extra``: what the stream alone knows (mode, deletions, reconciliation, ...)."""

    api_calls: int = 0
    rows: int = 0
    rows_written: int = 0
    quarantined: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0

    def bump(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``extra[key]``."""
        self.extra[key] = self.extra.get(key, 0) + n

    def metadata(self, table_rows: int) -> dict[str, Any]:
        """The run's metadata: the table's rows now, the counts, then every plain value of ``extra``."""
        meta: dict[str, Any] = {
            "dagster/row_count": table_rows,
            "rows_received": self.rows,
            "rows_written": self.rows_written,
            "api_calls": self.api_calls,
            "quarantined": self.quarantined,
            "duration_s": round(self.duration, 3),
        }
        meta.update({k: v for k, v in self.extra.items() if isinstance(v, (int, float, str, bool))})
        return meta


def total(results: list[SyncResult]) -> SyncResult:
    """The counts of several results added up (their ``extra`` is not)."""
    out = SyncResult()
    for r in results:
        out.api_calls += r.api_calls
        out.rows += r.rows
        out.rows_written += r.rows_written
        out.quarantined += r.quarantined
        out.duration += r.duration
    return out
