"""Several tenants in one run: each tenant's partition materialised on its own, failures kept apart.

Loading our code costs a run process about 1.5 s of CPU, so a refresh of 1,000 tenants as 1,000
runs spends most of two cores starting processes. A multi-asset over the tenant partitions with a
``BackfillPolicy.multi_run`` runs a range of tenants per run instead. Dagster turns one returned
``MaterializeResult`` into a materialisation of *every* partition of the range with the same
metadata, and an ``AssetCheckResult`` of a range step into an evaluation of no partition; so a
batch yields, per tenant, its own ``AssetMaterialization`` and ``AssetCheckEvaluation`` events
with ``partition=tenant`` (the UI then shows each tenant's partition, metadata and checks as a run
of one tenant does), and a tenant that fails yields none: its partition is the run's failure.

Each tenant's work is committed by the sync engine on its own; a failing tenant does not stop
the others. One whose failure may pass (not a configuration, credential or provider error, which
have had their retries under the provider's call policy: see ``assets.common.API_RETRY``) is
tried again after the others, up to ``API_RETRY.max_retries`` times; what still fails is raised
at the end as one ``dg.Failure`` naming each tenant and why, so the run (and its alert) says it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa
# The materialisation a check evaluated (what Dagster's own AssetCheckResult records): not exported.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from assets.common import API_RETRY
from warehouse.syncs import running_elsewhere

TENANTS_PER_RUN = 50  # a run's fixed cost (~3.5 s of CPU, measured loaded) over 50 no-change tenants: ~0.07 s each
BATCH_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=TENANTS_PER_RUN)

Event = dg.AssetMaterialization | dg.AssetCheckEvaluation


class Blocked(Exception):
    """A blocking check of the tenant failed: its downstream assets wait (for this tenant only)."""


class Busy(Exception):
    """Another run is syncing the tenant right now: tried again after the run's other tenants."""


def hold(engine: sa.Engine, tenant: str, streams: list[str], run_id: str) -> None:
    """The per-tenant lease of a batch: Dagster keeps one run per tenant at a time through the
    ``dagster/partition`` tag, which a run of a range of tenants does not carry; so a tenant one
    of whose ``streams`` another run is syncing (its ``sync_runs`` row open) waits (``Busy``).
    A check, not a lock: two runs reaching the same tenant within the same few milliseconds both
    sync it (idempotently: the writes are upserts and the cursors move forward only)."""
    with engine.connect() as conn:
        other = running_elsewhere(conn, tenant, streams, run_id)
    if other is not None:
        raise Busy(f"tenant {tenant} is being synced by run {other.run_id or other.worker} "
                   f"({other.stream}, since {other.started_at:%H:%M:%S} UTC)")


@dataclass
class Tenant:
    """One tenant's part of a batch run: its partition's events, made as its assets end."""

    context: dg.AssetExecutionContext
    tenant: str
    blocking: Mapping[str, bool]  # check name -> blocking

    def materialized(self, key: dg.AssetKey, result: dg.MaterializeResult) -> Iterator[Event]:
        """``result`` as the tenant's materialisation of ``key``, then its check evaluations (about
        that materialisation, stored by then); raises ``Blocked`` after them when a blocking check
        of ERROR severity failed."""
        yield dg.AssetMaterialization(asset_key=key, partition=self.tenant, metadata=result.metadata or {},
                                      tags=result.tags)
        failed = []
        target = _target(self.context, key, self.tenant) if result.check_results else None
        for check in result.check_results or []:
            name = check.check_name or ""
            blocking = self.blocking.get(name, False)
            yield dg.AssetCheckEvaluation(
                asset_key=check.asset_key or key, check_name=name, passed=check.passed, metadata=check.metadata,
                severity=check.severity, description=check.description, blocking=blocking, partition=self.tenant,
                target_materialization_data=target)
            if blocking and not check.passed and check.severity == dg.AssetCheckSeverity.ERROR:
                failed.append(name)
        if failed:
            raise Blocked(f"blocking check{'s' if len(failed) > 1 else ''} of {key.to_user_string()} failed: "
                          f"{', '.join(failed)}")


def _target(context: dg.AssetExecutionContext, key: dg.AssetKey,
            tenant: str) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The tenant's latest materialisation of ``key`` (the one just yielded: Dagster stores a
    yielded event before the op resumes), which its check evaluations are about."""
    found = context.instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[tenant]),
                                                    limit=1).records
    if not found:
        return None
    return AssetCheckEvaluationTargetMaterializationData(run_id=found[0].event_log_entry.run_id,
                                                         storage_id=found[0].storage_id, timestamp=found[0].timestamp)


def retryable(exc: BaseException) -> bool:
    """Whether trying the tenant again in this run may help: not for a blocked check, nor for a
    failure that says retries cannot help (configuration, credentials, the provider's own errors)."""
    if isinstance(exc, Blocked):
        return False
    if isinstance(exc, dg.Failure):
        return exc.allow_retries is not False
    return True


def describe(exc: BaseException) -> str:
    text = getattr(exc, "description", None) or str(exc) or type(exc).__name__
    return text if isinstance(exc, (dg.Failure, Blocked)) else f"{type(exc).__name__}: {text}"


def per_tenant(context: dg.AssetExecutionContext, tenants: Iterable[str],
               chain: Callable[[Tenant], Iterator[Event]], blocking: Mapping[str, bool],
               retries: int = API_RETRY.max_retries) -> Iterator[Event | dg.Output]:
    """Run ``chain`` for each tenant, yielding its events as they come (a tenant that fails keeps
    what it materialised before failing, as a failed step keeps its parents'); the tenants whose
    failure may pass are tried again after the others. Raises one ``dg.Failure`` naming what
    still failed."""
    pending, failures = list(tenants), {}
    for attempt in range(retries + 1):
        again = []
        for tenant in pending:
            try:
                yield from chain(Tenant(context, tenant, blocking))
                failures.pop(tenant, None)
            except Exception as exc:  # noqa: BLE001 - one tenant's failure, whatever it is, stays its own
                failures[tenant] = exc
                if retryable(exc) and attempt < retries:
                    again.append(tenant)
                context.log.warning(f"tenant {tenant} failed (attempt {attempt + 1}): {describe(exc)}")
        if not again:
            break
        pending = again
    for key in context.selected_asset_check_keys:  # the step's check outputs (nothing flows through them)
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(key))
    if failures:
        lines = [f"{tenant}: {describe(exc)}" for tenant, exc in sorted(failures.items())]
        alone = len(context.partition_keys) == 1  # a run of one tenant says its error as it is
        raise dg.Failure(
            description=describe(next(iter(failures.values()))) if alone else
            f"{len(failures)} of the run's tenants failed (the others are materialised): " + "; ".join(lines)[:2000],
            metadata={"failed_tenants": sorted(failures)},
            allow_retries=False,  # retried above, tenant by tenant; the step again would redo every tenant
        )


def batch_tags(start: str, end: str) -> dict[str, str]:
    """A run's tags for the tenants from ``start`` to ``end`` (a range of the partition set)."""
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def ranges(ordered: list[str], wanted: set[str], size: int = TENANTS_PER_RUN) -> list[tuple[str, str]]:
    """Contiguous runs of ``wanted`` keys in the partition set's order (``ordered``), at most
    ``size`` each: a range holds every key between its ends, so one not wanted splits it."""
    found: list[tuple[str, str]] = []
    chunk: list[str] = []
    for key in ordered:
        if key in wanted and len(chunk) < size:
            chunk.append(key)
            continue
        if chunk:
            found.append((chunk[0], chunk[-1]))
        chunk = [key] if key in wanted else []
    if chunk:
        found.append((chunk[0], chunk[-1]))
    return found
