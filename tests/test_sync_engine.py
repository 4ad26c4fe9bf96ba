"""The sync engine (``syncing``) on its own, without Dagster: progress, the per-connection loop."""

import httpx
import pytest
import sqlalchemy as sa

from resources.breaker import CircuitBreaker, MemoryBreakerStore
from resources.http import ProviderError
from resources.mx_merchant import client_for
from syncing.mx import MxSyncOptions, reconciliation, sync_invoices, sync_products, sync_tenant, sync_transactions
from syncing.progress import MX_STEPS, Tally
from syncing.runs import CIRCUIT_OPEN, FAILED, SYNCED, sync_each
from tests.test_mx_sync import connect, make_merchant, stats
from warehouse.tables.core import sync_runs
from warehouse.tenants import get_connection, set_connection



def mx_client(connection):
    """MX's plain client factory (no Dagster resource), with a short backoff for the tests."""
    return client_for(connection, backoff_base_s=0.01)


def mx_sync(engine, connection, tenant_id, progress):
    opts = MxSyncOptions(page_size=100)
    client = mx_client(connection)
    try:
        tx = sync_transactions(engine, client, tenant_id, opts, progress=progress)
        inv = sync_invoices(engine, client, tenant_id, opts, progress=progress)
        sync_products(engine, tenant_id, {"botox": "Injectables"}, progress=progress)
        return tx, inv
    finally:
        client.close()


def test_the_mx_sync_reports_the_eight_steps_and_its_counts_as_they_grow(sandbox, engine, tenant_id):
    merchant = make_merchant(sandbox, transactions=300, malformed_every=50)
    connection = connect(engine, sandbox, tenant_id, merchant)
    first = Tally()
    tx, inv = mx_sync(engine, connection, tenant_id, first)
    s = stats(sandbox, merchant)
    assert first.steps == list(MX_STEPS.items())
    assert first.counts["payments_read"] == tx.rows == 300
    assert first.counts["payments_new"] == 294 and first.counts["payments_updated"] == 0
    assert first.counts["quarantined"] == tx.quarantined + inv.quarantined == 6
    assert first.counts["invoices_fetched"] == s["invoices"]
    assert first.counts["api_calls"] == tx.api_calls + inv.api_calls == sum(s["calls"].values())
    assert first.counts.get("errors", 0) == 0
    before = reconciliation(engine, tenant_id)
    assert before.reconciled and before.loaded == 294

    httpx.post(f"{sandbox.url}/_sandbox/mx/merchants/{merchant['merchant_id']}/grow", json={"count": 60}).raise_for_status()
    again = Tally()
    tx, inv = mx_sync(engine, connection, tenant_id, again)
    assert again.counts["payments_new"] == reconciliation(engine, tenant_id).loaded - before.loaded > 0
    assert again.counts["payments_new"] + again.counts["payments_updated"] == tx.rows_written
    assert again.counts["api_calls"] == tx.api_calls + inv.api_calls


def test_without_a_progress_the_sync_does_the_same(sandbox, engine, tenant_id):
    merchant = make_merchant(sandbox, transactions=120)
    connection = connect(engine, sandbox, tenant_id, merchant)
    tx, inv = mx_sync(engine, connection, tenant_id, None)
    assert (tx.rows, tx.api_calls, inv.api_calls) == (120, 2, -(-stats(sandbox, merchant)["invoices"] // 500)
                                                      + stats(sandbox, merchant)["invoices"])


def ledger(engine, tenant_id):
    r = sync_runs.c
    with engine.connect() as conn:
        return conn.execute(sa.select(r.stream, r.status, r.error, r.rows).where(r.tenant_id == tenant_id)
                            .order_by(r.id)).all()


def payments(engine, tenant_id):
    return lambda client, connection: sync_transactions(engine, client, tenant_id, MxSyncOptions(page_size=100))


def test_sync_each_records_every_connection_and_returns_its_outcome(sandbox, engine, tenant_id):
    merchant = make_merchant(sandbox, transactions=50)
    connection = connect(engine, sandbox, tenant_id, merchant)
    [ok] = sync_each(engine, tenant_id, "run-1", [connection], lambda s: f"t:{s}", mx_client,
                     payments(engine, tenant_id))
    assert (ok.status, ok.stats.rows, ok.exc) == (SYNCED, 50, None) and ok.duration > 0
    with engine.begin() as conn:  # the credentials go wrong
        set_connection(conn, tenant_id, "mx_merchant", connection.base_url,
                       {**connection.credentials, "consumer_secret": "wrong"}, {})
        bad = get_connection(conn, tenant_id, "mx_merchant")
    warned = []
    [failed] = sync_each(engine, tenant_id, "run-2", [bad], lambda s: f"t:{s}", mx_client,
                         payments(engine, tenant_id), warn=warned.append)
    assert failed.status == FAILED and failed.auth and not failed.retryable and not failed.config
    assert failed.last_good is not None and "wrong" not in (failed.error or "") and len(warned) == 1
    assert [(s, st) for s, st, _, _ in ledger(engine, tenant_id)] == [("t:mx_merchant", "success"),
                                                                     ("t:mx_merchant", "failed")]


def test_an_open_breaker_skips_the_call_and_a_bug_is_recorded_and_raised(sandbox, engine, tenant_id):
    merchant = make_merchant(sandbox, transactions=20)
    connection = connect(engine, sandbox, tenant_id, merchant)
    breaker = CircuitBreaker(MemoryBreakerStore(), tenant_id, "mx_merchant", failure_threshold=1, reset_after=3600)
    breaker.record_failure(ProviderError("mx_merchant", "down"))
    before = sum(stats(sandbox, merchant)["calls"].values())
    [skipped] = sync_each(engine, tenant_id, None, [connection], lambda s: "t", mx_client,
                          payments(engine, tenant_id), breaker_for=lambda s: breaker)
    assert skipped.status == CIRCUIT_OPEN and sum(stats(sandbox, merchant)["calls"].values()) == before

    def bug(client, connection):
        raise KeyError("ours")

    with pytest.raises(KeyError):
        sync_each(engine, tenant_id, None, [connection], lambda s: "t", mx_client, bug)
    assert [(st, err) for _, st, err, _ in ledger(engine, tenant_id)] == [
        ("skipped", "circuit open: mx_merchant: down"), ("failed", "KeyError: 'ours'")]


def test_the_whole_mx_sync_runs_without_dagster_in_three_ledger_rows(sandbox, engine, tenant_id):
    merchant = make_merchant(sandbox, transactions=150)
    connect(engine, sandbox, tenant_id, merchant)
    progress = Tally()
    results = sync_tenant(engine, tenant_id, mx_client, "manual-1", progress)
    assert [i for i, _ in progress.steps] == list(range(1, 9))
    assert results["mx_transactions"].rows == progress.counts["payments_read"] == 150
    assert [(s, st) for s, st, _, _ in ledger(engine, tenant_id)] == [
        ("mx_transactions", "success"), ("mx_invoices", "success"), ("mx_products", "success")]
    assert sync_tenant(engine, "no-such-tenant", mx_client) is None
