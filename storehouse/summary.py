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
    """One row per tenant: what it loaded, table by table, and the API calls its syncs made
    (a tenant per row stays readable however many tenants and tables there are)."""
    counts = table_counts(engine, tenant_ids)
    with engine.connect() as conn:
        calls = dict(conn.execute(
            sa.select(sync_runs.c.tenant_id, sa.func.sum(sync_runs.c.api_calls))
            .where(sync_runs.c.tenant_id.in_(tenant_ids)).group_by(sync_runs.c.tenant_id)
        ).all())
    table = Table("tenant", "rows loaded", "API calls", title="Loaded into the warehouse")
    for tenant in tenant_ids:
        loaded = ", ".join(f"{name} {per_tenant[tenant]:,}" for name, per_tenant in sorted(counts.items())
                           if per_tenant.get(tenant))
        table.add_row(tenant, loaded or "[dim]nothing[/]", f"{calls.get(tenant, 0) or 0:,}")
    console.print(table)
