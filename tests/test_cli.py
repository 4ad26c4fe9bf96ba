"""The README's promise: `storehouse demo` runs the main job end to end on the embedded default."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from resources.dbt import model_names
from sandbox.server import free_port


def readme_queries() -> list[str]:
    """The SQL examples of the README's marts section."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## The marts (dbt)", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def _demo_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_HOME", "STOREHOUSE_SHOP_PUBLIC_URL")}
    env.update(STOREHOUSE_HOME=str(tmp_path / "home"), STOREHOUSE_SANDBOX_PORT=str(free_port()),
               STOREHOUSE_API_PORT=str(free_port()), STOREHOUSE_UI_PORT=str(free_port()), COLUMNS="200")
    return env


def _this_run(output: str, tenant: str) -> tuple[int, int, int]:
    """(received, written, API calls) of the tenant's row in the demo's closing table."""
    row = next(line for line in output.splitlines() if f" {tenant} " in line and "│" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    return tuple(int(c.replace(",", "")) for c in cells[1:4])


def test_demo_end_to_end_on_a_fresh_home_then_again(tmp_path):
    env = _demo_env(tmp_path)
    runs = []
    for _ in range(2):  # a second run: what it did itself, and no eSIM an earlier order already has
        done = subprocess.run([sys.executable, "-m", "storehouse.cli", "demo"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "What this run did" in done.stdout
        built = re.search(r"✓ marts · (\d+) dbt models built and tested", done.stdout)
        # the first run builds every mart; the second (the hourly job: changed inputs only) those its syncs moved
        assert built and (int(built.group(1)) == len(model_names()) if not runs
                          else 0 < int(built.group(1)) < len(model_names())), done.stdout[-2000:]
        runs.append(done.stdout)
    # The dispensaries' webhook URLs, each token shown this once (their POS systems do not sign).
    assert re.search(r"treez webhook URL \(register it with treez; it is shown this once\): "
                     r"http://\S+/shops/mile-high-treez/webhooks/pos/treez\?token=[\w-]{40,}", runs[0])
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'warehouse.db'}")
    with engine.connect() as conn:
        per_tenant = dict(conn.execute(sa.text("select tenant_id, count(*) from transactions group by 1")).all())
        iccids = conn.execute(sa.text("select iccid from order_esims where tenant_id = 'numnaroad'")).scalars().all()
        sold = conn.execute(sa.text("select sum(provisioned) from mart_orders_daily where tenant_id = 'numnaroad'"))
        assert sold.scalar() == 2  # each purchase reached the marts: dbt built them after it
        studio = conn.execute(sa.text("select system from tenant_connections where tenant_id = 'print-sydney'"))
        assert sorted(studio.scalars()) == ["resend", "stripe"]  # its invoices can be paid and emailed
        for query in readme_queries():  # the README's example queries hold on the demo warehouse
            assert conn.execute(sa.text(query)).all(), query
    assert per_tenant == {"downtown-medical": 1500, "northside-clinic": 1200}
    assert len(iccids) == len(set(iccids)) == 2, iccids
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").exists()

    first, second = (_this_run(out, "downtown-medical") for out in runs)
    assert first[1] >= 1500 and first[2] > 2  # its 1,500 transactions and more; pages, then a call per invoice
    assert second[1] < first[1] and 1 <= second[2] < first[2], runs[1]  # incremental: little new, a call or two
    # the URLs it prints are where things will be, from the settings (never a fixed port)
    for out in runs:
        assert f"http://127.0.0.1:{env['STOREHOUSE_API_PORT']}/docs" in out
        assert f"http://127.0.0.1:{env['STOREHOUSE_UI_PORT']}" in out and ":8000" not in out
        assert f"order page: http://127.0.0.1:{env['STOREHOUSE_API_PORT']}/shops/numnaroad/orders/ord_" in out


def test_up_serves_the_sandbox_the_api_and_dagster_until_interrupted(tmp_path):
    env = _demo_env(tmp_path)
    urls = {"sandbox": f"http://127.0.0.1:{env['STOREHOUSE_SANDBOX_PORT']}/healthz",
            "api": f"http://127.0.0.1:{env['STOREHOUSE_API_PORT']}/readyz",
            "docs": f"http://127.0.0.1:{env['STOREHOUSE_API_PORT']}/docs",
            "dagster": f"http://127.0.0.1:{env['STOREHOUSE_UI_PORT']}/server_info"}
    proc = subprocess.Popen([sys.executable, "-m", "storehouse.cli", "up"], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not any("Storehouse is up" in line for line in lines):
            assert proc.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.5)
        for name, url in urls.items():
            assert httpx.get(url, timeout=10).status_code == 200, name
        printed = "".join(lines)
        assert f"http://127.0.0.1:{env['STOREHOUSE_API_PORT']}/docs" in printed
        assert f"http://127.0.0.1:{env['STOREHOUSE_UI_PORT']}" in printed
        assert env["STOREHOUSE_SANDBOX_PORT"] in printed
    finally:
        os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C sends
        try:
            assert proc.wait(60) == 0, "".join(lines)[-3000:]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    for name, url in urls.items():  # nothing left running
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)


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


def test_sync_says_which_system_was_not_refreshed_and_exits_non_zero_while_its_breaker_is_open(
        sandbox_reset, warehouse, warehouse_url, engine, tenant_id, tmp_path, monkeypatch):
    """Blaze is down and its breaker open: the sync keeps the last good data, and the command
    says per asset that it was not refreshed and since when, with ✗ and exit 1, not ✓."""
    from typer.testing import CliRunner

    from resources.breaker import OPEN, SqlBreakerStore
    from storehouse.cli import app
    from tests.pos_accounts import new_account
    from tests.test_pos_assets import connect
    from tests.test_pos_breaker_cycle import COOLING, INVENTORY, down, materialize

    account = new_account(sandbox_reset.url, "blaze", products=10, customers=2)
    connect(engine, tenant_id, account)
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    runner = CliRunner()
    first = runner.invoke(app, ["sync", tenant_id], env={"COLUMNS": "300"})
    assert first.exit_code == 0 and "✓" in first.output and "not refreshed" not in first.output, first.output
    down(sandbox_reset, "blaze", True)
    assert materialize(warehouse, tenant_id, INVENTORY, clients=COOLING).success  # the outage opens the breaker
    assert SqlBreakerStore(engine).load(tenant_id, "blaze").state == OPEN
    done = runner.invoke(app, ["sync", tenant_id], env={"COLUMNS": "300"})
    assert done.exit_code == 1, done.output
    assert "✓" not in done.output and "✗ pos_sync" in done.output, done.output
    stale = [line for line in done.output.splitlines() if "blaze circuit open: not refreshed, last good data from 20" in line]
    assert any("pos/inventory" in line for line in stale), done.output
