"""An analyst's aggregate queries answer the same on SQLite and on PostgreSQL, over the same synced data."""

import datetime as dt
import uuid
from decimal import Decimal

import sqlalchemy as sa

from resources.warehouse import engine_for
from tests.conftest import requires_postgres
from tests.test_mx_sync import connect, full_sync, make_merchant
from warehouse.migrate import upgrade
from warehouse.types import decimal_of, sqlite_time

# The same SQL text on both databases: what an analyst would type.
QUERIES = {
    "largest payment": "SELECT max(amount) FROM transactions WHERE tenant_id = :t",
    "smallest payment": "SELECT min(amount) FROM transactions WHERE tenant_id = :t",
    "total": "SELECT round(sum(amount), 4) FROM transactions WHERE tenant_id = :t",
    "payments over 100": "SELECT count(*) FROM transactions WHERE tenant_id = :t AND amount > 100",
    "top 25": "SELECT id, amount FROM transactions WHERE tenant_id = :t ORDER BY amount DESC, id LIMIT 25",
    "first and last": "SELECT min(created_at), max(created_at) FROM transactions WHERE tenant_id = :t",
    "newest 10": "SELECT id FROM transactions WHERE tenant_id = :t ORDER BY created_at DESC, id LIMIT 10",
    "per day": "SELECT date(created_at) AS day, count(*), round(sum(amount), 4), max(amount) FROM transactions "
               "WHERE tenant_id = :t GROUP BY date(created_at) ORDER BY day",
    "invoice totals": "SELECT status, count(*), round(sum(total_amount), 4), max(total_amount) FROM invoices "
                      "WHERE tenant_id = :t GROUP BY status ORDER BY status",
    "units per product": "SELECT product_name, round(sum(quantity), 4), max(price) FROM invoice_lines "
                         "WHERE tenant_id = :t GROUP BY product_name ORDER BY product_name",
}


def _same_form(value):
    """One form for a value whichever driver returned it (numbers as 4-place Decimals, times as UTC text)."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return decimal_of(value)
    if isinstance(value, dt.datetime):
        return sqlite_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _answers(engine, tenant: str) -> dict:
    with engine.connect() as conn:
        return {name: [tuple(map(_same_form, row)) for row in conn.execute(sa.text(sql), {"t": tenant})]
                for name, sql in QUERIES.items()}


@requires_postgres("compares SQLite with PostgreSQL")
def test_aggregates_answer_the_same_on_sqlite_and_postgresql(sandbox, engine, tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'warehouse.db'}"
    upgrade(sqlite)
    sqlite_engine = engine_for(sqlite)
    tenant = f"a-{uuid.uuid4().hex[:10]}"
    merchant = make_merchant(sandbox, transactions=1500)  # 97 s apart: three UTC days
    for warehouse in (sqlite_engine, engine):
        full_sync(warehouse, connect(warehouse, sandbox, tenant, merchant), tenant)
    on_sqlite, on_postgres = _answers(sqlite_engine, tenant), _answers(engine, tenant)
    assert len(on_sqlite["per day"]) > 1 and len(on_sqlite["top 25"]) == 25 and on_sqlite["units per product"]
    assert on_sqlite == on_postgres


@requires_postgres("checks PostgreSQL sessions")
def test_postgresql_sessions_bucket_by_the_utc_day(engine):
    """Our sessions run in UTC whatever the server's TimeZone, so date(created_at) is the UTC day."""
    with engine.connect() as conn:
        zone = conn.exec_driver_sql("SHOW TimeZone").scalar_one()
        day = conn.exec_driver_sql("SELECT date(TIMESTAMPTZ '2026-12-06 23:30:00-05:00')").scalar_one()
    assert zone == "UTC" and day == dt.date(2026, 12, 7)
