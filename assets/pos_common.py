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

from collections.abc import Sequence
from typing import Any

import dagster as dg

from assets.common import sync_connections
from resources.breaker import CircuitBreaker, SqlBreakerStore
from resources.dagster_resources import PosClientsResource
from resources.pos import POS_SYSTEMS
from resources.warehouse import WarehouseResource
from syncing.pos import stream_name, sync_stream
from syncing.result import total
from syncing.runs import CONFIG_ERRORS, Outcome, connections_of

GROUP = "pos"
KINDS = {"pos", "sql"}
POOL = "pos_api"
REACHABLE = "source_reachable"
REACHABLE_SPEC_TEXT = "no provider of the tenant is behind an open circuit breaker (data may be stale)"


def run_pos_streams(context: dg.AssetExecutionContext, warehouse: WarehouseResource, pos_clients: PosClientsResource,
                    kind: str, systems: Sequence[str] = POS_SYSTEMS) -> list[Outcome] | None:
    """Sync ``kind`` for each of the partition tenant's connections; None when it has none."""
    tenant, engine = context.partition_key, warehouse.engine
    try:
        connections = connections_of(engine, tenant, systems)
    except CONFIG_ERRORS as exc:  # the secrets key: no connection of the tenant can be read
        raise dg.Failure(description=f"Tenant '{tenant}': {exc}", allow_retries=False) from None
    if not connections:
        return None
    store = SqlBreakerStore(engine)
    return sync_connections(
        context, warehouse, connections, lambda system: stream_name(kind, system), pos_clients.client_for,
        lambda client, connection: sync_stream(engine, client, tenant, kind, connection.options, context.run.run_id),
        lambda system: CircuitBreaker(store, tenant, system, failure_threshold=pos_clients.breaker_failure_threshold,
                                      reset_after=pos_clients.breaker_reset_s))


def raise_failures(tenant: str, runs: list[Outcome]) -> None:
    """Fail the run if a provider failed without opening its breaker (the others are stored)."""
    failed = [r for r in runs if r.status == "failed"]
    if failed:
        hint = " Fix the credentials with `storehouse tenants add`." if any(r.auth for r in failed) else ""
        raise dg.Failure(
            description=f"Tenant '{tenant}': " + "; ".join(r.error or r.system for r in failed) + hint,
            allow_retries=False,  # the call policy and the step's retry budget were spent (assets.common.API_RETRY)
        )


def pos_metadata(runs: list[Outcome], table_rows: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"dagster/row_count": table_rows}
    for r in runs:
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
    summed = total([r.stats for r in runs])
    meta.update(rows_received=summed.rows, rows_written=summed.rows_written, api_calls=summed.api_calls,
                quarantined=summed.quarantined, duration_s=round(sum(r.duration for r in runs), 3),
                systems=", ".join(r.system for r in runs), circuit_open=", ".join(stale) or "none",
                stale=bool(stale))
    return meta


def reachable_check(runs: list[Outcome], asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    stale = {r.system: r.error or "circuit open" for r in runs if r.status == "circuit_open"}
    return dg.AssetCheckResult(
        check_name=REACHABLE, asset_key=asset_key, passed=not stale, severity=dg.AssetCheckSeverity.WARN,
        metadata={"circuit_open": ", ".join(stale) or "none", **{f"{k}_error": v[:300] for k, v in stale.items()}},
    )
