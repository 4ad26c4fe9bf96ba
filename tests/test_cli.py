"""The README's promise: `storehouse demo` runs the main job end to end on the embedded default."""

import os
import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from resources.dbt import model_names
from sandbox.server import free_port


def readme_queries() -> list[str]:
    """The SQL examples of the README's marts section."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## The marts (dbt)", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


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
    with engine.connect() as conn:  # the purchase reached the marts: dbt built them after it
        sold = conn.execute(sa.text("select sum(provisioned) from mart_orders_daily where tenant_id = 'numnaroad'"))
        assert sold.scalar() == 1
    built = re.search(r"✓ marts · (\d+) dbt models built and tested", done.stdout)
    assert built and int(built.group(1)) == len(model_names()), done.stdout[-2000:]
    queries = readme_queries()
    assert len(queries) >= 6
    with engine.connect() as conn:  # the README's example queries hold on the demo warehouse
        for query in queries:
            assert conn.execute(sa.text(query)).all(), query
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
