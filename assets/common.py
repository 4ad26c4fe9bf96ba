"""What every sync asset shares: the tenant's connection, the sync ledger, errors, metadata."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa

from resources.connection import ConnectionConfigError
from resources.http import AuthFailed, ProviderError
from resources.systems import check_connection
from resources.warehouse import WarehouseResource
from warehouse.secrets import SecretsKeyError
from warehouse.syncs import SyncLedger, SyncStats
from warehouse.tables import metadata
from warehouse.tenants import TenantConnection, get_connection
from warehouse.types import stored_type

OWNERS = ["team:data"]
# Dagster retries a sync only for failures that are not the provider's (the database, our own
# errors): a provider's failure has already had its retries under the provider's call policy and
# the run's retry budget (resources.http.CallPolicy), so it fails the run without another round
# (``allow_retries=False``), and the two never multiply. The next scheduled run, and for POS the
# breaker, take it from there.
API_RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
# Configuration that only a person can fix: the connection's fields, the secrets key. Never retried.
CONFIG_ERRORS = (ConnectionConfigError, SecretsKeyError)


def checked_connection(warehouse: WarehouseResource, tenant_id: str, system: str) -> TenantConnection | None:
    """The tenant's connection to ``system``, checked against what the system declares (raises one
    of ``CONFIG_ERRORS`` when it does not match, or its credentials cannot be decrypted)."""
    with warehouse.engine.connect() as conn:
        connection = get_connection(conn, tenant_id, system)
    return connection and check_connection(connection)


def tenant_connection(warehouse: WarehouseResource, tenant_id: str, system: str) -> TenantConnection | None:
    """``checked_connection`` for an asset: a configuration error fails the run at once, in one line."""
    try:
        return checked_connection(warehouse, tenant_id, system)
    except CONFIG_ERRORS as exc:
        raise config_failure(tenant_id, system, exc) from None


def config_failure(tenant: str, system: str, exc: Exception) -> dg.Failure:
    """The run's error for a configuration problem: the cause in one line, and no retry."""
    hint = f" Fix it with `storehouse tenants add {tenant} --system {system} ...`." \
        if isinstance(exc, ConnectionConfigError) else ""
    return dg.Failure(description=f"Tenant '{tenant}': {str(exc).rstrip('.')}.{hint}", allow_retries=False)


def run_sync(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    stream: str,
    system: str,
    work: Callable[[TenantConnection], SyncStats],
) -> tuple[SyncStats, float] | None:
    """Run one stream's sync for the partition's tenant, recorded in ``sync_runs``.

    Returns None when the tenant has no connection to ``system``. Failures name the tenant and
    the provider, never a credential; bad credentials and configuration errors are not retried
    (retrying cannot help).
    """
    tenant = context.partition_key
    try:
        connection = checked_connection(warehouse, tenant, system)
    except CONFIG_ERRORS as exc:
        SyncLedger(warehouse.engine, tenant, stream, context.run.run_id).finish(SyncStats(), "failed", str(exc))
        raise config_failure(tenant, system, exc) from None
    if connection is None:
        context.log.info(f"tenant {tenant} has no {system} connection; nothing to sync")
        return None
    ledger = SyncLedger(warehouse.engine, tenant, stream, context.run.run_id)
    try:
        stats = work(connection)
    except CONFIG_ERRORS as exc:
        ledger.finish(SyncStats(), "failed", str(exc))
        raise config_failure(tenant, system, exc) from None
    except AuthFailed as exc:
        ledger.finish(SyncStats(), "failed", str(exc))
        raise dg.Failure(
            description=f"Tenant '{tenant}': {system} rejected the credentials (HTTP {exc.status}). "
            f"Fix them with `storehouse tenants add {tenant} --system {system} ...`.",
            allow_retries=False,
        ) from None
    except ProviderError as exc:
        ledger.finish(SyncStats(), "failed", str(exc))
        raise dg.Failure(description=f"Tenant '{tenant}': {exc}", allow_retries=False) from None  # see API_RETRY
    except Exception as exc:
        ledger.finish(SyncStats(), "failed", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    return stats, ledger.finish(stats)


def table_count(warehouse: WarehouseResource, table: sa.Table, tenant_id: str) -> int:
    with warehouse.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.tenant_id == tenant_id)).scalar_one()


def preview(warehouse: WarehouseResource, table: sa.Table, tenant_id: str, columns: Sequence[str], order_by: str, limit: int = 5) -> str:
    """A small markdown table of the tenant's newest rows."""
    cols = [table.c[c] for c in columns]
    with warehouse.engine.connect() as conn:
        rows = conn.execute(
            sa.select(*cols).where(table.c.tenant_id == tenant_id).order_by(table.c[order_by].desc()).limit(limit)
        ).all()
    return markdown_table(columns, rows)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return "" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def sync_metadata(stats: SyncStats, duration: float, table_rows: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "dagster/row_count": table_rows,
        "rows_received": stats.rows,
        "rows_written": stats.rows_written,
        "api_calls": stats.api_calls,
        "quarantined": stats.quarantined,
        "duration_s": round(duration, 3),
    }
    meta.update({k: v for k, v in stats.extra.items() if isinstance(v, (int, float, str, bool))})
    return meta


def not_connected(system: str, checks: Sequence[str] = ()) -> dg.MaterializeResult:
    """The result for a tenant that does not use ``system``: nothing loaded, checks not applicable."""
    note = f"tenant has no {system} connection"
    return dg.MaterializeResult(
        metadata={"dagster/row_count": 0, "skipped": note},
        check_results=[dg.AssetCheckResult(check_name=c, passed=True, metadata={"note": note}) for c in checks],
    )


def table_metadata(table: sa.Table) -> dict[str, Any]:
    """Definition metadata naming the warehouse table an asset is. Its columns (the UI's Columns
    tab) are added by ``with_column_schema`` once the definitions know the warehouse in use."""
    return {"dagster/table_name": table.name}


def column_schema(table: sa.Table, dialect: str) -> dg.TableSchema:
    """The table's columns with their comments and their types as the warehouse on ``dialect``
    really stores them (analysts see what to query without opening the code)."""
    return dg.TableSchema(columns=[
        dg.TableColumn(column.name, type=stored_type(column.type, dialect), description=column.comment,
                       constraints=dg.TableColumnConstraints(nullable=column.nullable))
        for column in table.columns
    ])


def with_column_schema(spec: dg.AssetSpec, dialect: str) -> dg.AssetSpec:
    """``spec`` with the Columns tab of the warehouse table it names, if it names one."""
    name = spec.metadata.get("dagster/table_name")
    if name not in metadata.tables:
        return spec
    return spec.merge_attributes(metadata={"dagster/column_schema": column_schema(metadata.tables[name], dialect)})
