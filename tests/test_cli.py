"""The README's promise: `storehouse demo` runs the main job end to end on the embedded default."""

import os
import subprocess
import sys

import sqlalchemy as sa

from sandbox.server import free_port


def test_demo_end_to_end_on_a_fresh_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_HOME")}
    env.update(STOREHOUSE_HOME=str(tmp_path / "home"), STOREHOUSE_SANDBOX_PORT=str(free_port()), COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-m", "storehouse.cli", "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Loaded into the warehouse" in done.stdout
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'warehouse.db'}")
    with engine.connect() as conn:
        per_tenant = dict(conn.execute(sa.text("select tenant_id, count(*) from transactions group by 1")).all())
    assert per_tenant == {"downtown-medical": 1500, "northside-clinic": 1200}
    with engine.connect() as conn:  # the purchase reached the marts: the shop's job ran again after it
        sold = conn.execute(sa.text("select sum(provisioned) from mart_orders_daily where tenant_id = 'numnaroad'"))
        assert sold.scalar() == 1
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").exists()


def test_tenants_add_list_remove_never_prints_credentials(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from storehouse.cli import app

    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    added = runner.invoke(app, ["tenants", "add", "clinic-a", "--name", "Clinic A", "--system", "mx_merchant",
                                "--base-url", "http://127.0.0.1:1/mx", "--credential", "consumer_secret=top-secret-1",
                                "--credential", "merchant_id=42", "--option", 'category_rules={"botox": "Injectables"}'])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["tenants", "list"], env={"COLUMNS": "200"})
    assert "clinic-a" in listed.output and "mx_merchant" in listed.output
    assert "top-secret-1" not in added.output + listed.output
    assert runner.invoke(app, ["tenants", "remove", "clinic-a"]).exit_code == 0
    assert runner.invoke(app, ["tenants", "remove", "clinic-a"]).exit_code == 1


def test_sync_request_is_queued_for_the_sensor(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from storehouse.cli import app
    from warehouse.syncs import pending_requests

    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    runner.invoke(app, ["tenants", "add", "clinic-b"])
    queued = runner.invoke(app, ["sync", "clinic-b", "--request", "--job", "mx_merchant_sync"])
    assert queued.exit_code == 0, queued.output
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    with engine.connect() as conn:
        assert [(r["tenant_id"], r["job"]) for r in pending_requests(conn)] == [("clinic-b", "mx_merchant_sync")]


def test_sync_shows_a_failed_check_as_failed_and_exits_non_zero(sandbox, warehouse_url, engine, tenant_id, tmp_path,
                                                                  monkeypatch):
    """Payments arrive faster than the sync can read them: the reconcile check fails, and the
    command says so (✗, the check and its figures) and exits 1 instead of printing ✓."""
    from typer.testing import CliRunner

    from storehouse.cli import app
    from tests.test_mx_sync import append_while_listing, connect, make_merchant

    merchant = make_merchant(sandbox, transactions=120)
    connect(engine, sandbox, tenant_id, merchant, page_size=50)
    append_while_listing(sandbox, merchant, count=60, every=1, times=10_000)
    monkeypatch.setenv("DATABASE_URL", warehouse_url)  # the test warehouse, SQLite or PostgreSQL
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # restored afterwards
    done = CliRunner().invoke(app, ["sync", tenant_id, "--job", "mx_merchant_sync"], env={"COLUMNS": "300"})
    assert done.exit_code == 1, done.output
    assert "✗ mx_merchant_sync" in done.output and "✓" not in done.output
    assert "✗ check failed mx_merchant/transactions: loaded_counts_reconcile_with_record_count" in done.output
    assert "record_count=" in done.output
