"""The eSIM catalog and stock assets for one tenant, on the shared warehouse, against the sandbox."""

from datetime import datetime, timezone
from decimal import Decimal

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from alembic import command

from assets.esim import esim_assets, esim_catalog_stock
from syncing.esim import MarginRule, needs_alert, storefront_price, stock_status
from assets.partitions import esim_partitions
from pipelines.definitions import JOBS_BY_SYSTEM, build_defs
from resources.dagster_resources import EsimProvidersResource
from resources.dagster_resources import SlackResource
from resources.esim import PROVIDERS
from sensors.tenants import build_tenant_discovery_sensor
from warehouse.migrate import alembic_config, applied, upgrade
from warehouse.tables.core import sync_runs
from warehouse.tables.esim import esim_packages, esim_stock
from warehouse.tenants import add_tenant, set_connection

CREDENTIALS = {
    "esimcard": {"email": "demo@esimcard.test", "password": "demo-password"},
    "mobimatter": {"merchant_id": "mm-demo-merchant", "api_key": "mm-demo-key"},
    "airalo": {"client_id": "airalo-demo-client", "client_secret": "airalo-demo-secret"},
}
MARGIN = {"esimcard": {"margin_pct": 35, "round_to": "0.99"}, "mobimatter": {"margin_pct": 35, "round_to": "0.99"},
          "airalo": {"margin_pct": 50, "round_to": None}}


def connect_storefront(engine, sandbox, tenant_id, providers=PROVIDERS) -> str:
    """Register the tenant with its providers and its own Slack hook; returns the hook path."""
    hook = httpx.post(f"{sandbox.url}/_sandbox/slack/hooks", json={"channel": f"#{tenant_id}"}).json()["path"]
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "eSIM shop")
        for p in providers:
            set_connection(conn, tenant_id, p, f"{sandbox.url}/{p}", CREDENTIALS[p],
                           {**MARGIN[p], "stock_feed_url": f"/_sandbox/{p}/stock"})
        set_connection(conn, tenant_id, "slack", sandbox.url, {"hook_path": hook})
    return hook


def run(warehouse, tenant_id, assets=esim_assets, **kwargs) -> dg.ExecuteInProcessResult:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(esim_partitions.name, [tenant_id])
    return dg.materialize(assets, partition_key=tenant_id, instance=instance, resources={
        "warehouse": warehouse, "esim_providers": EsimProvidersResource(backoff_base_s=0.01), "slack": SlackResource(),
    }, **kwargs)


def meta(result, key: str) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key)
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def checks(result) -> dict[str, bool]:
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}


def messages(sandbox, hook: str) -> list[str]:
    got = httpx.get(f"{sandbox.url}/_sandbox/slack/messages").json()["messages"]
    return [m["text"] for m in got if m["hook"] == hook]


def rows(engine, table, tenant_id, *where) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(table.c.tenant_id == tenant_id, *where)).mappings().all()


def plan_ids(sandbox, system: str) -> dict[str, str]:
    return {key: pid for pid, key in httpx.get(f"{sandbox.url}/_sandbox/{system}/stock").json()["plan_keys"].items()}


def set_units(sandbox, system: str, package_id: str, units: int) -> None:
    httpx.put(f"{sandbox.url}/_sandbox/{system}/stock/{package_id}", json={"units": units}).raise_for_status()


def next_ending(raw: Decimal, ending: Decimal) -> Decimal:
    """The smallest price ending in ``ending`` not below ``raw`` (written apart from the asset's)."""
    candidate = Decimal(int(raw)) + ending
    return candidate if candidate >= raw else candidate + 1


@pytest.mark.parametrize(("cost", "rule", "price"), [
    (Decimal("4.12") / Decimal("1.35"), MarginRule(Decimal(35)), Decimal("4.99")),
    (Decimal("2.00"), MarginRule(Decimal(0)), Decimal("2.99")),
    (Decimal("3.70"), MarginRule(Decimal(35)), Decimal("5.99")),  # 4.995 is past 4.99
    (Decimal("0.01"), MarginRule(Decimal(30), None), Decimal("0.02")),  # rounds up: never below cost
])
def test_storefront_price(cost, rule, price):
    assert storefront_price(cost, rule) == price


def test_margin_rule_rejects_nonsense():
    assert MarginRule.from_options({}) == MarginRule(Decimal(30), Decimal("0.99"))
    assert MarginRule.from_options({"margin_pct": 35, "round_to": None}) == MarginRule(Decimal(35), None)
    for bad in ({"margin_pct": -5}, {"round_to": "1.5"}, {"margin_pct": "lots"}, {"round_to": "x"}, {"round_to": "0.995"}):
        with pytest.raises(ValueError):  # a provider's sync fails on it; the others go on
            MarginRule.from_options(bad)


def test_stock_crossings():
    assert [stock_status(n) for n in (0, 1, 9, 10)] == ["out_of_stock", "low", "low", "in_stock"]
    assert needs_alert(None, "low") and not needs_alert(None, "in_stock")
    assert not needs_alert({"status": "low", "low_alerted": True}, "low")
    assert needs_alert({"status": "low", "low_alerted": True}, "out_of_stock")  # sold out is news
    assert not needs_alert({"status": "out_of_stock", "low_alerted": True}, "low")
    assert needs_alert({"status": "low", "low_alerted": False}, "low")  # Slack missed it last time


def test_catalog_from_three_providers_priced_by_margin_rule(sandbox_reset, engine, warehouse, tenant_id):
    connect_storefront(engine, sandbox_reset, tenant_id)
    result = run(warehouse, tenant_id)
    assert result.success and all(checks(result).values())
    loaded = rows(engine, esim_packages, tenant_id)
    for system in PROVIDERS:
        mine = {r["provider_package_id"]: r for r in loaded if r["provider"] == system}
        assert sorted(mine) == sorted(plan_ids(sandbox_reset, system).values())
        japan = mine[plan_ids(sandbox_reset, system)["jp-1gb-7d"]]
        assert (japan["country_code"], japan["data_mb"], japan["validity_days"], japan["active"]) == ("JP", 1024, 7, True)
        for r in mine.values():
            margin = Decimal(MARGIN[system]["margin_pct"]) / 100 + 1
            if system == "airalo":
                assert r["price"] * 100 == (r["cost"] * margin * 100).to_integral_value(rounding="ROUND_CEILING")
            else:
                assert r["price"] == next_ending(r["cost"] * margin, Decimal("0.99"))
            assert r["price"] > r["cost"] > 0 and isinstance(r["price"], Decimal)
    m = meta(result, "esim/packages")
    assert m["dagster/row_count"] == len(loaded) and m["providers_failed"] == "none"
    assert [m[f"{p}_rows"] for p in PROVIDERS] == [140, 140, 140] and m["api_calls"] >= 3
    again = run(warehouse, tenant_id)
    assert meta(again, "esim/packages")["rows_written"] == 0  # nothing changed, nothing rewritten


def test_packages_no_longer_listed_become_inactive(sandbox_reset, engine, warehouse, tenant_id):
    connect_storefront(engine, sandbox_reset, tenant_id, ["airalo"])
    run(warehouse, tenant_id)
    with engine.begin() as conn:  # a package the provider listed once and has since withdrawn
        conn.execute(sa.insert(esim_packages).values(
            tenant_id=tenant_id, provider="airalo", provider_package_id="retired-7days-1gb", name="Retired 1 GB",
            country_code="JP", unlimited=False, data_mb=1024, validity_days=7, cost=Decimal("1.00"),
            price=Decimal("1.99"), currency="USD", active=True))
    result = run(warehouse, tenant_id)
    assert result.success and meta(result, "esim/packages")["inactive"] == 1
    retired = rows(engine, esim_packages, tenant_id, esim_packages.c.provider_package_id == "retired-7days-1gb")
    assert retired[0]["active"] is False
    assert checks(result)["every_active_package_has_stock"]  # the inactive one needs no stock row


def test_low_stock_alerts_once_per_crossing_and_restock_rearms(sandbox_reset, engine, warehouse, tenant_id):
    hook = connect_storefront(engine, sandbox_reset, tenant_id, ["mobimatter"])
    package = plan_ids(sandbox_reset, "mobimatter")["jp-1gb-7d"]
    set_units(sandbox_reset, "mobimatter", package, 4)
    first, second = run(warehouse, tenant_id), run(warehouse, tenant_id)
    sent = messages(sandbox_reset, hook)
    assert len(sent) == 1 and package in sent[0] and "4 left" in sent[0]  # two runs, one message
    assert meta(first, "esim/stock")["slack_alert_sent"] and not meta(second, "esim/stock")["crossings"]

    def stock():
        return rows(engine, esim_stock, tenant_id, esim_stock.c.provider_package_id == package)[0]

    assert (stock()["status"], stock()["available"], stock()["low_alerted"]) == ("low", 4, True)
    set_units(sandbox_reset, "mobimatter", package, 50)
    run(warehouse, tenant_id, [esim_catalog_stock])
    assert (stock()["status"], stock()["low_alerted"]) == ("in_stock", False)  # cleared and re-armed
    assert len(messages(sandbox_reset, hook)) == 1
    set_units(sandbox_reset, "mobimatter", package, 3)
    run(warehouse, tenant_id, [esim_catalog_stock])
    set_units(sandbox_reset, "mobimatter", package, 0)
    run(warehouse, tenant_id, [esim_catalog_stock])
    run(warehouse, tenant_id, [esim_catalog_stock])
    sent = messages(sandbox_reset, hook)
    assert len(sent) == 3 and "3 left" in sent[1] and "1 sold out" in sent[2] and package in sent[2]
    assert stock()["status"] == "out_of_stock"


def test_a_provider_down_keeps_its_rows_and_the_others_load(sandbox_reset, engine, warehouse, tenant_id):
    connect_storefront(engine, sandbox_reset, tenant_id)
    run(warehouse, tenant_id)
    httpx.put(f"{sandbox_reset.url}/_sandbox/faults/mobimatter", json={"down": True})
    cheaper = plan_ids(sandbox_reset, "airalo")["jp-1gb-7d"]
    set_units(sandbox_reset, "airalo", cheaper, 2)
    result = run(warehouse, tenant_id)
    assert result.success
    m = meta(result, "esim/packages")
    assert m["providers_failed"] == "mobimatter" and "503" in m["providers"] and m["mobimatter_rows"] == 140
    assert checks(result)["every_provider_refreshed"] is False and checks(result)["every_package_priced_above_cost"]
    assert rows(engine, esim_stock, tenant_id, esim_stock.c.provider_package_id == cheaper)[0]["status"] == "low"
    with engine.connect() as conn:
        ledger = conn.execute(sa.select(sync_runs.c.stream, sync_runs.c.status).where(
            sync_runs.c.tenant_id == tenant_id, sync_runs.c.status == "failed")).all()
    assert ledger == [("esim_packages:mobimatter", "failed")]


def test_every_provider_failing_fails_the_run_naming_the_tenant(sandbox_reset, engine, warehouse, tenant_id):
    connect_storefront(engine, sandbox_reset, tenant_id, ["airalo"])
    with engine.begin() as conn:
        set_connection(conn, tenant_id, "airalo", f"{sandbox_reset.url}/airalo",
                       {"client_id": "airalo-demo-client", "client_secret": "n0pe-secret"}, {})
    result = run(warehouse, tenant_id, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = failure.step_failure_data.user_failure_data.description
    assert tenant_id in text and "airalo" in text and "n0pe-secret" not in text


def test_a_tenant_without_esim_providers_is_skipped(engine, warehouse, tenant_id):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Clinic")
    result = run(warehouse, tenant_id)
    assert result.success and meta(result, "esim/packages")["dagster/row_count"] == 0


def test_discovery_and_schedule_run_the_job_once_per_storefront(engine, warehouse, tenant_id, tmp_path):
    other = f"{tenant_id}-b"
    with engine.begin() as conn:
        for tenant, systems in ((tenant_id, PROVIDERS), (other, ["airalo"])):
            add_tenant(conn, tenant, tenant)
            for system in systems:
                set_connection(conn, tenant, system, "http://x", CREDENTIALS[system], {})
    instance = dg.DagsterInstance.local_temp(str(tmp_path))  # a schedule reads it by reference
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    sensor_runs = build_tenant_discovery_sensor(JOBS_BY_SYSTEM)(context).run_requests
    assert [r.job_name for r in sensor_runs if r.partition_key == tenant_id] == ["esim_catalog_sync"]
    schedule = build_defs().resolve_schedule_def("esim_catalog_sync_schedule")
    assert schedule.cron_schedule == "0 */6 * * *"
    when = datetime(2026, 1, 1, 6, tzinfo=timezone.utc)

    def scheduled() -> list[str]:
        with dg.build_schedule_context(instance=instance, resources={"warehouse": warehouse},
                                       scheduled_execution_time=when) as ctx:
            return [r.partition_key for r in schedule(ctx) if r.partition_key in (tenant_id, other)]

    instance.add_dynamic_partitions(esim_partitions.name, [tenant_id])  # discovery has not added the other yet:
    assert scheduled() == [tenant_id]  # it is left to discovery, and the tick does not fail for everyone
    instance.add_dynamic_partitions(esim_partitions.name, [other])
    assert scheduled() == sorted([tenant_id, other])


def test_migration_branch_creates_and_drops_only_its_tables(engine, tmp_path):
    assert {"esim_packages", "esim_stock"} <= set(sa.inspect(engine).get_table_names())
    assert "0002_esim_catalog" in applied(engine.url.render_as_string(hide_password=False))
    url = f"sqlite:///{tmp_path / 'branch.db'}"
    upgrade(url, "esim_catalog@head")
    assert {"esim_packages", "esim_stock", "tenants"} <= set(sa.inspect(sa.create_engine(url)).get_table_names())
    command.downgrade(alembic_config(url), "esim_catalog@0001_foundation")
    tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert "tenants" in tables and not {"esim_packages", "esim_stock"} & tables


def test_a_listed_package_that_could_not_be_read_stays_active(engine, tenant_id):
    from syncing.esim import sync_packages
    from resources.esim.base import ProviderPackage
    from warehouse.syncs import Rejected
    from warehouse.tenants import TenantConnection

    with engine.begin() as conn:
        add_tenant(conn, tenant_id, tenant_id)
    connection = TenantConnection(tenant_id, "airalo", "http://127.0.0.1:9", {}, {})

    def package(i):
        return ProviderPackage(provider="airalo", provider_package_id=f"p{i}", name=f"Plan {i}", unlimited=False,
                               data_mb=1024, validity_days=7, cost=Decimal("4.00"))

    class Listing:  # what the client read: packages, and the records it had to quarantine
        def __init__(self, packages, rejected):
            self.packages, self.rejected, self.calls = packages, rejected, 1

        def iter_packages(self):
            return iter(self.packages)

    sync_packages(engine, Listing([package(i) for i in range(4)], []), connection, None)
    unreadable = Rejected({"id": "p3", "net_price": "4,00"}, "net_price: not a number", "p3")
    stats = sync_packages(engine, Listing([package(i) for i in range(3)], [unreadable]), connection, None)
    assert stats.extra["deactivated"] == 0
    blind = sync_packages(engine, Listing([package(0)], [Rejected({"title": "Japan"}, "operators missing", None)]),
                          connection, None)
    assert blind.extra["deactivated"] == 0 and "deactivation_withheld" in blind.extra
    active = rows(engine, esim_packages, tenant_id, esim_packages.c.active.is_(True))
    assert sorted(r["provider_package_id"] for r in active) == ["p0", "p1", "p2", "p3"]
