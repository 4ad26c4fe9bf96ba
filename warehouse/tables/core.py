"""Platform tables: tenants and their connections, sync bookkeeping, quarantine, requests."""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column, timestamps
from warehouse.types import JSONDoc, UTCDateTime, utc_now

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True, comment="slug, also the Dagster partition key"),
    sa.Column("name", sa.String(200), nullable=False, comment="the merchant's display name"),
    sa.Column("status", sa.String(16), nullable=False, server_default="active",
              comment="active (synced); any other value is not synced"),
    *timestamps(),
    comment="One row per merchant (tenant).",
)

tenant_connections = sa.Table(
    "tenant_connections",
    metadata,
    tenant_column(),
    sa.Column("system", sa.String(32), nullable=False, comment="mx_merchant, stripe, airalo, treez, ..."),
    sa.Column("base_url", sa.String(500), nullable=False),
    sa.Column("credentials", sa.Text, nullable=False,
              comment="encrypted (Fernet token of the JSON document): read through warehouse.tenants only"),
    sa.Column("options", JSONDoc, nullable=False),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "system"),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
    comment="How to reach each outside system of a tenant: pointing sandbox -> production changes only this.",
)

sync_state = sa.Table(
    "sync_state",
    metadata,
    tenant_column(),
    sa.Column("stream", sa.String(64), nullable=False),
    sa.Column("cursor", JSONDoc, nullable=False),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "stream"),
    comment="Incremental cursors, saved only after the data they cover is committed.",
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True, comment="run number, increasing"),
    tenant_column(),
    sa.Column("stream", sa.String(64), nullable=False, comment="what was synced, e.g. mx_transactions, pos_products"),
    sa.Column("run_id", sa.String(64), comment="the Dagster run id"),
    sa.Column("status", sa.String(16), nullable=False, comment="running, success, failed, skipped, abandoned (its run or process ended first: see error)"),
    sa.Column("started_at", UTCDateTime, nullable=False, comment="when the sync started (UTC)"),
    sa.Column("finished_at", UTCDateTime, comment="when it finished (UTC); null while running"),
    sa.Column("duration_s", sa.Float, comment="seconds it took"),
    sa.Column("api_calls", sa.Integer, nullable=False, server_default="0", comment="provider API calls made"),
    sa.Column("rows", sa.Integer, nullable=False, server_default="0", comment="records received"),
    sa.Column("rows_written", sa.Integer, nullable=False, server_default="0", comment="inserted or changed"),
    sa.Column("quarantined", sa.Integer, nullable=False, server_default="0", comment="records put in quarantine"),
    sa.Column("error", sa.Text, comment="why it failed"),
    sa.Column("worker", sa.String(128), comment="host:pid of the process running it, to tell when it died"),
    sa.Index("ix_sync_runs_tenant_stream", "tenant_id", "stream", "started_at"),
    comment="One row per sync of one stream for one tenant.",
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    tenant_column(),
    sa.Column("stream", sa.String(64), nullable=False, comment="the stream the record came from, e.g. mx_transactions"),
    sa.Column("record_key", sa.String(64), nullable=False, comment="sha256 of the raw record"),
    sa.Column("source_id", sa.String(128), comment="the record's id at the source, when it has one"),
    sa.Column("reason", sa.Text, nullable=False, comment="why it could not be loaded"),
    sa.Column("raw", JSONDoc, nullable=False, comment="the record exactly as received (JSON)"),
    sa.Column("run_id", sa.String(64), comment="the Dagster run that quarantined it"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "stream", "record_key"),
    comment="Records that could not be loaded, kept whole with the reason.",
)

sync_requests = sa.Table(
    "sync_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    tenant_column(),
    sa.Column("job", sa.String(64), nullable=False),
    sa.Column("requested_by", sa.String(100), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False, server_default=utc_now()),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("run_key", sa.String(128)),
    sa.Column("launched_at", UTCDateTime),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
    sa.Index("ix_sync_requests_status", "status", "id"),
    comment="Manual sync requests (CLI, API), picked up by the sync-request sensor.",
)

circuit_breakers = sa.Table(
    "circuit_breakers",
    metadata,
    tenant_column(),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, comment="closed, open, half_open"),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("opened_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "provider"),
    comment="Circuit breaker state per provider per tenant, shared by every process.",
)
