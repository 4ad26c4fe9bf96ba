"""Several tenants in one run (issue 15): each tenant's partition materialised with its own
metadata and checks, one tenant's failure kept to itself, the hourly schedule asking for ranges."""

import dagster as dg
import sqlalchemy as sa

from assets.partitions import mx_merchant_partitions
from assets.tenant_batch import TENANTS_PER_RUN, batch_tags, ranges
from assets.transactions import mx_assets
from resources.dagster_resources import MxMerchantResource
from tests.test_mx_sync import connect, make_merchant
from warehouse.tables.core import sync_runs
from warehouse.types import now_utc

TX, INVOICES, CATEGORIES = "mx_merchant/transactions", "mx_merchant/invoices", "mx_merchant/product_categories"


def by_partition(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetMaterialization]:
    return {(e.asset_key.to_user_string(), e.partition): e.materialization
            for e in result.get_asset_materialization_events()}


def ledger(engine, tenant_id) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(sync_runs.c.stream, sync_runs.c.status)
                                   .where(sync_runs.c.tenant_id == tenant_id)).all())


def materialize_range(tenants, warehouse, instance, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(mx_assets, instance=instance, raise_on_error=False, tags=batch_tags(tenants[0], tenants[-1]),
                          resources={"warehouse": warehouse, "mx_merchant": MxMerchantResource()}, **kwargs)


def test_one_run_materialises_each_tenant_with_its_own_metadata_and_checks(sandbox, warehouse, engine, tenant_id):
    sizes = {f"{tenant_id}-{i}": n for i, n in enumerate([40, 75, 120])}
    for tenant, n in sizes.items():
        connect(engine, sandbox, tenant, make_merchant(sandbox, transactions=n), category_rules={"botox": "Injectables"})
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, list(sizes))

    result = materialize_range(list(sizes), warehouse, instance)

    assert result.success
    found = by_partition(result)
    assert set(found) == {(key, t) for key in (TX, INVOICES, CATEGORIES) for t in sizes}
    for tenant, n in sizes.items():
        assert found[(TX, tenant)].metadata["dagster/row_count"].value == n  # its own, not the range's
        assert found[(TX, tenant)].metadata["api_calls"].value == 1
        assert found[(CATEGORIES, tenant)].metadata["categories"].value.startswith("- ")
        assert ledger(engine, tenant) == [("mx_invoices", "success"), ("mx_products", "success"),
                                          ("mx_transactions", "success")]
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 * len(sizes) and all(c.passed for c in checks)
    assert {(c.check_name, c.partition) for c in checks} == {
        (name, t) for t in sizes for name in ("loaded_counts_reconcile_with_record_count",
                                              "quarantined_share_within_limit",
                                              "invoice_linked_transactions_have_their_invoice",
                                              "no_row_links_across_tenants")}
    # the instance holds them per partition, as the UI reads them
    for tenant, n in sizes.items():
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(TX.split("/")), asset_partitions=[tenant]), limit=1).records[0]
        assert record.asset_materialization.metadata["dagster/row_count"].value == n
    status = instance.get_status_by_partition(dg.AssetKey(TX.split("/")), list(sizes), mx_merchant_partitions)
    assert status is not None and set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}


def test_one_tenant_failing_keeps_the_others_and_fails_the_run_naming_it(sandbox, warehouse, engine, tenant_id):
    good = [f"{tenant_id}-a", f"{tenant_id}-c"]
    bad = f"{tenant_id}-b"
    for tenant in good:
        connect(engine, sandbox, tenant, make_merchant(sandbox, transactions=60))
    merchant = make_merchant(sandbox, transactions=60)
    connect(engine, sandbox, bad, {**merchant, "consumer_secret": "wrong-secret"})
    ordered = [good[0], bad, good[1]]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, ordered)

    result = materialize_range(ordered, warehouse, instance)

    assert not result.success
    found = by_partition(result)
    assert {t for _, t in found} == set(good)  # the tenant after the failing one was synced too
    for tenant in good:
        assert ledger(engine, tenant) == [("mx_invoices", "success"), ("mx_products", "success"),
                                          ("mx_transactions", "success")]
    assert ledger(engine, bad) == [("mx_transactions", "failed")]  # its chain stopped at its own failure
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = failure.step_failure_data.user_failure_data.description
    assert bad in text and "1 of the run's tenants failed" in text and "wrong-secret" not in text
    status = instance.get_status_by_partition(dg.AssetKey(TX.split("/")), ordered, mx_merchant_partitions)
    assert status == {good[0]: dg.AssetPartitionStatus.MATERIALIZED, bad: dg.AssetPartitionStatus.FAILED,
                      good[1]: dg.AssetPartitionStatus.MATERIALIZED}


def test_a_tenant_whose_blocking_check_fails_stops_alone(sandbox, warehouse, engine, tenant_id):
    """Every tenth payment of one tenant unreadable: its quarantine check blocks its invoices; the
    other tenant of the run goes on to its invoices and categories."""
    ok, short = f"{tenant_id}-ok", f"{tenant_id}-short"
    connect(engine, sandbox, ok, make_merchant(sandbox, transactions=80))
    connect(engine, sandbox, short, make_merchant(sandbox, transactions=200, malformed_every=10))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, [short, ok])

    result = materialize_range([short, ok], warehouse, instance)

    assert not result.success
    assert set(by_partition(result)) == {(TX, short), (TX, ok), (INVOICES, ok), (CATEGORIES, ok)}
    share = {(c.check_name, c.partition): c for c in result.get_asset_check_evaluations()}[
        ("quarantined_share_within_limit", short)]
    assert not share.passed and share.blocking
    assert ledger(engine, short) == [("mx_transactions", "success")]


def test_a_tenant_whose_failure_may_pass_is_tried_again_in_the_run(sandbox, warehouse, engine, tenant_id):
    """A tenant whose connection row is unreadable on the first try (our error, not the provider's)
    is tried again after the others; a connection fixed by then syncs in the same run."""
    tenants = [f"{tenant_id}-1", f"{tenant_id}-2"]
    for tenant in tenants:
        connect(engine, sandbox, tenant, make_merchant(sandbox, transactions=30))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, tenants)
    attempts = []

    from assets import transactions as module
    original = module.transactions_result

    def flaky(context, warehouse, mx_merchant, tenant, progress):
        attempts.append(tenant)
        if tenant == tenants[0] and attempts.count(tenant) == 1:
            raise sa.exc.OperationalError("select 1", {}, Exception("database restarting"))
        return original(context, warehouse, mx_merchant, tenant, progress)

    module.transactions_result = flaky
    try:
        result = materialize_range(tenants, warehouse, instance)
    finally:
        module.transactions_result = original
    assert result.success
    assert attempts == [tenants[0], tenants[1], tenants[0]]
    assert {t for _, t in by_partition(result)} == set(tenants)


def test_a_tenant_another_run_is_syncing_waits_and_is_reported(sandbox, warehouse, engine, tenant_id):
    busy, free = f"{tenant_id}-busy", f"{tenant_id}-free"
    for tenant in (busy, free):
        connect(engine, sandbox, tenant, make_merchant(sandbox, transactions=20))
    with engine.begin() as conn:  # another run is in the middle of the tenant's payments
        conn.execute(sa.insert(sync_runs).values(tenant_id=busy, stream="mx_transactions", run_id="other-run",
                                                 status="running", started_at=now_utc(), worker="elsewhere:1"))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, [busy, free])

    result = materialize_range([busy, free], warehouse, instance)

    assert not result.success
    assert {t for _, t in by_partition(result)} == {free}
    text = next(e for e in result.all_events if e.is_step_failure).step_failure_data.user_failure_data.description
    assert f"tenant {busy} is being synced by run other-run" in text
    assert ledger(engine, busy) == [("mx_transactions", "running")]  # the other run's row, untouched


def test_ranges_split_at_unwanted_keys_and_at_the_run_size():
    ordered = ["a", "b", "c", "d", "e", "f", "g"]
    assert ranges(ordered, {"a", "b", "d", "e", "f", "g"}, size=2) == [("a", "b"), ("d", "e"), ("f", "g")]
    assert ranges(ordered, set(ordered), size=10) == [("a", "g")]
    assert ranges(ordered, set(), size=3) == []
    assert batch_tags("a", "b") == {"dagster/asset_partition_range_start": "a",
                                    "dagster/asset_partition_range_end": "b"}
    assert TENANTS_PER_RUN >= 10
