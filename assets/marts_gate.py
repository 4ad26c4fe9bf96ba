"""The gate before the marts: no mart is built on a source whose blocking check last failed.

Dagster's ``blocking=True`` stops downstream assets in the same run only; the marts build in a
run of their own (the ``marts`` job, hourly), so a source's failed check would not stop them. The
dbt tests written on a source table (the studio's: totals equal lines, paid equals payments,
numbers gapless) are checks on that table's asset that the marts asset runs first, in its own run
(``assets.marts.source_checks``): their outcome there counts instead of an earlier one. Here
the marts asset reads, before dbt starts, the latest evaluation of every blocking check on every
asset upstream of each selected mart (per tenant partition: any tenant whose latest evaluation
failed counts) from the Dagster instance, and holds back the marts that read such a source (their
dbt descendants with them, as they are downstream too); the others build. The held-back marts get
an observation naming the checks that hold them; when every selected mart is held back the run
fails with that list.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES as COMPLETED,
    AssetCheckExecutionRecordStatus,
)


@dataclass(frozen=True, order=True)
class FailedCheck:
    """A blocking check whose latest evaluation for one tenant (``None``: unpartitioned) failed."""

    asset: str
    check: str
    tenant: str | None

    def __str__(self) -> str:
        return f"{self.asset}:{self.check}" + (f" (tenant {self.tenant})" if self.tenant else "")


def failed_blocking_checks(instance: dg.DagsterInstance, graph, assets: Iterable[dg.AssetKey],
                           fresh: Mapping[dg.AssetCheckKey, bool] | None = None) -> list[FailedCheck]:
    """The blocking checks on ``assets`` whose latest evaluation failed (with ERROR severity, the one
    that blocks), for any partition. A run still going or one that died before its checks ran
    (latest row only ``PLANNED``) does not clear the evaluation before it. ``fresh``: the checks
    this very run has just evaluated (the dbt tests on the source tables), which count instead."""
    fresh = fresh or {}
    keys = [k for k in graph.get_check_keys_for_assets(set(assets)) if graph.get(k).blocking]
    if not keys:
        return []
    now = [FailedCheck(key.asset_key.to_user_string(), key.name, None) for key in keys if fresh.get(key) is False]
    stored = [key for key in keys if key not in fresh]
    storage = instance.event_log_storage
    unsure = [(i.check_key, i.partition_key) for i in storage.get_asset_check_partition_info(stored)
              if i.latest_execution_status != AssetCheckExecutionRecordStatus.SUCCEEDED] if stored else []
    return sorted([*now, *(FailedCheck(key.asset_key.to_user_string(), key.name, partition)
                           for key, partition in unsure if failed(latest_evaluation(storage, key, partition)))])


def latest_evaluation(storage, key: dg.AssetCheckKey, partition: str | None):
    records = storage.get_asset_check_execution_history(key, limit=1, status=set(COMPLETED),
                                                       partition_filter=PartitionKeyFilter(key=partition))
    return records[0] if records else None


def failed(record) -> bool:
    return (record is not None and record.status == AssetCheckExecutionRecordStatus.FAILED
            and record.evaluation is not None and record.evaluation.severity == dg.AssetCheckSeverity.ERROR)


def held_back(context: dg.AssetExecutionContext, fresh: Mapping[dg.AssetCheckKey, bool] | None = None,
              marts: Iterable[dg.AssetKey] | None = None) -> dict[dg.AssetKey, list[FailedCheck]]:
    """Each selected mart (or each of ``marts``, those about to be built) with a failed blocking
    check upstream, and those checks. The marts' own checks (dbt tests) are not read: they run in
    this very run, after the marts."""
    graph = context.job_def.asset_layer.asset_graph  # the job's: its checks are its own only...
    graph = getattr(graph, "source_asset_graph", graph)  # ...the whole graph it was cut from has the sources'
    own = set(context.assets_def.keys)
    considered = own & set(context.selected_asset_keys if marts is None else marts)
    upstream = {key: ancestors(graph, key) - own for key in considered}
    failed = failed_blocking_checks(context.instance, graph, set().union(*upstream.values()), fresh)  # one read
    names = {key: {a.to_user_string() for a in assets} for key, assets in upstream.items()}
    held = {key: checks for key in considered if (checks := [c for c in failed if c.asset in names[key]])}
    return dict(sorted(held.items()))


def ancestors(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    seen: set[dg.AssetKey] = set()
    todo = [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in seen and graph.has(parent):
                seen.add(parent)
                todo.append(parent)
    return seen


def gate(context: dg.AssetExecutionContext, fresh: Mapping[dg.AssetCheckKey, bool] | None = None,
         marts: Iterable[dg.AssetKey] | None = None) -> tuple[tuple[str, ...], Iterator[dg.AssetObservation]]:
    """The names of the held-back marts (dbt models, left out of the build) and an observation on each; fails
    the run (naming asset, check and tenant) when no selected mart is clean. ``fresh``: outcomes
    of the checks this run evaluated before the marts (see ``failed_blocking_checks``); ``marts``:
    only those are considered (the hourly job's stale ones: an up-to-date mart is not built anyway,
    and each mart considered reads the instance's check records)."""
    marts = None if marts is None else set(marts)
    held = held_back(context, fresh, marts)
    if not held:
        return (), iter(())
    lines = [f"{key.to_user_string()}: held back by {', '.join(map(str, checks))}" for key, checks in held.items()]
    if set(held) >= set(context.selected_asset_keys if marts is None else marts) & set(context.assets_def.keys):
        raise dg.Failure("no mart built: a blocking check failed upstream of every selected mart\n" + "\n".join(lines),
                         metadata={"held_back": dg.MetadataValue.md("\n".join(f"- {line}" for line in lines))})
    context.log.warning("marts held back until their sources' blocking checks pass:\n" + "\n".join(lines))
    return tuple(key.path[-1] for key in held), observations(held)


def observations(held: Mapping[dg.AssetKey, list[FailedCheck]]) -> Iterator[dg.AssetObservation]:
    for key, checks in held.items():
        yield dg.AssetObservation(asset_key=key, metadata={
            "held_back": True, "failed_blocking_checks": dg.MetadataValue.md("\n".join(f"- {c}" for c in checks))})
