"""The hourly ``marts`` job (assets/marts_changes.py): after a small change of one source it
builds only the models that read it, with their tests, and what it leaves equals a full rebuild;
with nothing changed it builds nothing; a removed tenant rebuilds (and prunes) every mart. On this
run's database (SQLite, or PostgreSQL in CI's second pass)."""

import datetime as dt
import json
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from assets.orders import PAID_IN_FULL
from resources.dbt import model_names, run_dbt
from tests.test_marts import DAY2, A, B, _tx, loaded, marts_url, rows  # noqa: F401  (fixtures)
from warehouse.db import make_engine
from warehouse.tables.mx import transactions

MX_READERS = {"mx_transactions_daily", "mx_transactions_monthly", "mx_sales_daily", "mx_revenue_by_category",
              "mx_revenue_by_product", "mx_invoice_linkage"}  # every model downstream of `transactions`
CLOCK = "platform_sync_summary"  # rebuilt each hour: its hours_since_success moves with the clock
BUILD_COLUMNS = ("hours_since_success", "build_id", "source_cutoff")  # what differs from one build to the next


@pytest.fixture
def job(loaded, tmp_path, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", loaded)  # what the definitions' warehouse resource reads
    from pipelines.definitions import build_defs

    return build_defs().resolve_job_def("marts")


def run(job, instance) -> tuple[set[str], dict[str, bool]]:
    """One run of the job: the models it built and its checks' outcomes (by asset/check)."""
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    assert not [e.user_message for e in instance.all_logs(result.run_id)  # each check it evaluates is selected
                if "which is not selected" in (e.user_message or "")]
    built = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    checks = {f"{c.asset_key.path[-1]}/{c.check_name}": c.passed for c in result.get_asset_check_evaluations()}
    return built, checks


def hour() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H")


def marts(url: str) -> dict[str, list]:
    """Every row of every mart, the clock's own columns and the build that wrote it left out."""
    return {m: sorted((tuple((k, str(v)) for k, v in r.items() if k not in BUILD_COLUMNS)
                       for r in rows(url, f"select * from {m}")), key=repr) for m in sorted(model_names())}


def test_the_hourly_job_builds_what_changed_and_equals_a_full_rebuild(job, loaded, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    built, checks = run(job, instance)
    assert built == model_names() and checks and all(checks.values())  # first run: every model, every test
    assert {"studio_invoices", "studio_quotes"} <= {c.split("/")[0] for c in checks}  # and the sources' checks

    started = hour()
    built, checks = run(job, instance)  # nothing changed
    assert built == ({CLOCK} if hour() != started else set()) and not checks

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    engine = make_engine(loaded)
    with engine.begin() as conn:  # one payment changed, one new: a small change of one source
        conn.execute(sa.update(transactions).where(transactions.c.tenant_id == A, transactions.c.id == 6)
                     .values(amount=Decimal("80.00"), updated_at=later))
        conn.execute(sa.insert(transactions), [{**_tx(A, 9, DAY2, "2.00"), "updated_at": later}])
    engine.dispose()
    started = hour()
    built, checks = run(job, instance)
    assert built - {CLOCK} == MX_READERS and (CLOCK not in built or hour() != started)
    assert {c.split("/")[0] for c in checks} == built and all(checks.values()), checks  # their tests, passed
    day2 = next(r for r in rows(loaded, "select * from mx_sales_daily")
                if r["tenant_id"] == A and str(r["day"])[:10] == "2026-03-02")
    assert (day2["sales"], Decimal(str(day2["sales_amount"])).quantize(Decimal("0.01"))) == (2, Decimal("82.00"))

    hourly = marts(loaded)
    work = tmp_path / "dbt"
    run_dbt(["build", "--full-refresh"], loaded, work / "profiles", target_path=work / "target")
    assert marts(loaded) == hourly  # what the job left is what a full rebuild gives

    from warehouse.tenants import remove_tenant

    with engine.begin() as conn:  # the tenants table moved: every mart rebuilds, the incremental ones pruned
        assert remove_tenant(conn, B)
    engine.dispose()
    try:
        built, checks = run(job, instance)
        assert built == model_names()  # (the Python check of Stripe's payments still counts B's: not a dbt test)
        assert all(passed for name, passed in checks.items() if not name.endswith(PAID_IN_FULL)), checks
        assert [m for m in sorted(model_names())
                if rows(loaded, f"select count(*) as n from {m} where tenant_id = '{B}'")[0]["n"]] == []
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"insert into tenants (tenant_id, name) values ('{B}', 'B')"))
        engine.dispose()


def test_every_source_says_how_its_changes_show():
    """A source without its own `changed` aggregates is a table whose writers move updated_at."""
    from resources.dbt import MANIFEST
    from warehouse.tables import metadata

    for source in json.loads(MANIFEST.read_text())["sources"].values():
        if "changed" not in source["config"].get("meta", {}).get("storehouse", {}):
            table = metadata.tables.get(source["identifier"])
            assert table is not None and "updated_at" in table.c, source["name"]


def test_a_model_digest_moves_with_its_inputs_only():
    """A source's state moves the digests of the models downstream of it, a macro's those that call
    it, the clock those that say they move with it; nothing else."""
    from assets.marts_changes import model_digests
    from resources.dbt import MANIFEST

    manifest = json.loads(MANIFEST.read_text())
    names = {uid: n["name"] for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    states = {uid: "[1]" for uid in manifest["sources"]}
    now = dt.datetime(2026, 3, 2, 10, 5, tzinfo=dt.timezone.utc)

    def moved(**changes) -> set[str]:
        before = model_digests(manifest, states, now)
        after = model_digests(changes.get("manifest", manifest), {**states, **changes.get("states", {})},
                              changes.get("now", now))
        return {names[uid] for uid in before if before[uid] != after[uid]}

    assert moved() == set()
    assert moved(states={"source.storehouse.warehouse.transactions": "[2]"}) == MX_READERS
    assert moved(now=now + dt.timedelta(minutes=30)) == set()
    assert moved(now=now + dt.timedelta(hours=1)) == {CLOCK}
    assert moved(now=now + dt.timedelta(days=1)) == {CLOCK, "pos_expiring_lots"}
    edited = json.loads(json.dumps(manifest))
    edited["macros"]["macro.storehouse.percentile_of"]["macro_sql"] += " "
    assert moved(manifest=edited) == {"mart_provisioning_daily"}
