"""Leased job rows: the claim locks what it picks once, however many jobs are waiting.

A plan-shape check, not a timing: with 2,000 jobs queued and no planner statistics yet (a fresh
table, as after a deploy or a backlog), the claim's locking pick must run once. Written as
``key IN (locking pick)``, PostgreSQL's generic plan ran it once per due row.
"""

import re

import psycopg.sql
import sqlalchemy as sa

from commerce.leases import LeasedTable
from tests.conftest import requires_postgres
from warehouse.tables.orders import orders, provisioning_jobs
from warehouse.types import now_utc


def lockrows_loops(plan: dict) -> list[int]:
    found = [plan["Actual Loops"]] if plan["Node Type"] == "LockRows" else []
    return found + [n for child in plan.get("Plans", []) for n in lockrows_loops(child)]


def generic_plan(conn: sa.Connection, stmt: sa.Update) -> dict:
    """EXPLAIN ANALYZE of ``stmt`` as a prepared statement with a generic plan (what psycopg runs
    after a statement's fifth execution)."""
    compiled = stmt.compile(dialect=conn.dialect)
    names = list(compiled.params)
    sql = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m[1]) + 1}", str(compiled))
    raw = conn.connection.driver_connection  # the same connection, inside the test's transaction
    args = psycopg.sql.SQL(", ").join(psycopg.sql.Literal(compiled.params[n]) for n in names).as_string(raw)
    raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    raw.execute(f"PREPARE claim AS {sql}")
    return raw.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim({args})").fetchone()[0][0]["Plan"]


@requires_postgres("the claim's plan is PostgreSQL's")
def test_claim_locks_its_pick_once_with_thousands_queued(engine, tenant_id):
    now = now_utc()
    ids = [f"ord_{i:024d}" for i in range(2000)]
    with engine.begin() as conn:
        conn.execute(sa.insert(orders), [{
            "tenant_id": tenant_id, "order_id": i, "status": "paid", "email": "a@b.io", "provider": "airalo",
            "provider_package_id": "x", "package_name": "x", "quantity": 1, "unit_price": 1, "amount_total": 1,
            "currency": "USD", "request_hash": "x"} for i in ids])
        conn.execute(sa.insert(provisioning_jobs), [
            {"tenant_id": tenant_id, "order_id": i, "state": "queued", "next_run_at": now} for i in ids])
    jobs = LeasedTable(engine, provisioning_jobs, open_state="queued", counter="runs")
    for pick in (jobs.due_rows(now_utc(), 4), jobs.due_rows(now_utc(), key=(tenant_id, ids[-1]))):
        with engine.connect() as conn, conn.begin() as transaction:
            plan = generic_plan(conn, jobs.claim_statement("postgresql", pick, now_utc(), "token", 60))
            transaction.rollback()
        assert lockrows_loops(plan) == [1], plan
