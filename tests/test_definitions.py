"""The Definitions load, and every asset is a proper UI citizen."""

import json
import os
import subprocess
import sys

from pathlib import Path

import dagster as dg
import pytest

from assets.marts import GROUP as MARTS
from assets.partitions import PARTITION_SETS
from pipelines.definitions import SLACK_URL_VAR, build_defs, slack_resource
from warehouse.tables import metadata

defs = build_defs()
ROOT = Path(__file__).resolve().parent.parent


def test_definitions_load():
    assert defs.resolve_job_def("mx_merchant_sync")
    assert {s.name for s in defs.sensors} >= {"tenant_discovery", "sync_requests", "run_failure_alerts"}


@pytest.mark.parametrize("spec", list(defs.resolve_all_asset_specs()), ids=lambda s: s.key.to_user_string())
def test_every_asset_has_group_kinds_owners_description(spec):
    assert spec.group_name and spec.group_name != "default"
    assert spec.kinds
    assert spec.owners
    assert spec.description and len(spec.description) > 20
    columns = spec.metadata["dagster/column_schema"].columns
    if spec.group_name == MARTS:  # a dbt model: its columns and their descriptions come from schema.yml
        assert spec.metadata["dagster/table_name"].endswith(f".{spec.key.path[-1]}")
        assert columns and all(c.description for c in columns)
        return
    table = metadata.tables[spec.metadata["dagster/table_name"]]  # the table analysts query, with its columns
    assert [c.name for c in columns] == [c.name for c in table.columns]


def test_every_check_has_one_result_per_tenant():
    """Ingestion checks run per tenant partition; the marts' (dbt tests, the Stripe reconciliation)
    run over every tenant at once, as the marts are built, and name the tenant in what they report:
    so do the dbt tests on the studio's tables (checks on those tables, run by the marts' asset)."""
    from assets.marts import warehouse_marts

    graph = defs.resolve_asset_graph()
    checks = [spec for a in graph.assets_defs for spec in a.check_specs]
    per_tenant = [spec for spec in checks if graph.get(spec.asset_key).group_name != MARTS
                  and spec.key not in warehouse_marts.check_keys]
    assert len(per_tenant) >= 12
    wrong = [spec.name for spec in per_tenant
             if spec.partitions_def != graph.get(spec.asset_key).partitions_def  # its asset's tenants, no others
             or spec.partitions_def not in PARTITION_SETS.values()]
    assert not wrong
    assert len(checks) - len(per_tenant) >= 60


def test_each_system_family_has_its_own_tenant_partitions():
    """A tenant is a partition only where it is connected: each group's assets and each job use
    their family's set (the eSIM assets list eSIM tenants, not every tenant as "Missing")."""
    graph = defs.resolve_asset_graph()
    by_group = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        by_group.setdefault(node.group_name, set()).add(node.partitions_def and node.partitions_def.name)
    assert {g: by_group[g] for g in ("mx_merchant", "pos", "esim")} == {
        "mx_merchant": {"mx_merchant_tenants"}, "pos": {"pos_tenants"}, "esim": {"esim_tenants"}}
    assert by_group["marts"] == by_group["api"] == by_group["platform"] == {None}  # every tenant at once
    jobs = {name: defs.resolve_job_def(name).partitions_def for name in
            ("mx_merchant_sync", "pos_sync", "pos_inventory_refresh", "esim_catalog_sync", "orders_hourly")}
    assert {name: p.name for name, p in jobs.items()} == {
        "mx_merchant_sync": "mx_merchant_tenants", "pos_sync": "pos_tenants", "pos_inventory_refresh": "pos_tenants",
        "esim_catalog_sync": "esim_tenants", "orders_hourly": "storefront_tenants"}


def test_the_storefront_recovery_is_a_job_not_an_asset():
    """It claims no table: the API's tables are external assets the marts read."""
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "orders/stuck_orders" not in keys
    assert {"api/orders", "api/payments", "api/webhook_events", "api/order_esims"} <= keys
    job = defs.resolve_job_def("orders_hourly")
    assert [node.name for node in job.nodes] == ["recover_stuck_orders"] and not job.asset_layer.executable_asset_keys
    external = [s for s in defs.resolve_all_asset_specs() if s.group_name == "api"]
    assert all(not dg.AssetsDefinition(specs=[s]).is_executable for s in external)


def test_the_slack_url_reaches_the_ui_as_a_variable_name_not_its_value(monkeypatch):
    monkeypatch.setenv(SLACK_URL_VAR, "https://hooks.slack.test/services/T0/B0/very-secret")
    slack = slack_resource()
    assert isinstance(slack.webhook_url, dg.EnvVar) and "very-secret" not in repr(slack.webhook_url)
    assert slack.process_config_and_initialize().webhook_url.endswith("very-secret")  # resolved when a run starts
    monkeypatch.delenv(SLACK_URL_VAR)
    assert slack_resource().webhook_url is None  # unset: alerts go to the log


COLUMN_TYPES = """
import json
from pipelines.definitions import defs
spec = next(s for s in defs().resolve_all_asset_specs() if s.metadata.get("dagster/table_name") == "transactions")
print(json.dumps({c.name: c.type for c in spec.metadata["dagster/column_schema"].columns}))
"""


@pytest.mark.parametrize("url, amount, created_at", [
    (None, "NUMERIC (exact to 4 places up to ±99,999,999,999.9999)",
     "TEXT (UTC ISO-8601, YYYY-MM-DD HH:MM:SS.ffffff+00:00)"),
    ("postgresql://analyst@127.0.0.1:5432/warehouse", "NUMERIC(18,4)", "TIMESTAMPTZ (UTC)"),
], ids=["sqlite", "postgresql"])
def test_the_columns_tab_shows_types_as_the_configured_warehouse_stores_them(tmp_path, url, amount, created_at):
    """The definitions are loaded as Dagster loads them, in a process of their own, with DATABASE_URL
    unset (the SQLite default) or naming PostgreSQL (nothing connects to it at load)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"STOREHOUSE_HOME": str(tmp_path)}
    if url:
        env["DATABASE_URL"] = url
    out = subprocess.run([sys.executable, "-c", COLUMN_TYPES], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    types = json.loads(out.strip().splitlines()[-1])
    assert types["amount"] == amount and types["created_at"] == created_at
    assert types["id"] == "BIGINT" and types["status"] == "VARCHAR(32)"
    assert types["has_invoice"] == ("BOOLEAN" if url else "BOOLEAN (INTEGER 0 or 1)")


PURE_IMPORT = """
import json, os, sys, sysconfig
import pydantic_settings
import sqlalchemy
STDLIB, ROOT = sysconfig.get_paths()["stdlib"], os.getcwd()
read, settings = set(), []
environ = type(os.environ)
get, contains = environ.__getitem__, environ.__contains__


def caller():
    frame = sys._getframe(3)  # past caller, ours and the patched method
    while frame and frame.f_code.co_filename.startswith((STDLIB, "<frozen")):  # Mapping.get, os.getenv
        frame = frame.f_back
    return frame.f_code.co_filename if frame else ""


def ours(key):
    if caller().startswith(ROOT) and ".venv" not in caller():
        read.add(key)
    return key


environ.__getitem__ = lambda self, key: get(self, ours(key))
environ.__contains__ = lambda self, key: contains(self, ours(key))
init = pydantic_settings.BaseSettings.__init__
def recorded(self, *args, **kwargs):
    settings.append(type(self).__name__)
    init(self, *args, **kwargs)
pydantic_settings.BaseSettings.__init__ = recorded
def no_engine(*args, **kwargs):
    raise AssertionError("an engine was made at import")
sqlalchemy.create_engine = no_engine
import pipelines.definitions
print(json.dumps({"read": sorted(read), "settings": settings, "marts_loaded": "assets.marts" in sys.modules}))
"""


def test_importing_the_definitions_reads_no_setting_opens_no_database_and_writes_no_file(tmp_path):
    """Import is pure; the environment, the dbt manifest and the warehouse are read when Dagster
    loads ``defs``. A poisoned environment shows it: a settings file that cannot parse, a
    warehouse that cannot be reached, a home that does not exist and must stay so."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    (cwd / ".env").write_text("STOREHOUSE_API_PORT=not-a-port\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STOREHOUSE_", "DATABASE_URL", "DAGSTER_"))}
    env |= {"STOREHOUSE_HOME": str(home), "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "STOREHOUSE_SLACK_ALERTS_URL": "https://hooks.slack.test/x", "DAGSTER_HOME": str(tmp_path / "dagster")}
    script = PURE_IMPORT.replace("os.getcwd()", repr(str(ROOT)))
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"read": [], "settings": [], "marts_loaded": False}  # no variable, no Settings(), no manifest
    assert not home.exists() and not (tmp_path / "dagster").exists() and os.listdir(cwd) == [".env"]


def test_no_asset_waits_on_the_asset_daemon_the_instance_leaves_out(tmp_path, monkeypatch):
    """The instance runs no asset daemon (storehouse/instance.py): schedules and sensors start every
    run. An asset or check given an automation condition would never run on it, so none has one;
    freshness policies are evaluated by their own daemon, which stays on."""
    from settings import Settings
    from storehouse.instance import ensure_dagster_home

    graph = defs.resolve_asset_graph()
    assert [k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition] == []
    assert [k for k in graph.asset_check_keys if graph.get(k).automation_condition] == []
    assert any(graph.get(k).freshness_policy for k in graph.get_all_asset_keys())
    monkeypatch.delenv("STOREHOUSE_DAGSTER_DATABASE_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.from_config(str(ensure_dagster_home(Settings(_env_file=None)))) as instance:
        daemons = instance.get_required_daemon_types()
    assert "ASSET" not in daemons
    assert {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR", "FRESHNESS_DAEMON"} <= set(daemons)
