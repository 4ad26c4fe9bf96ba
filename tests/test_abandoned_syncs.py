"""A sync whose Dagster run ended, or whose process died, is closed as abandoned with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dagster as dg
import httpx
import sqlalchemy as sa
from dagster._core.instance.ref import InstanceRef

from sensors.abandoned_syncs import abandoned_syncs, close_abandoned_syncs
from tests.test_mx_sync import connect, make_merchant
from warehouse import secrets
from syncing.result import SyncResult
from syncing.state import SyncLedger
from warehouse.tables.core import sync_runs


@dg.op
def step() -> None:
    raise RuntimeError("the step broke")


@dg.job
def a_job() -> None:
    step()


def ledger_rows(engine, tenant_id: str) -> dict[str, tuple[str, str | None]]:
    r = sync_runs.c
    with engine.connect() as conn:
        return {stream: (status, error) for stream, status, error in conn.execute(
            sa.select(r.stream, r.status, r.error).where(r.tenant_id == tenant_id))}


def test_syncs_of_failed_or_canceled_runs_are_closed_and_running_ones_kept(warehouse, engine, tenant_id):
    instance = dg.DagsterInstance.ephemeral()
    failed = a_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    canceled = instance.create_run_for_job(a_job, status=dg.DagsterRunStatus.STARTED)
    instance.report_run_canceled(canceled)
    running = instance.create_run_for_job(a_job, status=dg.DagsterRunStatus.STARTED)
    SyncLedger(engine, tenant_id, "of_failed", failed.run_id)
    SyncLedger(engine, tenant_id, "of_canceled", canceled.run_id)
    SyncLedger(engine, tenant_id, "of_running", running.run_id)
    SyncLedger(engine, tenant_id, "finished", failed.run_id).finish(SyncResult(), "failed", "its own error")

    result = abandoned_syncs(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}))

    assert isinstance(result, dg.SkipReason)
    rows = ledger_rows(engine, tenant_id)
    assert rows["of_failed"] == ("abandoned", f"abandoned: its Dagster run {failed.run_id} failed")
    assert rows["of_canceled"] == ("abandoned", f"abandoned: its Dagster run {canceled.run_id} was canceled")
    assert rows["of_running"] == ("running", None)  # its run and this process are alive
    assert rows["finished"] == ("failed", "its own error")  # closed rows are left as they are
    close_abandoned_syncs(instance, engine)  # a second sweep changes nothing of them
    assert ledger_rows(engine, tenant_id) == rows


def test_a_cli_sync_killed_mid_way_is_closed_as_abandoned(sandbox_reset, warehouse_url, warehouse, engine, tenant_id,
                                                         tmp_path):
    merchant = make_merchant(sandbox_reset, transactions=3000)
    connect(engine, sandbox_reset, tenant_id, merchant)
    httpx.put(f"{sandbox_reset.url}/_sandbox/faults/mx", json={"latency_ms": 3000}).raise_for_status()
    home = tmp_path / "home"
    env = {**os.environ, "STOREHOUSE_HOME": str(home), "DATABASE_URL": warehouse_url,
           "STOREHOUSE_SECRETS_KEY_FILE": str(secrets.key_source()[1])}
    env.pop("DAGSTER_HOME", None)
    cli = subprocess.Popen([sys.executable, "-m", "storehouse.cli", "sync", tenant_id, "--job", "mx_merchant_sync"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while ledger_rows(engine, tenant_id).get("mx_transactions", (None,))[0] != "running":
            assert cli.poll() is None, cli.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the sync never started"
            time.sleep(0.2)
    finally:
        cli.kill()  # SIGKILL: nothing of the process runs after this
        cli.wait(30)
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster")))
    try:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED  # Dagster still thinks it runs
        assert ledger_rows(engine, tenant_id)["mx_transactions"][0] == "running"

        abandoned_syncs(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}))
    finally:
        instance.dispose()

    status, error = ledger_rows(engine, tenant_id)["mx_transactions"]
    assert status == "abandoned"
    assert error.startswith("abandoned: the process running it (") and f":{cli.pid})" in error and "is gone" in error
