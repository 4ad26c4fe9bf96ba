"""Manual syncs (seed 003, "Enhanced Manual Sync"): what was asked for and how far it got.

One row per manual sync request (``sync_requests``): its mode (``incremental`` or ``recovery``
with a date range), who asked, and the progress the run writes as it goes (the seed's eight
steps, percent done, the statistics as they grow), read by the staff API, its event stream,
the staff page and ``storehouse sync --wait``.
"""

import sqlalchemy as sa

from warehouse.tables.base import metadata
from warehouse.types import JSONDoc, UTCDateTime, utc_now

sync_progress = sa.Table(
    "sync_progress",
    metadata,
    sa.Column("request_id", sa.Integer, sa.ForeignKey("sync_requests.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False, server_default="incremental", comment="incremental or recovery"),
    sa.Column("date_from", UTCDateTime, comment="recovery: the range's start (inclusive)"),
    sa.Column("date_to", UTCDateTime, comment="recovery: the range's end (exclusive)"),
    sa.Column("requested_by", sa.String(36), comment="the user who asked (null: the CLI)"),
    sa.Column("status", sa.String(16), nullable=False, server_default="queued",
              comment="queued, running, succeeded or failed"),
    sa.Column("step", sa.Integer, nullable=False, server_default="0", comment="the seed's step 1-8 (0: not started)"),
    sa.Column("step_name", sa.String(100)),
    sa.Column("percent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stats", JSONDoc, nullable=False, comment="counts as they grow: payments read/new/updated, ..."),
    sa.Column("run_id", sa.String(64), comment="the Dagster run doing it"),
    sa.Column("error", sa.Text),
    sa.Column("requested_at", UTCDateTime, nullable=False, server_default=utc_now()),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utc_now()),
    sa.Index("ix_sync_progress_tenant_status", "tenant_id", "status"),
    # one manual sync per tenant at a time: at most one queued or running row
    sa.Index("uq_sync_progress_one_active", "tenant_id", unique=True,
             sqlite_where=sa.text("status IN ('queued', 'running')"),
             postgresql_where=sa.text("status IN ('queued', 'running')")),
    comment="Manual syncs: mode, who asked, and their live progress (step, percent, statistics).",
)
