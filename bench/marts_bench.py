"""Benchmark: building the marts (dbt, analytics/) over the 1,000,000-transaction warehouse.

A scratch PostgreSQL database (or a SQLite file with ``--sqlite``) is migrated and filled in SQL:
1,000,000 MX transactions over 10 tenants and a year, with POS catalog and stock, eSIM orders
and provisioning attempts, sync runs. Then, in the same run:

1. ``dbt run`` of every model, full (the build analysts get; ``dbt test`` is timed apart), the way
   the Dagster asset runs it: ``resources.dbt.run_dbt``, dbt in this process (dbt was imported by
   the ``dbt compile`` before, as the code location has imported dagster-dbt and dbt before a run);
   its project parsed anew (partially) in the timing, as each run does;
2. the ceiling: the very SQL dbt ran (``dbt compile``'s output) as plain ``CREATE TABLE … AS``
   statements into tables of its own, no dbt around it, on as many connections as dbt has
   threads, each started once its parents are built (target ≥ 0.5×: dbt's build takes at most
   twice the bare statements' time);
3. the hourly ``marts`` job of the definitions run as the schedule runs it (in process, a Dagster
   instance of its own): its full build (every model and every test, over whole tables) on the
   warehouse with its marts dropped and a new instance, dbt's parse state warm as every hourly run
   has it; then 1 % of the transactions changed (the newest 0.5 % updated, 0.5 % new ones arrive,
   as syncs bring them) and the job again: it builds the models whose inputs changed and their
   tests (the incremental models' over the rows of this build), checked equal to a full rebuild.
   The figure: that run's wall time ÷ the job's full build, both with their tests and Dagster
   around them (target ≤ 20 %); beside it, ÷ the full ``dbt run`` + ``dbt test``.

    python bench/marts_bench.py                        # PostgreSQL, 1,000,000 transactions
    python bench/marts_bench.py --transactions 200000 --sqlite
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_PG, load_avg, machine, scratch_pg  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from resources.dbt import dbt_env, profile_target, run_dbt  # noqa: E402
from warehouse.db import make_engine  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402

TENANTS = 10


def fill(url: str, n: int) -> None:
    """The benchmark warehouse, generated in SQL (the figures are about the marts, not loading)."""
    engine = make_engine(url)
    pg = engine.dialect.name == "postgresql"
    per = n // TENANTS
    series = "generate_series(0, {k} - 1) as g(i)" if pg else None

    def rows(k: int) -> str:  # a source of k integers i = 0..k-1
        if pg:
            return series.format(k=k)
        return f"(with recursive g(i) as (select 0 union all select i + 1 from g where i < {k} - 1) select i from g) g"

    ts = (lambda expr: f"(timestamptz '2026-01-01 00:00:00+00' + ({expr}) * interval '1 second')") if pg else \
        (lambda expr: f"strftime('%Y-%m-%d %H:%M:%f', '2026-01-01', '+' || ({expr}) || ' seconds')")
    money = (lambda expr: f"cast({expr} as numeric(18, 4))") if pg else \
        (lambda expr: f"printf('%.4f', {expr})")
    with engine.begin() as conn:
        for t in range(TENANTS):
            conn.execute(sa.text(f"insert into tenants (tenant_id, name) values ('bench-{t}', 'Bench {t}')"))
            conn.execute(sa.text(f"""
                insert into transactions (tenant_id, id, merchant_id, amount, status, type, created_at, has_invoice,
                                          invoice_number, invoice_id, primary_product, product_category)
                select 'bench-{t}', i, 1, {money('((i * 7919) % 40000 + 100) / 100.0')},
                       case when i % 97 = 0 then 'Declined' else 'Settled' end,
                       case when i % 53 = 0 then 'Return' else 'Sale' end,
                       {ts(f'i * (31536000 / {per})')}, i % 5 < 3, case when i % 5 < 3 then 'INV' || (i / 5) end,
                       case when i % 5 < 3 then i / 5 end,
                       case when i % 5 < 3 then 'Product ' || (i % 40) end,
                       case when i % 5 < 3 then 'Category ' || (i % 6) end
                from {rows(per)}"""))
            conn.execute(sa.text(f"""
                insert into products (tenant_id, source, product_id, name, source_name, category, categories, strain_type,
                                      effects, flavors, cannabinoids, price, currency, status, attributes)
                select 'bench-{t}', 'treez', 'p' || i, 'Product ' || i, 'P' || i,
                       case i % 4 when 0 then 'cannabis/flower' when 1 then 'cannabis/edible/beverage'
                                  when 2 then 'accessories' else 'unmapped' end, '[]',
                       case i % 3 when 0 then 'indica' when 1 then 'hybrid' end, '[]', '[]', '{{}}',
                       {money('(i % 50) + 5')}, 'USD', 'active', '{{}}'
                from {rows(5000)}"""))
            conn.execute(sa.text(f"""
                insert into inventory (tenant_id, source, location_id, product_id, lot_id, tracking, quantity,
                                       quantity_unit, min_quantity, increment, available, low_stock_threshold, low_stock,
                                       quantity_capped, expires_on)
                select 'bench-{t}', 'treez', 'L' || (i % 3), 'p' || (i % 5000), 'lot' || i, 'lot', {money('i % 40')},
                       'each', 1, 1, true, 5, false, false,
                       {"date '2026-01-01' + (i % 400)" if pg else "date('2026-01-01', '+' || (i % 400) || ' days')"}
                from {rows(15000)}"""))
            conn.execute(sa.text(f"""
                insert into orders (tenant_id, order_id, status, email, provider, provider_package_id, package_name,
                                    quantity, unit_price, amount_total, currency, amount_refunded, request_hash,
                                    created_at, status_changed_at, paid_at)
                select 'bench-{t}', 'o' || i, case when i % 10 = 0 then 'failed' else 'provisioned' end, 'x@y.z',
                       'esimcard', 'p', '1GB', 1, {money('3.99')}, {money('3.99')}, 'USD',
                       {money('case when i % 10 = 0 then 3.99 else 0 end')}, 'h', {ts('i * 600')}, {ts('i * 600')},
                       {ts('i * 600 + 60')}
                from {rows(20000)}"""))
            conn.execute(sa.text(f"""
                insert into order_refunds (tenant_id, order_id, refunded_total, amount, recorded_at)
                select 'bench-{t}', 'o' || i, {money('3.99')}, {money('3.99')}, {ts('i * 600 + 120')}
                from {rows(20000)} where i % 10 = 0"""))
            conn.execute(sa.text(f"""
                insert into provisioning_attempts (tenant_id, order_id, unit, provider, reference, outcome, error_class,
                                                   latency_ms, started_at)
                select 'bench-{t}', 'o' || i, 1, case i % 3 when 0 then 'esimcard' when 1 then 'mobimatter' else 'airalo' end,
                       'r', case when i % 10 = 0 then 'failed' else 'succeeded' end,
                       case when i % 10 = 0 then 'server' end, (i * 37) % 900 + 20, {ts('i * 600')}
                from {rows(20000)}"""))
            conn.execute(sa.text(f"""
                insert into sync_runs (tenant_id, stream, run_id, status, started_at, finished_at, api_calls, rows)
                select 'bench-{t}', case i % 2 when 0 then 'mx_transactions' else 'mx_invoices' end, 'run' || (i / 2),
                       'success', {ts('i * 3600')}, {ts('i * 3600 + 60')}, 3, 100
                from {rows(2000)}"""))
    if pg:  # as autovacuum leaves a warehouse loaded over months: statistics, and pages marked all-visible
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # (index-only scans)
            conn.execute(sa.text("vacuum analyze"))
    engine.dispose()


def change_one_percent(url: str, n: int) -> None:
    """The newest 0.5 % of each tenant's transactions (by id) updated, as many new ones arriving."""
    engine = make_engine(url)
    pg = engine.dialect.name == "postgresql"
    k = n // TENANTS // 200
    with engine.connect() as conn:  # new ids above every id so far (a second change comes after the first's)
        top = conn.execute(sa.text("select max(id) + 1 from transactions where tenant_id = 'bench-0'")).scalar_one()
    now = "now()" if pg else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    with engine.begin() as conn:
        for t in range(TENANTS):
            newest = f"(select id from transactions where tenant_id = 'bench-{t}' order by id desc limit {k})"
            conn.execute(sa.text(f"update transactions set status = 'Refunded', updated_at = {now} "
                                 f"where tenant_id = 'bench-{t}' and id in {newest}"))
            conn.execute(sa.text(f"""
                insert into transactions (tenant_id, id, merchant_id, amount, status, type, created_at, has_invoice,
                                          updated_at)
                select tenant_id, id + {top}, merchant_id, amount, 'Settled', 'Sale', created_at, false, {now}
                from transactions where tenant_id = 'bench-{t}' and id in {newest}"""))
        if pg:
            conn.execute(sa.text("analyze transactions"))
    engine.dispose()


def compiled_models(target: Path) -> dict[str, tuple[str, str, set[str]]]:
    """model -> (its relation as dbt names it, compiled SQL, parent models), from dbt's manifest
    after ``dbt compile``."""
    manifest = json.loads((target / "manifest.json").read_text())
    models = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    return {n["name"]: (n["relation_name"], n["compiled_code"],
                        {models[p]["name"] for p in n["depends_on"]["nodes"] if p in models})
            for n in models.values()}


def ceiling(url: str, target: Path) -> float:
    """The same SQL as plain CREATE TABLE … AS into tables of its own, timed alone: on as many
    connections as dbt has threads (the profile's), each model started once its parents are built,
    as dbt schedules them."""
    import os

    if "PGOPTIONS" in dbt_env(url):  # the session options dbt's connections have (JIT off)
        os.environ["PGOPTIONS"] = dbt_env(url)["PGOPTIONS"]
    engine = make_engine(url)
    pg = engine.dialect.name == "postgresql"
    threads = profile_target(url)["threads"]
    models = compiled_models(target)
    own = {name: f'"ceiling"."{name}"' if pg else f'"ceiling_{name}"' for name in models}
    with engine.begin() as conn:
        if pg:
            conn.execute(sa.text("drop schema if exists ceiling cascade; create schema ceiling"))
        else:
            for table in own.values():
                conn.execute(sa.text(f"drop table if exists {table}"))

    def build(name: str) -> None:
        sql = models[name][1]
        for other, (relation, _, _) in models.items():  # refs point at the ceiling's own tables
            sql = sql.replace(relation, own[other])
        with engine.begin() as conn:
            conn.execute(sa.text(f"create table {own[name]} as {sql}"))

    pending = {name: parents for name, (_, _, parents) in models.items()}
    done: set[str] = set()
    running: dict = {}
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        while pending or running:
            for name in [n for n, parents in pending.items() if parents <= done]:
                running[pool.submit(build, name)] = name
                del pending[name]
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()
                done.add(running.pop(future))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def timed_dbt(args: list[str], url: str, work: Path) -> tuple[float, float]:
    """Wall time of a dbt command run as the Dagster asset runs ``dbt build`` (in this process, no
    JSON artifacts written), and the time its nodes ran (dbt's own figure, from its events)."""
    ended: dict = {}
    models: list[tuple[float, str]] = []

    def keep(event: dict) -> None:
        if event["info"]["name"] == "EndRunResult":
            ended.update(event["data"])
        elif event["info"]["name"] == "LogModelResult":
            models.append((event["data"].get("execution_time", 0.0), event["data"]["node_info"]["node_name"]))

    started = time.perf_counter()
    run_dbt([*args, "--no-write-json"], url, work / "profiles", target_path=work / "target", on_event=keep,
            events={"EndRunResult", "LogModelResult"})
    wall = time.perf_counter() - started
    if args[0] == "run":
        print("    slowest:", ", ".join(f"{name} {seconds:.2f} s" for seconds, name in sorted(models, reverse=True)[:5]))
    return wall, ended["elapsed_time"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--pg", default=DEFAULT_PG, help="server for the scratch database")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite warehouse file instead")
    args = parser.parse_args()
    print(machine(), "· load", load_avg())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.sqlite:
            run(f"sqlite:///{work / 'warehouse.db'}", args.transactions, work)
        else:
            with scratch_pg(args.pg) as url:
                run(url, args.transactions, work)


MX_MARTS = {"mx_sales_daily": "tenant_id, day", "mx_revenue_by_category": "tenant_id, product_category",
            "mx_revenue_by_product": "tenant_id, product, product_category", "mx_invoice_linkage": "tenant_id"}


def mx_marts(url: str) -> dict[str, list[tuple]]:
    """Every row of the MX marts over the changed table, in a stable order."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {mart: [tuple(v for k, v in r._mapping.items() if k != "build_id")  # the build that wrote it
                           for r in conn.execute(sa.text(f"select * from {mart} order by {key}"))]
                    for mart, key in MX_MARTS.items()}
    finally:
        engine.dispose()


def marts_job(url: str, work: Path):
    """The hourly ``marts`` job of the definitions, on this warehouse, and a Dagster instance of
    its own (what each model was last built from is read from there)."""
    import os

    import dagster as dg

    os.environ["DATABASE_URL"] = url  # what the definitions' warehouse resource reads
    os.environ["STOREHOUSE_HOME"] = str(work / "home")
    from pipelines.definitions import build_defs

    return build_defs().resolve_job_def("marts"), dg.DagsterInstance.ephemeral()


def drop_marts(url: str):
    """Every model's table dropped (the warehouse as before any build) and a new Dagster instance
    (nothing recorded as built)."""
    import dagster as dg

    from resources.dbt import model_names

    engine = make_engine(url)
    schema = "analytics." if engine.dialect.name == "postgresql" else ""
    with engine.begin() as conn:
        for name in sorted(model_names()):
            conn.execute(sa.text(f'drop table if exists {schema}"{name}"'))
    engine.dispose()
    return dg.DagsterInstance.ephemeral()


def timed_job(job, instance) -> tuple[float, set[str], int]:
    """Wall time of one run of the job (in process, as its in-process executor runs it), the
    models it built and the dbt tests it ran."""
    from assets.marts import warehouse_marts
    from assets.orders import PAID_IN_FULL

    config = {"ops": {warehouse_marts.op.name: {"config": {"changed_only": True}}},  # the job's own
              "loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # its events are stored, not printed
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=config)
    wall = time.perf_counter() - started
    assert result.success, "the marts job failed"
    built = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    checks = result.get_asset_check_evaluations()  # (the bench has no Stripe payments: that Python check fails)
    assert all(c.passed for c in checks if c.check_name != PAID_IN_FULL), [c.check_name for c in checks if not c.passed]
    return wall, built, len(checks)


def run(url: str, n: int, work: Path) -> None:
    upgrade(url)
    started = time.perf_counter()
    fill(url, n)
    print(f"warehouse filled: {n:,} transactions over {TENANTS} tenants in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    run_dbt(["compile", "--quiet"], url, work / "profiles", target_path=work / "target")  # outside the timing
    print(f"dbt compile (dbt imported into this process, the project parsed): {time.perf_counter() - started:.2f} s")
    job, instance = marts_job(url, work)
    first, first_built, first_checks = timed_job(job, instance)
    print(f"the hourly `marts` job's first run (every model, nothing built before; {len(first_built)} models, "
          f"{first_checks} checks; Dagster around dbt build): {first:.2f} s wall")
    full, full_models = timed_dbt(["run", "--quiet", "--full-refresh"], url, work)
    bare = ceiling(url, work / "target")
    tests, _ = timed_dbt(["test", "--quiet"], url, work)
    threads = profile_target(url)["threads"]
    print(f"full build (dbt run, every model): {full:.2f} s wall, of which {full_models:.2f} s running the models")
    print(f"ceiling (the same SQL as CREATE TABLE … AS, {threads} connection(s)): {bare:.2f} s → dbt at "
          f"{bare / full:.2f}× of it wall, {bare / full_models:.2f}× of its model time (target ≥ 0.5×)")
    print(f"dbt test (every test): {tests:.2f} s")
    instance = drop_marts(url)  # the job's full build again, dbt's parse state warm as each hourly run has it
    whole, whole_built, whole_checks = timed_job(job, instance)
    print(f"the job's full build (its marts dropped, a new Dagster instance; {len(whole_built)} models, "
          f"{whole_checks} checks, every test over whole tables): {whole:.2f} s wall")
    change_one_percent(url, n)
    hourly, built, checks = timed_job(job, instance)
    print(f"what the hourly `marts` job runs after 1 % of transactions changed: it built {len(built)} models "
          f"({', '.join(sorted(built))}) and ran their {checks} checks, {hourly:.2f} s wall = **{hourly / whole:.0%} "
          f"of the job's full build** (both with their tests; target ≤ 20 %); {hourly / (full + tests):.0%} of the "
          f"full dbt run and dbt test, {hourly / full:.0%} of the full dbt run alone, {hourly / first:.0%} of the "
          f"job's first run · load {load_avg()}")
    idle, idle_built, _ = timed_job(job, instance)
    print(f"the job again with nothing changed: built {sorted(idle_built) or 'nothing'} in {idle:.2f} s wall "
          f"(Dagster, the gate, the sources' state)")
    change_one_percent(url, n)  # where the job's time goes: the same models and tests, by dbt alone
    selected = ["--select", "source:warehouse.transactions+", "--indirect-selection", "buildable"]
    models, models_time = timed_dbt(["run", "--quiet", *selected], url, work)
    tested, tested_time = timed_dbt(["test", "--quiet", *selected], url, work)
    print(f"after another 1 %, by dbt alone: those models {models:.2f} s wall = {models / full:.0%} of the full "
          f"dbt run (model time {models_time:.2f} s), their tests {tested:.2f} s wall = {tested / full:.0%}")
    incremental = mx_marts(url)
    run_dbt(["run", "--quiet", "--full-refresh", "--select", "source:warehouse.transactions+"], url,
            work / "profiles", target_path=work / "target")
    assert mx_marts(url) == incremental, "the incremental MX marts differ from a full rebuild"
    print("the job's incremental result passes the dbt tests and equals a full rebuild")


if __name__ == "__main__":
    main()
