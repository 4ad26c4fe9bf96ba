"""The Definitions load, and every asset is a proper UI citizen."""

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from assets.marts import GROUP as MARTS
from assets.partitions import tenant_partitions
from pipelines.definitions import SLACK_URL_VAR, defs, slack_resource
from warehouse.tables import metadata


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
    run over every tenant at once, as the marts are built, and name the tenant in what they report."""
    graph = defs.resolve_asset_graph()
    checks = [spec for a in graph.assets_defs for spec in a.check_specs]
    per_tenant = [spec for spec in checks if graph.get(spec.asset_key).group_name != MARTS]
    assert len(per_tenant) >= 12
    assert all(spec.partitions_def == tenant_partitions for spec in per_tenant), [
        spec.name for spec in per_tenant if spec.partitions_def != tenant_partitions]
    assert len(checks) - len(per_tenant) >= 60


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
spec = next(s for s in defs.resolve_all_asset_specs() if s.metadata.get("dagster/table_name") == "transactions")
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
