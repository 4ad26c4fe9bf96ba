"""Manual sync with live progress (seed 003), end to end against the sandbox MX fake: the staff API
queues it, the sync-request sensor turns it into a Dagster run of the tenant's partition, the run
moves through the seed's eight steps, the event stream shows it, its final statistics match the
warehouse, and a second request meanwhile gets 409."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from assets.partitions import mx_merchant_partitions
from assets.transactions import mx_assets
from people.users import create_user, grant
from pipelines.definitions import JOBS_BY_SYSTEM
from resources.dagster_resources import MxMerchantResource
from sensors.sync_progress import close_for_run
from sensors.sync_requests import build_sync_request_sensor
from syncing.progress import MX_STEPS
from syncing.progress_writer import ProgressWriter
from tests.people_world import PASSWORD, PASSWORDS, bearer, client, sign_in
from tests.test_mx_sync import connect, make_merchant
from warehouse import sync_progress
from warehouse.tables.core import quarantine, sync_runs
from warehouse.tables.mx import invoices, transactions
from warehouse.tables.people import audit_log
from warehouse.tenants import add_tenant

EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)  # the fake's first payment (sandbox/mx_merchant.py)


def staff(engine, tenant_id: str, role: str = "tenant_admin") -> str:
    email = f"{role}.sync@{tenant_id}.test"
    with engine.begin() as conn:
        grant(conn, create_user(conn, PASSWORDS, email, role, PASSWORD), tenant_id, role)
    return email


def launch(instance, warehouse, tenant_id: str) -> dg.RunRequest:
    """What the daemon does: the sensor's run request for this tenant's pending manual sync."""
    instance.add_dynamic_partitions(mx_merchant_partitions.name, [tenant_id])  # tenant discovery's tick
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    result = build_sync_request_sensor(JOBS_BY_SYSTEM)(context)
    mine = [r for r in result.run_requests if r.partition_key == tenant_id]
    assert len(mine) == 1
    return mine[0]


def run(instance, warehouse, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return dg.materialize(mx_assets, partition_key=request.partition_key, instance=instance, tags=request.tags,
                          resources={"warehouse": warehouse, "mx_merchant": MxMerchantResource()},
                          raise_on_error=False)


def events(c, url: str, headers: dict) -> list[tuple[str, dict]]:
    out, kind = [], None
    with c.stream("GET", url, headers={**headers, "Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                out.append((kind, json.loads(line[6:])))
    return out


def warehouse_figures(engine, tenant_id: str, run_id: str) -> dict:
    t = transactions.c
    with engine.connect() as conn:
        count = lambda table, *where: conn.execute(  # noqa: E731
            sa.select(sa.func.count()).select_from(table).where(table.c.tenant_id == tenant_id, *where)).scalar_one()
        refer = sa.or_(t.invoice_number.is_not(None), t.mx_invoice_id.is_not(None))
        calls = conn.execute(sa.select(sa.func.sum(sync_runs.c.api_calls)).where(
            sync_runs.c.tenant_id == tenant_id, sync_runs.c.run_id == run_id)).scalar_one()
        return {"transactions": count(transactions), "invoices": count(invoices),
                "referring": count(transactions, refer), "linked": count(transactions, refer, t.invoice_id.is_not(None)),
                "quarantined": count(quarantine), "api_calls": calls}


@pytest.fixture
def slow_mx(sandbox_reset):
    """Each MX call takes a little while, so a request can arrive while the sync runs."""
    httpx.put(f"{sandbox_reset.url}/_sandbox/faults/mx", json={"latency_ms": 40}).raise_for_status()
    return sandbox_reset


def test_a_manual_sync_moves_through_the_steps_and_its_statistics_match_the_warehouse(
        slow_mx, engine, warehouse, warehouse_url, tenant_id):
    merchant = make_merchant(slow_mx, transactions=1500, malformed_every=250)
    connect(engine, slow_mx, tenant_id, merchant, page_size=50, page_concurrency=1,
            category_rules={"botox": "Injectables"})
    instance = dg.DagsterInstance.ephemeral()
    with client(engine, warehouse_url) as c:
        auth = bearer(sign_in(c, staff(engine, tenant_id))["access_token"])
        answer = c.post(f"/tenants/{tenant_id}/syncs", json={"mode": "incremental"}, headers=auth)
        assert answer.status_code == 202, answer.text
        sync_id, url = answer.json()["id"], answer.json()["url"]
        assert answer.headers["location"] == url == f"/tenants/{tenant_id}/syncs/{sync_id}"
        queued = c.get(url, headers=auth).json()
        assert (queued["status"], queued["step"], queued["percent"]) == ("queued", 0, 0)
        again = c.post(f"/tenants/{tenant_id}/syncs", json={"mode": "incremental"}, headers=auth)
        assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
        assert again.json()["sync_id"] == sync_id

        request = launch(instance, warehouse, tenant_id)
        assert request.tags[sync_progress.TAG] == str(sync_id)
        results = []
        worker = threading.Thread(target=lambda: results.append(run(instance, warehouse, request)))
        worker.start()
        try:
            deadline = time.monotonic() + 60
            while (now := c.get(url, headers=auth).json())["status"] != "running" or now["step"] < 1:
                assert time.monotonic() < deadline and now["status"] in ("queued", "running"), now
                time.sleep(0.05)
            during = c.post(f"/tenants/{tenant_id}/syncs", json={"mode": "incremental"}, headers=auth)
            assert during.status_code == 409, during.text  # one manual sync per tenant while it runs
            stream = events(c, url, auth)  # until it ends
        finally:
            worker.join(120)
        assert results and results[0].success
        final = c.get(url, headers=auth).json()
        listed = c.get(f"/tenants/{tenant_id}/syncs", headers=auth).json()
        after = c.post(f"/tenants/{tenant_id}/syncs", json={"mode": "incremental"}, headers=auth)
        assert after.status_code == 202  # the first one ended: the tenant may sync again

    progress = [data for kind, data in stream if kind == "progress"]
    steps = [p["step"] for p in progress]
    assert steps == sorted(steps) and len(set(steps)) >= 3 and steps[-1] == 8, steps
    percents = [p["percent"] for p in progress]
    assert percents == sorted(percents) and 0 <= percents[0] < 100 and percents[-1] == 100
    assert stream[-1] == ("end", {"status": "succeeded"})
    assert any(0 < p["stats"]["payments_read"] < final["stats"]["payments_read"] for p in progress), \
        "the counts grew while it ran"

    assert (final["status"], final["step"], final["step_name"], final["percent"]) == \
        ("succeeded", 8, MX_STEPS[8], 100)
    assert final["run_id"] == results[0].run_id and final["finished_at"] and final["error"] is None
    figures, stats = warehouse_figures(engine, tenant_id, results[0].run_id), final["stats"]
    assert stats["payments_read"] == 1500 == figures["transactions"] + figures["quarantined"]
    assert stats["payments_new"] == figures["transactions"] and stats["payments_updated"] == 0
    assert stats["quarantined"] == figures["quarantined"] == 6
    assert stats["invoices_fetched"] == stats["invoices_wanted"] == figures["invoices"] > 0
    assert stats["linkage_rate"] == round(figures["linked"] / figures["referring"], 4) == 1.0
    assert stats["api_calls"] == figures["api_calls"]
    assert stats["calls_per_transaction"] == round(figures["api_calls"] / 1500, 4)
    assert stats["errors"] == 0
    assert [s["id"] for s in listed] == [sync_id] and listed[0]["status"] == "succeeded"
    with engine.connect() as conn:
        audited = conn.execute(sa.select(audit_log.c.detail).where(
            audit_log.c.tenant_id == tenant_id, audit_log.c.action == "sync.manual")
            .order_by(audit_log.c.id)).scalars().all()
    assert audited[0]["sync_id"] == sync_id and audited[0]["mode"] == "incremental"

    second = run(instance, warehouse, launch(instance, warehouse, tenant_id))  # the one queued after it ended
    assert second.success
    with engine.connect() as conn:
        again = sync_progress.get(conn, tenant_id, after.json()["id"])
    figures = warehouse_figures(engine, tenant_id, second.run_id)
    assert again["status"] == "succeeded" and again["stats"]["payments_new"] == 0
    assert again["stats"]["api_calls"] == figures["api_calls"] > 0


def test_recovery_rereads_a_date_range_and_repairs_what_differs(sandbox_reset, engine, warehouse, warehouse_url,
                                                                tenant_id):
    merchant = make_merchant(sandbox_reset, transactions=3000)
    connect(engine, sandbox_reset, tenant_id, merchant, page_size=500)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, [tenant_id])
    assert dg.materialize(mx_assets, partition_key=tenant_id, instance=instance,
                          resources={"warehouse": warehouse, "mx_merchant": MxMerchantResource()}).success
    day = EPOCH.date() + dt.timedelta(days=1)
    start = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
    t, i = transactions.c, invoices.c
    with engine.begin() as conn:  # damage inside the range (and one row outside it, which must stay damaged)
        inside = conn.execute(sa.select(t.id).where(t.tenant_id == tenant_id, t.created_at >= start,
                                                    t.created_at < start + dt.timedelta(days=1)).order_by(t.id)
                              ).scalars().all()
        linked = conn.execute(sa.select(t.invoice_id).where(t.tenant_id == tenant_id, t.id.in_(inside),
                                                            t.invoice_id.is_not(None)).limit(1)).scalar_one()
        conn.execute(sa.update(transactions).where(t.tenant_id == tenant_id, t.id.in_(inside[:5])).values(amount=0))
        conn.execute(sa.delete(transactions).where(t.tenant_id == tenant_id, t.id.in_(inside[5:8])))
        conn.execute(sa.update(transactions).where(t.tenant_id == tenant_id, t.id == inside[-1] + 1000).values(amount=0))
        conn.execute(sa.update(invoices).where(i.tenant_id == tenant_id, i.id == linked).values(total_amount=0))
    assert 800 < len(inside) < 1000

    with client(engine, warehouse_url) as c:
        auth = bearer(sign_in(c, staff(engine, tenant_id, "tenant_owner"))["access_token"])
        bad = c.post(f"/tenants/{tenant_id}/syncs", json={"mode": "recovery"}, headers=auth)
        assert bad.status_code == 422
        answer = c.post(f"/tenants/{tenant_id}/syncs", headers=auth,
                        json={"mode": "recovery", "date_from": day.isoformat(), "date_to": day.isoformat()})
        assert answer.status_code == 202, answer.text
        result = run(instance, warehouse, launch(instance, warehouse, tenant_id))
        assert result.success
        final = c.get(answer.json()["url"], headers=auth).json()
    assert final["status"] == "succeeded" and final["mode"] == "recovery"
    stats = final["stats"]
    assert stats["payments_read"] == len(inside)
    assert (stats["payments_new"], stats["payments_updated"]) == (3, 5)
    assert stats["api_calls"] < 20 + 2 + stats["invoices_fetched"] + 2  # bisect, two pages, the invoices
    with engine.connect() as conn:
        amounts = conn.execute(sa.select(t.id, t.amount).where(t.tenant_id == tenant_id, t.id.in_(
            [*inside[:8], inside[-1] + 1000]))).all()
        total = conn.execute(sa.select(i.total_amount).where(i.tenant_id == tenant_id, i.id == linked)).scalar_one()
    repaired = {k: v for k, v in amounts}
    assert len(repaired) == 9 and all(repaired[k] > 0 for k in inside[:8])
    assert repaired[inside[-1] + 1000] == 0  # outside the range: left alone
    assert total > 0


def test_recovery_reads_at_most_1000_payments(sandbox_reset, engine, warehouse, tenant_id):
    from syncing.mx import MxSyncOptions
    from syncing.mx_recovery import recover_transactions
    from warehouse.tenants import get_connection

    merchant = make_merchant(sandbox_reset, transactions=3000)
    connect(engine, sandbox_reset, tenant_id, merchant)
    with engine.connect() as conn:
        connection = get_connection(conn, tenant_id, "mx_merchant")
    client_ = MxMerchantResource().client_for(connection)
    try:
        stats = recover_transactions(engine, client_, tenant_id, MxSyncOptions(page_size=400), date_from=EPOCH,
                                     date_to=EPOCH + dt.timedelta(days=3))
    finally:
        client_.close()
    assert stats.rows == stats.rows_written == 1000
    with engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(transactions.c.created_at)).where(
            transactions.c.tenant_id == tenant_id)).scalar_one()
    assert newest < EPOCH + dt.timedelta(days=3)  # the range's newest end, read down from there


def test_a_run_that_fails_before_the_progress_ends_closes_it_failed(engine, tenant_id):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Clinic")
    sync_id = sync_progress.request_manual_sync(engine, tenant_id, "mx_merchant_sync", None)
    failed = dg.DagsterRun(job_name="mx_merchant_sync", run_id="r" * 32, status=dg.DagsterRunStatus.FAILURE,
                           tags={sync_progress.TAG: str(sync_id)})
    with engine.begin() as conn:
        assert close_for_run(conn, failed)
        assert not close_for_run(conn, failed)  # closed once
    with engine.connect() as conn:
        row = sync_progress.get(conn, tenant_id, sync_id)
    assert (row["status"], row["error"], row["run_id"]) == ("failed", "the run failed", "r" * 32)
    assert sync_progress.request_manual_sync(engine, tenant_id, "mx_merchant_sync", None) > sync_id


def test_the_sync_request_sensor_closes_the_progress_of_runs_that_ended(engine, warehouse, tenant_id):
    """Runs that end without closing their progress (canceled before a step, a job that reports no
    steps) are closed by the sensor's next tick; a run still going is left open."""
    instance = dg.DagsterInstance.ephemeral()
    ids = {}
    for status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.STARTED):
        tenant = f"{tenant_id}-{status.value.lower()}"
        with engine.begin() as conn:
            add_tenant(conn, tenant, "Clinic")
        ids[status] = sync_progress.request_manual_sync(engine, tenant, "mx_merchant_sync", None, run_here=True)
        instance.add_run(dg.DagsterRun(job_name="mx_merchant_sync", run_id=uuid.uuid4().hex, status=status,
                                       tags={sync_progress.TAG: str(ids[status])}))
    build_sync_request_sensor(JOBS_BY_SYSTEM)(dg.build_sensor_context(instance=instance,
                                                                      resources={"warehouse": warehouse}))
    with engine.connect() as conn:
        got = {status: sync_progress.get(conn, f"{tenant_id}-{status.value.lower()}", i) for status, i in ids.items()}
    canceled, succeeded, started = (got[s] for s in ids)
    assert (canceled["status"], canceled["error"]) == ("failed", "the run was canceled")
    assert (succeeded["status"], succeeded["percent"]) == ("succeeded", 100)
    assert started["status"] == "queued"  # still running: left open


def test_two_requests_racing_cannot_both_get_in(engine, tenant_id):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Clinic")
    outcomes, barrier = [], threading.Barrier(4)

    def ask():
        barrier.wait()
        try:
            outcomes.append(sync_progress.request_manual_sync(engine, tenant_id, "mx_merchant_sync", None))
        except sync_progress.Busy:
            outcomes.append("busy")

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str).count("busy") == 3


def test_storehouse_sync_shows_the_progress_in_process_and_when_it_waits_on_a_request(
        sandbox, engine, warehouse, warehouse_url, tenant_id, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from storehouse.cli import app
    from warehouse.syncs import pending_requests

    merchant = make_merchant(sandbox, transactions=300)
    connect(engine, sandbox, tenant_id, merchant, page_size=100)
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    runner = CliRunner()
    done = runner.invoke(app, ["sync", tenant_id, "--job", "mx_merchant_sync"], env={"COLUMNS": "300"})
    assert done.exit_code == 0, done.output
    assert f"step 8/8: {MX_STEPS[8]}" in done.output
    assert "payments 300 read, 300 new, 0 updated" in done.output and "100%" in done.output
    assert "✓ manual sync" in done.output and "✓ mx_merchant_sync" in done.output
    with engine.connect() as conn:
        (row,) = sync_progress.listing(conn, tenant_id)
        assert row["status"] == "succeeded" and row["requested_by"] is None
        assert not [r for r in pending_requests(conn) if r["tenant_id"] == tenant_id]  # not for the daemon

    outputs = []
    waiting = threading.Thread(target=lambda: outputs.append(runner.invoke(
        app, ["sync", tenant_id, "--job", "mx_merchant_sync", "--request", "--wait", "--recover-from", "2025-01-01"],
        env={"COLUMNS": "300"})))
    waiting.start()
    try:
        deadline = time.monotonic() + 30
        while not [r for r in pending_requests_of(engine, tenant_id)]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        instance = dg.DagsterInstance.ephemeral()
        assert run(instance, warehouse, launch(instance, warehouse, tenant_id)).success
    finally:
        waiting.join(60)
    out = outputs[0]
    assert out.exit_code == 0, out.output
    assert "sync requested" in out.output and "step 8/8" in out.output
    assert "payments 300 read, 0 new, 0 updated" in out.output and "recovery · succeeded" in out.output


def pending_requests_of(engine, tenant_id):
    from warehouse.syncs import pending_requests

    with engine.connect() as conn:
        return [r for r in pending_requests(conn) if r["tenant_id"] == tenant_id]


def test_a_sync_no_run_picked_up_or_whose_run_went_silent_stops_blocking_the_tenant(engine, tenant_id):
    from warehouse.tables.core import sync_requests
    from warehouse.tables.sync_progress import sync_progress as table
    from warehouse.types import now_utc

    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Clinic")
    first = sync_progress.request_manual_sync(engine, tenant_id, "mx_merchant_sync", None)
    with pytest.raises(sync_progress.Busy):
        sync_progress.request_manual_sync(engine, tenant_id, "mx_merchant_sync", None)
    with engine.begin() as conn:  # no daemon picked it up for eleven minutes
        conn.execute(sa.update(table).where(table.c.request_id == first)
                     .values(requested_at=now_utc() - dt.timedelta(minutes=11)))
    second = sync_progress.request_manual_sync(engine, tenant_id, "mx_merchant_sync", None)
    ProgressWriter(engine, second, "run-2").step(1, MX_STEPS[1])
    with engine.begin() as conn:  # its run died without a word for 31 minutes
        conn.execute(sa.update(table).where(table.c.request_id == second)
                     .values(updated_at=now_utc() - dt.timedelta(minutes=31)))
    third = sync_progress.request_manual_sync(engine, tenant_id, "mx_merchant_sync", None)
    with engine.connect() as conn:
        rows = {r["id"]: r for r in sync_progress.listing(conn, tenant_id)}
        withdrawn = conn.execute(sa.select(sync_requests.c.status).where(sync_requests.c.id == first)).scalar_one()
    assert [rows[i]["status"] for i in (first, second, third)] == ["failed", "failed", "queued"]
    assert "daemon" in rows[first]["error"] and "stopped" in rows[second]["error"]
    assert withdrawn == "expired"  # the sensor will not start it late


def test_counts_added_from_many_threads_are_all_written(engine, tenant_id):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Clinic")
    sync_id = sync_progress.request_manual_sync(engine, tenant_id, "mx_merchant_sync", None)
    writer = ProgressWriter(engine, sync_id, "run", interval=0)  # a write on every add

    def add():
        for _ in range(50):
            writer.add(api_calls=1, payments_read=10)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.succeed()
    with engine.connect() as conn:
        row = sync_progress.get(conn, tenant_id, sync_id)
    assert (row["stats"]["api_calls"], row["stats"]["payments_read"]) == (200, 2000)
    assert row["status"] == "succeeded" and row["stats"]["calls_per_transaction"] == 0.1
