"""Connection settings are typed: refused by name when added, failed at once (no retries) when read."""

from __future__ import annotations

import time

import dagster as dg
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from assets.partitions import mx_merchant_partitions, pos_partitions
from assets.transactions import mx_assets
from resources.dagster_resources import MxMerchantResource
from resources.dagster_resources import PosClientsResource
from resources.systems import SPECS, spec_for
from sensors.alerts import cause_of
from storehouse.cli import app
from storehouse.demo import DEMO_TENANTS
from tests.pos_accounts import new_account
from warehouse.tables.core import sync_runs
from warehouse.tenants import add_tenant, list_tenants, set_connection

MX_ADD = ["tenants", "add", "clinic-a", "--system", "mx_merchant", "--base-url", "http://127.0.0.1:9/mx"]


@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path


def added_tenants(home) -> list[str]:
    from resources.warehouse import engine_for

    with engine_for(f"sqlite:///{home / 'warehouse.db'}").connect() as conn:
        return [t["tenant_id"] for t in list_tenants(conn)]


def test_tenants_add_refuses_a_missing_credential_by_name_with_status_2(cli_home):
    done = CliRunner().invoke(app, [*MX_ADD, "--credential", "consumer_key=abc"], env={"COLUMNS": "200"})
    assert done.exit_code == 2, done.output
    assert "missing credential 'consumer_secret'" in done.output and "missing credential 'merchant_id'" in done.output
    assert "abc" not in done.output.replace("tenants add", "")
    assert not (cli_home / "warehouse.db").exists() or added_tenants(cli_home) == []


@pytest.mark.parametrize("flag, field", [("--credential", "consumer_secrett"), ("--option", "page_sise")])
def test_tenants_add_refuses_an_unknown_field_by_name_with_status_2(cli_home, flag, field):
    done = CliRunner().invoke(app, [*MX_ADD, "--credential", "merchant_id=42", "--credential", "consumer_key=k",
                                    "--credential", "consumer_secret=s", flag, f"{field}=1"], env={"COLUMNS": "200"})
    assert done.exit_code == 2, done.output
    assert f"unknown {flag.strip('-')} '{field}'" in done.output


def test_tenants_add_takes_a_complete_connection(cli_home):
    done = CliRunner().invoke(app, [*MX_ADD, "--credential", "merchant_id=42", "--credential", "consumer_key=123",
                                    "--credential", "consumer_secret=s", "--option", "page_size=500"])
    assert done.exit_code == 0, done.output
    assert added_tenants(cli_home) == ["clinic-a"]


def test_every_system_declares_its_fields_and_the_demo_tenants_match_them():
    from storehouse.cli import tenants_add  # noqa: F401  (the command lists exactly these systems)

    assert set(SPECS) == {"mx_merchant", "stripe", "resend", "slack", "esimcard", "mobimatter", "airalo",
                          "treez", "dutchie", "blaze", "flowhub", "cova", "shopify", "portaus"}
    for tenant in DEMO_TENANTS:
        for c in tenant.connections:
            spec_for(c.system).check(c.credentials, c.options)
    # Dutchie's integrator ConsumerKey is optional: only order submission needs it.
    spec_for("dutchie").check({"api_key": "k"}, {})
    spec_for("dutchie").check({"api_key": "k", "consumer_key": "ck"}, {})


def failed_attempts(result) -> tuple[list, list]:
    failures = [e for e in result.all_events if e.is_step_failure]
    retries = [e for e in result.all_events if e.event_type_value in ("STEP_UP_FOR_RETRY", "STEP_RESTARTED")]
    return failures, retries


def test_a_stored_connection_missing_a_credential_fails_the_run_at_once_with_the_cause(warehouse, engine, tenant_id):
    with engine.begin() as conn:  # as stored before connections were checked: no consumer_secret
        add_tenant(conn, tenant_id)
        set_connection(conn, tenant_id, "mx_merchant", "http://127.0.0.1:9/mx", {"merchant_id": 1, "consumer_key": "abc"})
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, [tenant_id])
    started = time.perf_counter()
    result = dg.materialize(mx_assets, partition_key=tenant_id, instance=instance, raise_on_error=False,
                            resources={"warehouse": warehouse, "mx_merchant": MxMerchantResource()})
    assert not result.success and time.perf_counter() - started < 10  # not 56 s of retries
    failures, retries = failed_attempts(result)
    assert retries == [] and len(failures) == 1
    error = failures[0].step_failure_data.error
    headline = cause_of(error)
    assert headline == failures[0].step_failure_data.user_failure_data.description
    assert "\n" not in headline and "KeyError" not in headline and "max_retries" not in headline
    assert f"Tenant '{tenant_id}': mx_merchant connection: missing credential 'consumer_secret'" in headline
    assert "abc" not in headline
    with engine.connect() as conn:
        ledger = conn.execute(sa.select(sync_runs.c.status, sync_runs.c.api_calls, sync_runs.c.error)
                              .where(sync_runs.c.tenant_id == tenant_id)).all()
    assert [(s, calls) for s, calls, _ in ledger] == [("failed", 0)]  # no call made, none retried
    assert "consumer_secret" in ledger[0].error


def test_a_pos_connection_with_an_unknown_option_fails_without_retry_naming_it(sandbox, warehouse, engine, tenant_id):
    from assets.catalog import pos_products

    account = new_account(sandbox.url, "treez", products=5, customers=1)
    with engine.begin() as conn:
        add_tenant(conn, tenant_id)
        set_connection(conn, tenant_id, "treez", account.base_url, account.credentials, {"page_sise": 10})
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(pos_partitions.name, [tenant_id])
    result = dg.materialize([pos_products], partition_key=tenant_id, instance=instance, raise_on_error=False,
                            resources={"warehouse": warehouse, "pos_clients": PosClientsResource()})
    failures, retries = failed_attempts(result)
    assert not result.success and retries == [] and len(failures) == 1
    headline = cause_of(failures[0].step_failure_data.error)
    assert "\n" not in headline and "treez connection: unknown option 'page_sise'" in headline


MX_CREDS = ["--credential", "merchant_id=42", "--credential", "consumer_key=k", "--credential", "consumer_secret=s"]


@pytest.mark.parametrize("base_url", ["notaurl", "127.0.0.1:9/mx", "ftp://127.0.0.1/mx", "http://", "http://:80/mx",
                                      "http://127.0.0.1:99999/mx", "/mx"])
def test_tenants_add_refuses_a_base_url_that_is_not_an_absolute_http_url(cli_home, base_url):
    add = ["tenants", "add", "clinic-d", "--system", "mx_merchant", "--base-url", base_url, *MX_CREDS]
    done = CliRunner().invoke(app, add, env={"COLUMNS": "200"})
    assert done.exit_code == 2, done.output
    assert "base_url must be an absolute http(s) URL with a host" in done.output
    assert not (cli_home / "warehouse.db").exists() or added_tenants(cli_home) == []


@pytest.mark.parametrize("system, credentials, option, problem", [
    ("mx_merchant", MX_CREDS, "page_size=0", "option 'page_size': Input should be greater than or equal to 1"),
    ("mx_merchant", MX_CREDS, "invoice_list_page_size=1001", "less than or equal to 1000"),
    ("mx_merchant", MX_CREDS, "detail_concurrency=0", "option 'detail_concurrency'"),
    ("shopify", ["--credential", "access_token=t"], "page_size=251",
     "option 'page_size': Input should be less than or equal to 250"),
    ("blaze", ["--credential", "partner_key=p", "--credential", "developer_key=d"], "page_size=0",
     "option 'page_size': Input should be greater than or equal to 1"),
    ("treez", ["--credential", "dispensary=d", "--credential", "client_id=c", "--credential", "apikey=k"],
     "page_size=-5", "option 'page_size'"),
    ("dutchie", ["--credential", "api_key=k"], "customer_page_size=10001", "option 'customer_page_size'"),
    ("dutchie", ["--credential", "api_key=k"], "max_delete_fraction=1.5", "option 'max_delete_fraction'"),
])
def test_tenants_add_refuses_an_option_out_of_its_range_by_name(cli_home, system, credentials, option, problem):
    add = ["tenants", "add", "clinic-d", "--system", system, "--base-url", "http://127.0.0.1:9/x", *credentials,
           "--option", option]
    done = CliRunner().invoke(app, add, env={"COLUMNS": "300"})
    assert done.exit_code == 2, done.output
    assert problem in " ".join(done.output.split())
    assert not (cli_home / "warehouse.db").exists() or added_tenants(cli_home) == []


def test_page_sizes_up_to_each_providers_largest_are_taken():
    for system, most in [("cova", 500), ("portaus", 100), ("shopify", 250), ("treez", 1000),
                         ("mx_merchant", 1000)]:
        options = SPECS[system].options
        assert options.model_validate({"page_size": 1}).page_size == 1
        assert options.model_validate({"page_size": most}).page_size == most


@pytest.mark.parametrize("base_url, options, cause", [
    ("notaurl", {}, "base_url must be an absolute http(s) URL with a host"),
    ("http://127.0.0.1:9/mx", {"page_size": 0}, "option 'page_size': Input should be greater than or equal to 1"),
])
def test_a_stored_bad_base_url_or_option_fails_the_run_at_once_naming_it(warehouse, engine, tenant_id, base_url,
                                                                          options, cause):
    with engine.begin() as conn:  # as stored before base URLs and option ranges were checked
        add_tenant(conn, tenant_id)
        set_connection(conn, tenant_id, "mx_merchant", base_url,
                       {"merchant_id": 1, "consumer_key": "abc", "consumer_secret": "s3cret"}, options)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, [tenant_id])
    started = time.perf_counter()
    result = dg.materialize(mx_assets, partition_key=tenant_id, instance=instance, raise_on_error=False,
                            resources={"warehouse": warehouse, "mx_merchant": MxMerchantResource()})
    assert not result.success and time.perf_counter() - started < 10  # not 1 min 40 s of retries
    failures, retries = failed_attempts(result)
    assert retries == [] and len(failures) == 1
    headline = cause_of(failures[0].step_failure_data.error)
    assert "\n" not in headline and f"Tenant '{tenant_id}': mx_merchant connection: {cause}" in headline
    assert "s3cret" not in headline and "UnsupportedProtocol" not in headline
