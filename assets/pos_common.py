"""What the POS assets share: every POS connection of the tenant, each behind its breaker.

``run_pos_streams`` syncs one stream for each of the tenant's POS/Portaus connections, one
``sync_runs`` row each. A circuit breaker per provider per tenant (state in the warehouse, so
every run and process sees it) guards the calls: while it is open no request is made, the
tables keep the last good data, the run succeeds with metadata saying so (and a WARN check),
so Dagster does not retry into an outage. Failures below the threshold fail the run, after the
provider's call policy retried each call within the run's budget; Dagster adds no retry of its
own (``assets.common.API_RETRY``), the next scheduled run tries again. Another tenant, or another
provider of the same tenant, is never held up by one that is down.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import sqlalchemy as sa

from assets.common import CONFIG_ERRORS
from assets.pos_sync import stream_name, sync_stream
from resources.breaker import OPEN, CircuitBreaker, SqlBreakerStore
from resources.http import AuthFailed, ProviderError
from resources.pos import POS_SYSTEMS, PosClientsResource
from resources.systems import check_connection
from resources.warehouse import WarehouseResource
from warehouse.syncs import SyncLedger, SyncStats
from warehouse.tables.core import sync_runs, tenant_connections
from warehouse.tenants import TenantConnection, get_connection

GROUP = "pos"
KINDS = {"pos", "sql"}
POOL = "pos_api"
REACHABLE = "source_reachable"
REACHABLE_SPEC_TEXT = "no provider of the tenant is behind an open circuit breaker (data may be stale)"


@dataclass
class SystemRun:
    system: str
    status: str  # synced, circuit_open, failed
    stats: SyncStats = field(default_factory=SyncStats)
    duration: float = 0.0
    error: str | None = None
    retryable: bool = False
    auth: bool = False
    last_good: dt.datetime | None = None


def pos_connections(warehouse: WarehouseResource, tenant_id: str, systems: Sequence[str]) -> list[TenantConnection]:
    t = tenant_connections.c
    with warehouse.engine.connect() as conn:
        found = conn.execute(sa.select(t.system).where(t.tenant_id == tenant_id, t.system.in_(systems))
                             .order_by(t.system)).scalars().all()
        return [get_connection(conn, tenant_id, s) for s in found]


def last_success(warehouse: WarehouseResource, tenant_id: str, stream: str) -> dt.datetime | None:
    r = sync_runs.c
    with warehouse.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(r.finished_at)).where(
            r.tenant_id == tenant_id, r.stream == stream, r.status == "success")).scalar_one()


def _is_outage(exc: BaseException) -> bool:
    """Only failures of the provider trip the breaker: not bad credentials, not our bugs."""
    return isinstance(exc, ProviderError) and exc.retryable


def run_pos_streams(context: dg.AssetExecutionContext, warehouse: WarehouseResource, pos_clients: PosClientsResource,
                    kind: str, systems: Sequence[str] = POS_SYSTEMS) -> list[SystemRun] | None:
    """Sync ``kind`` for each of the partition tenant's connections; None when it has none."""
    tenant = context.partition_key
    try:
        connections = pos_connections(warehouse, tenant, systems)
    except CONFIG_ERRORS as exc:  # the secrets key: no connection of the tenant can be read
        raise dg.Failure(description=f"Tenant '{tenant}': {exc}", allow_retries=False) from None
    if not connections:
        return None
    store, runs = SqlBreakerStore(warehouse.engine), []
    for connection in connections:
        system, stream = connection.system, stream_name(kind, connection.system)
        breaker = CircuitBreaker(store, tenant, system, failure_threshold=pos_clients.breaker_failure_threshold,
                                 reset_after=pos_clients.breaker_reset_s)
        ledger = SyncLedger(warehouse.engine, tenant, stream, context.run.run_id)
        if not breaker.allow():
            ledger.finish(SyncStats(), "skipped", f"circuit open: {breaker.current().last_error}")
            runs.append(SystemRun(system, "circuit_open", error=breaker.current().last_error,
                                  last_good=last_success(warehouse, tenant, stream)))
            context.log.warning(f"{system}: circuit open for tenant {tenant}; keeping the last good {kind}")
            continue
        client = None
        try:
            client = pos_clients.client_for(check_connection(connection))
            stats = breaker.run(lambda: sync_stream(warehouse.engine, client, tenant, kind, connection.options,
                                                    context.run.run_id), counts=_is_outage)
        except (ProviderError, ValueError) as exc:
            ledger.finish(SyncStats(api_calls=client.calls if client else 0), "failed", str(exc)[:2000])
            opened = _is_outage(exc) and breaker.current().state == OPEN
            runs.append(SystemRun(
                system, "circuit_open" if opened else "failed", error=str(exc),
                retryable=_is_outage(exc), auth=isinstance(exc, AuthFailed) and exc.kind == AuthFailed.kind,
                last_good=last_success(warehouse, tenant, stream)))
            context.log.warning(f"{system} {kind} for tenant {tenant}: {exc}")
            continue
        except Exception as exc:
            ledger.finish(SyncStats(), "failed", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        finally:
            if client is not None:
                client.close()
        runs.append(SystemRun(system, "synced", stats, ledger.finish(stats)))
    return runs


def raise_failures(tenant: str, runs: list[SystemRun]) -> None:
    """Fail the run if a provider failed without opening its breaker (the others are stored)."""
    failed = [r for r in runs if r.status == "failed"]
    if failed:
        hint = " Fix the credentials with `storehouse tenants add`." if any(r.auth for r in failed) else ""
        raise dg.Failure(
            description=f"Tenant '{tenant}': " + "; ".join(r.error or r.system for r in failed) + hint,
            allow_retries=False,  # the call policy and the run's retry budget were spent (assets.common.API_RETRY)
        )


def pos_metadata(runs: list[SystemRun], table_rows: int) -> dict[str, Any]:
    total = SyncStats()
    meta: dict[str, Any] = {"dagster/row_count": table_rows}
    for r in runs:
        total.rows += r.stats.rows
        total.rows_written += r.stats.rows_written
        total.api_calls += r.stats.api_calls
        total.quarantined += r.stats.quarantined
        meta[f"{r.system}_status"] = r.status
        if r.status == "synced":
            meta[f"{r.system}_mode"] = r.stats.extra.get("mode", "")
            meta.update({f"{r.system}_{k}": v for k, v in r.stats.extra.items() if k.startswith("api_retr")})
            meta[f"{r.system}_marked_deleted"] = r.stats.extra.get("marked_deleted", 0)
            if r.stats.extra.get("deletions_withheld"):
                meta[f"{r.system}_deletions_withheld"] = r.stats.extra["deletions_withheld"]
        else:
            meta[f"{r.system}_serving_last_good_data_from"] = r.last_good.isoformat() if r.last_good else "never synced"
    stale = [r.system for r in runs if r.status == "circuit_open"]
    meta.update(rows_received=total.rows, rows_written=total.rows_written, api_calls=total.api_calls,
                quarantined=total.quarantined, duration_s=round(sum(r.duration for r in runs), 3),
                systems=", ".join(r.system for r in runs), circuit_open=", ".join(stale) or "none",
                stale=bool(stale))
    return meta


def reachable_check(runs: list[SystemRun], asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    stale = {r.system: r.error or "circuit open" for r in runs if r.status == "circuit_open"}
    return dg.AssetCheckResult(
        check_name=REACHABLE, asset_key=asset_key, passed=not stale, severity=dg.AssetCheckSeverity.WARN,
        metadata={"circuit_open": ", ".join(stale) or "none", **{f"{k}_error": v[:300] for k, v in stale.items()}},
    )


def count(warehouse: WarehouseResource, table: sa.Table, tenant_id: str, *where: Any) -> int:
    with warehouse.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)
                            .where(table.c.tenant_id == tenant_id, *where)).scalar_one()


def pos_not_connected(asset_key: dg.AssetKey, checks: Sequence[str], systems: str = "POS or Portaus"
                      ) -> dg.MaterializeResult:
    note = f"tenant has no {systems} connection"
    return dg.MaterializeResult(
        metadata={"dagster/row_count": 0, "skipped": note},
        check_results=[dg.AssetCheckResult(check_name=c, asset_key=asset_key, passed=True, metadata={"note": note})
                       for c in checks],
    )
