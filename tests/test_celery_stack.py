"""The sync jobs' steps on two Celery workers (two processes standing in for two machines), with
the Dagster instance on PostgreSQL: many MX tenants synced correctly, the provider pool respected
across both workers.

Needs a Redis database no one else uses (``STOREHOUSE_TEST_REDIS_URL``, e.g. redis://127.0.0.1:6379/5:
the workers would take another run's tasks from a shared one) and PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import postgres_url

REDIS_VAR = "STOREHOUSE_TEST_REDIS_URL"
REPO = Path(__file__).resolve().parent.parent
TENANTS = 4
POOL = "mx_merchant"
TEST_TAG = "storehouse/test"
RUN_TIMEOUT_S = 240

pytestmark = [
    pytest.mark.skipif(not os.environ.get(REDIS_VAR),
                       reason=f"needs Redis as the Celery broker: set {REDIS_VAR}=redis://host:6379/<a free db>"),
    pytest.mark.skipif(postgres_url() is None,
                       reason="needs PostgreSQL for the Dagster instance: set DATABASE_URL=postgresql://…"),
]


def _redis_ok(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3)
    try:
        client.ping()
    finally:
        client.close()


@pytest.fixture
def dagster_db(warehouse_url):
    """A fresh PostgreSQL database for the Dagster instance, beside the warehouse's."""
    base = make_url(postgres_url())
    name = f"{base.database}_dg_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base.set(drivername="postgresql+psycopg", database="postgres"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(drivername="postgresql+psycopg2", database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def stack_env(monkeypatch, tmp_path, warehouse_url, dagster_db):
    redis_url = os.environ[REDIS_VAR]
    _redis_ok(redis_url)  # configured but unreachable: a failure, not a skip
    env = {
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "STOREHOUSE_HOME": str(tmp_path),
        "DATABASE_URL": warehouse_url,
        "STOREHOUSE_DAGSTER_DATABASE_URL": dagster_db,
        "STOREHOUSE_EXECUTOR": "celery",
        "STOREHOUSE_CELERY_BROKER_URL": redis_url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _start_worker(name: str, log: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "celery", "-A", "pipelines.celery_worker", "worker", "-Q", "dagster",
            "-c", "1", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-l", "info"]
    return subprocess.Popen(argv, cwd=REPO, env=os.environ.copy(), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _busy_intervals(instance, run_ids: list[str], step_keys: set[str]) -> list[tuple[float, float]]:
    """(start, end) of every step of the pool, from the events the workers wrote."""
    import dagster as dg

    spans = []
    for run_id in run_ids:
        starts = {}
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or event.step_key not in step_keys:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                starts[event.step_key] = record.timestamp
            elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                spans.append((starts[event.step_key], record.timestamp))
    return spans


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    most = current = 0
    for _, delta in edges:
        current += delta
        most = max(most, current)
    return most


def test_two_celery_workers_sync_many_tenants_within_the_pool(stack_env, sandbox, engine, tmp_path):
    import dagster as dg

    from resources.warehouse import WarehouseResource
    from sensors.tenants import reconcile_partitions
    from settings import Settings
    from storehouse.instance import POOL_LIMITS, prepare
    from tests.test_mx_sync import connect, make_merchant
    from warehouse.tables.mx import transactions

    prepare(Settings())
    instance = dg.DagsterInstance.get()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert instance.event_log_storage.get_concurrency_info(POOL).slot_count == POOL_LIMITS[POOL]
    instance.event_log_storage.set_concurrency_slots(POOL, 1)  # the tightest limit: any breach shows

    tenants = {}
    for i in range(TENANTS):
        merchant = make_merchant(sandbox, transactions=40 + i)
        tenant = f"t-celery-{uuid.uuid4().hex[:8]}"
        connect(engine, sandbox, tenant, merchant)
        tenants[tenant] = merchant
    reconcile_partitions(instance, WarehouseResource(url=stack_env["DATABASE_URL"]))

    marker = uuid.uuid4().hex
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    workers = [_start_worker("w1", logs[0]), _start_worker("w2", logs[1])]
    workers_and_runs = workers
    try:
        # one run process per tenant, as the run launcher starts them: each orchestrates its steps on Celery
        started = time.monotonic()
        runs = [subprocess.Popen(
            [sys.executable, "-m", "dagster", "job", "execute", "-m", "pipelines.definitions", "-a", "defs",
             "-j", "mx_merchant_sync", "--tags", json.dumps({"dagster/partition": tenant, TEST_TAG: marker})],
            cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True) for tenant in tenants]
        workers_and_runs = workers + runs
        errors = [run.communicate(timeout=RUN_TIMEOUT_S)[1] for run in runs]
        elapsed = time.monotonic() - started
    finally:
        _stop(workers_and_runs)
    assert all(run.returncode == 0 for run in runs), [e[-2000:] for e in errors if e]
    records = instance.get_run_records(dg.RunsFilter(tags={TEST_TAG: marker}))
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == sorted(tenants)
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    run_ids = [r.dagster_run.run_id for r in records]

    # every tenant's payments landed, each in its own tenant
    with engine.connect() as conn:
        for tenant, merchant in tenants.items():
            loaded = conn.execute(sa.select(sa.func.count()).select_from(transactions)
                                  .where(transactions.c.tenant_id == tenant)).scalar_one()
            assert loaded == merchant["transactions"], tenant
    # every step ran on one of the workers (which of them is Celery's choice: with a pool limit of 1 no two
    # steps wait at once; .ci/stack checks that steps which do run at once go to both workers)
    hosts = set()
    for run_id in run_ids:
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            meta = record.dagster_event.engine_event_data.metadata
            if "Celery worker" in meta:
                hosts.add(meta["Celery worker"].value.split("@")[0])
    assert hosts and hosts <= {"w1", "w2"}, f"steps ran on {hosts} ({elapsed:.0f} s)"
    # never two steps of the pool at once, across runs and workers
    from pipelines.definitions import build_defs

    job_def = build_defs().resolve_job_def("mx_merchant_sync")
    pool_steps = {node.name for node in job_def.graph.node_dict.values() if node.definition.pool == POOL}
    assert pool_steps, "the MX assets declare their pool"
    spans = _busy_intervals(instance, run_ids, pool_steps)
    assert len(spans) == TENANTS * len(pool_steps)
    assert _max_overlap(spans) == 1
    assert httpx.get(f"{sandbox.url}/healthz", timeout=5).is_success
