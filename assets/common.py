"""What every sync asset shares: Dagster's side of the sync engine (``syncing``).

The engine runs the syncs and writes the ledger; an asset calls it for its partition's tenant
and turns what it returns into metadata, check results and failures. Failures name the tenant
and the provider, never a credential; bad credentials and configuration errors are not retried
(retrying cannot help).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa

from resources.breaker import CircuitBreaker
from resources.connection import ConnectionConfigError
from resources.http import ProviderError
from resources.warehouse import WarehouseResource
from syncing.result import SyncResult
from syncing.runs import CONFIG_ERRORS, FAILED, Outcome, connection_of, count_rows, sync_each
from syncing.state import SyncLedger
from warehouse.tables import metadata
from warehouse.tenants import TenantConnection, get_connection
from warehouse.types import stored_type

OWNERS = ["team:data"]
# Dagster retries a sync only for failures that are not the provider's (the database, our own
# errors): a provider's failure has already had its retries under the provider's call policy and
# the step's retry budget (resources.http.CallPolicy), so it fails the run without another round
# (``allow_retries=False``), and the two never multiply. The next scheduled run, and for POS the
# breaker, take it from there.
API_RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def tenant_connection(warehouse: WarehouseResource, tenant_id: str, system: str) -> TenantConnection | None:
    """The tenant's checked connection to ``system``: a configuration error fails the run at once, in one line."""
    try:
        return connection_of(warehouse.engine, tenant_id, system)
    except CONFIG_ERRORS as exc:
        raise config_failure(tenant_id, system, exc) from None


def config_failure(tenant: str, system: str, exc: Exception) -> dg.Failure:
    """The run's error for a configuration problem: the cause in one line, and no retry."""
    hint = f" Fix it with `storehouse tenants add {tenant} --system {system} ...`." \
        if isinstance(exc, ConnectionConfigError) else ""
    return dg.Failure(description=f"Tenant '{tenant}': {str(exc).rstrip('.')}.{hint}", allow_retries=False)


def sync_connections(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     connections: Sequence[TenantConnection], stream_of: Callable[[str], str],
                     client_for: Callable[[TenantConnection], Any], work: Callable[[Any, TenantConnection], SyncResult],
                     breaker_for: Callable[[str], CircuitBreaker] | None = None,
                     tenant: str | None = None) -> list[Outcome]:
    """``syncing.runs.sync_each`` for ``tenant`` (the partition's by default), in this run, warning in its log."""
    return sync_each(warehouse.engine, tenant or context.partition_key, context.run.run_id, connections, stream_of,
                     client_for, work, breaker_for, context.log.warning)


def run_sync(context: dg.AssetExecutionContext, warehouse: WarehouseResource, stream: str, system: str,
             client_for: Callable[[TenantConnection], Any], work: Callable[[Any, TenantConnection], SyncResult],
             tenant: str | None = None) -> SyncResult | None:
    """Run one stream's sync for ``tenant`` (the partition's by default), recorded in ``sync_runs``;
    its failure raises (a ``dg.Failure`` naming the tenant). None when the tenant has no connection
    to ``system``."""
    tenant = tenant or context.partition_key
    try:
        with warehouse.engine.connect() as conn:
            connection = get_connection(conn, tenant, system)
    except CONFIG_ERRORS as exc:  # the secrets key
        SyncLedger(warehouse.engine, tenant, stream, context.run.run_id).finish(SyncResult(), FAILED, str(exc))
        raise config_failure(tenant, system, exc) from None
    if connection is None:
        context.log.info(f"tenant {tenant} has no {system} connection; nothing to sync")
        return None
    [outcome] = sync_connections(context, warehouse, [connection], lambda _: stream, client_for, work, tenant=tenant)
    if outcome.exc is None:
        return outcome.stats
    if outcome.config:
        raise config_failure(tenant, system, outcome.exc) from None
    if outcome.auth:
        raise dg.Failure(
            description=f"Tenant '{tenant}': {system} rejected the credentials (HTTP {outcome.exc.status}). "
            f"Fix them with `storehouse tenants add {tenant} --system {system} ...`.",
            allow_retries=False,
        ) from None
    if isinstance(outcome.exc, ProviderError):
        raise dg.Failure(description=f"Tenant '{tenant}': {outcome.exc}", allow_retries=False) from None  # see API_RETRY
    raise outcome.exc  # a ValueError of ours: the run fails as it would have without the engine


def count(warehouse: WarehouseResource, table: sa.Table, tenant_id: str, *where: Any) -> int:
    """The tenant's rows of ``table`` (that match ``where``)."""
    return count_rows(warehouse.engine, table, tenant_id, *where)


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


def not_connected(system: str, checks: Sequence[str] = (), asset_key: dg.AssetKey | None = None) -> dg.MaterializeResult:
    """The result for a tenant that does not use ``system``: nothing loaded, checks not applicable
    (``asset_key`` names the asset when it is one of several in a multi-asset)."""
    note = f"tenant has no {system} connection"
    return dg.MaterializeResult(
        metadata={"dagster/row_count": 0, "skipped": note},
        check_results=[dg.AssetCheckResult(check_name=c, asset_key=asset_key, passed=True, metadata={"note": note})
                       for c in checks],
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
