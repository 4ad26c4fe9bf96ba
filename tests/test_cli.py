"""The README's promise: `storehouse demo` runs the main job end to end on the embedded default."""

import os
import re
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
    # The dispensaries' webhook URLs, each token shown this once (their POS systems do not sign).
    assert re.search(r"treez webhook URL \(register it with treez; it is shown this once\): "
                     r"http://\S+/shops/mile-high-treez/webhooks/pos/treez\?token=[\w-]{40,}", done.stdout)
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
                                "--credential", "consumer_key=key-1", "--credential", "merchant_id=42", "--option", 'category_rules={"botox": "Injectables"}'])
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
