"""What the warehouse holds per tenant, for the end of `storehouse demo`."""

from __future__ import annotations

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from warehouse.tables import metadata
from warehouse.tables.core import sync_runs

_BOOKKEEPING = {"tenants", "tenant_connections", "sync_state", "sync_runs", "sync_requests", "circuit_breakers"}


def table_counts(engine: sa.Engine, tenant_ids: list[str]) -> dict[str, dict[str, int]]:
    """{table: {tenant: rows}} for every tenant-scoped data table that has rows."""
    counts: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if "tenant_id" not in table.c or table.name in _BOOKKEEPING:
                continue
            rows = conn.execute(
                sa.select(table.c.tenant_id, sa.func.count()).where(table.c.tenant_id.in_(tenant_ids))
                .group_by(table.c.tenant_id)
            ).all()
            if rows:
                counts[table.name] = dict(rows)
    return counts


def print_summary(console: Console, engine: sa.Engine, tenant_ids: list[str]) -> None:
    counts = table_counts(engine, tenant_ids)
    table = Table("table", *tenant_ids, title="Loaded into the warehouse")
    for name, per_tenant in sorted(counts.items()):
        table.add_row(name, *(f"{per_tenant.get(t, 0):,}" for t in tenant_ids))
    with engine.connect() as conn:
        calls = dict(conn.execute(
            sa.select(sync_runs.c.tenant_id, sa.func.sum(sync_runs.c.api_calls))
            .where(sync_runs.c.tenant_id.in_(tenant_ids)).group_by(sync_runs.c.tenant_id)
        ).all())
    table.add_row("[dim]API calls (all syncs)[/]", *(f"{calls.get(t, 0) or 0:,}" for t in tenant_ids))
    console.print(table)
