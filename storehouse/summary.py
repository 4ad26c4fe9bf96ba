"""What one `storehouse demo` run did per tenant, for the end of the demo.

Figures come from the ``sync_runs`` rows this run wrote (started at or after ``since``): the
records each sync received and wrote, and the API calls it made. A second run on the same
warehouse therefore shows what it did itself (an incremental re-sync is a few calls), never the
sums of every run before it; what the warehouse holds altogether is a separate column.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from warehouse.tables import metadata
from warehouse.tables.core import sync_runs

_BOOKKEEPING = {"tenants", "tenant_connections", "sync_state", "sync_runs", "sync_requests", "circuit_breakers"}


@dataclass(frozen=True)
class RunFigures:
    syncs: int
    received: int
    written: int
    api_calls: int


def run_figures(engine: sa.Engine, tenant_ids: list[str], since: dt.datetime) -> dict[str, RunFigures]:
    """{tenant: what its syncs since ``since`` received, wrote and called}."""
    r = sync_runs.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(r.tenant_id, sa.func.count(), sa.func.sum(r.rows), sa.func.sum(r.rows_written),
                      sa.func.sum(r.api_calls))
            .where(r.tenant_id.in_(tenant_ids), r.started_at >= since).group_by(r.tenant_id)
        ).all()
    return {t: RunFigures(n, int(got or 0), int(written or 0), int(calls or 0)) for t, n, got, written, calls in rows}


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


def print_summary(console: Console, engine: sa.Engine, tenant_ids: list[str], since: dt.datetime) -> None:
    """One row per tenant: what this run's syncs received, wrote and called, then what the
    warehouse holds for it now, table by table."""
    figures = run_figures(engine, tenant_ids, since)
    counts = table_counts(engine, tenant_ids)
    table = Table("tenant", "received (this run)", "written (this run)", "API calls (this run)",
                  "in the warehouse now", title="What this run did")
    for tenant in tenant_ids:
        done = figures.get(tenant, RunFigures(0, 0, 0, 0))
        held = ", ".join(f"{name} {per_tenant[tenant]:,}" for name, per_tenant in sorted(counts.items())
                         if per_tenant.get(tenant))
        table.add_row(tenant, f"{done.received:,}", f"{done.written:,}", f"{done.api_calls:,}", held or "[dim]nothing[/]")
    console.print(table)
