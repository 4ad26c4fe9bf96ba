"""Types analysts can trust: money exact and numeric, times in one UTC form, every column described."""

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.warehouse import engine_for
from warehouse.migrate import upgrade
from warehouse.tables import ANALYST_TABLES, ANALYST_VIEWS, metadata
from warehouse.tables.core import tenants
from warehouse.tables.mx import transactions
from warehouse.types import SQLITE_MONEY_LIMIT, SQLITE_NOW, Money, UTCDateTime, utc_now
from warehouse.upsert import upsert

UTC = dt.timezone.utc
ONE_TIME_FORM = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00")
AMOUNTS = st.decimals(min_value=-SQLITE_MONEY_LIMIT, max_value=SQLITE_MONEY_LIMIT, places=4,
                      allow_nan=False, allow_infinity=False)


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory) -> sa.Engine:
    """A migrated SQLite warehouse, whatever DATABASE_URL says (SQLite-only storage is checked here)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite-types') / 'warehouse.db'}"
    upgrade(url)
    return engine_for(url)


def _payments(tenant: str, amounts, start: int = 0) -> list[dict]:
    return [{"tenant_id": tenant, "id": start + i, "merchant_id": 1, "amount": amount, "status": "Approved",
             "created_at": dt.datetime(2026, 12, 1, tzinfo=UTC) + dt.timedelta(hours=i)} for i, amount in enumerate(amounts)]


def _scalar(conn, sql: str, tenant: str):
    return conn.execute(sa.text(sql), {"t": tenant}).scalar_one()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amounts=st.lists(AMOUNTS, min_size=2, max_size=12))
def test_amounts_read_back_exactly_and_compare_as_numbers(engine, amounts):
    """Any amount within the bound, written by the upsert or by SQLAlchemy, reads back as the same
    Decimal; SQL's max and order by treat them as numbers."""
    tenant = f"h-{uuid.uuid4().hex[:10]}"
    half = len(amounts) // 2
    rows = _payments(tenant, amounts)
    with engine.begin() as conn:
        upsert(conn, transactions, rows[:half])
        conn.execute(sa.insert(transactions), rows[half:])
    with engine.begin() as conn:
        again = upsert(conn, transactions, rows)  # the same amounts again: nothing is rewritten
        back = dict(conn.execute(sa.select(transactions.c.id, transactions.c.amount)
                                 .where(transactions.c.tenant_id == tenant)).all())
        top = _scalar(conn, "SELECT max(amount) FROM transactions WHERE tenant_id = :t", tenant)
        order = conn.execute(sa.text("SELECT id FROM transactions WHERE tenant_id = :t ORDER BY amount, id"),
                             {"t": tenant}).scalars().all()
    assert again.written == 0
    assert back == dict(enumerate(amounts))
    assert all(isinstance(v, Decimal) and v.as_tuple().exponent == -4 for v in back.values())
    assert Decimal(str(top)) == max(amounts)
    assert order == [i for i, _ in sorted(enumerate(amounts), key=lambda pair: (pair[1], pair[0]))]


def test_the_largest_payment_is_the_max(engine, tenant_id):
    """The issue's first query: max(amount) answered '99.3400' when the largest payment was 872."""
    with engine.begin() as conn:
        upsert(conn, transactions, _payments(tenant_id, [Decimal("99.34"), Decimal("872"), Decimal("100.5")]))
        top = _scalar(conn, "SELECT max(amount) FROM transactions WHERE tenant_id = :t", tenant_id)
        total = _scalar(conn, "SELECT sum(amount) FROM transactions WHERE tenant_id = :t", tenant_id)
        above = _scalar(conn, "SELECT count(*) FROM transactions WHERE tenant_id = :t AND amount > 100", tenant_id)
    assert Decimal(str(top)) == 872 and round(Decimal(str(total)), 4) == Decimal("1071.84") and above == 2


def test_sqlite_stores_numbers_and_refuses_what_it_cannot_keep_exact(sqlite_engine):
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    with sqlite_engine.begin() as conn:
        upsert(conn, transactions, _payments(tenant, [Decimal("12.5"), Decimal("3"), SQLITE_MONEY_LIMIT]))
        kinds = conn.execute(sa.text("SELECT typeof(amount) FROM transactions WHERE tenant_id = :t ORDER BY id"),
                             {"t": tenant}).scalars().all()
    assert kinds == ["real", "integer", "real"]
    for bad in (SQLITE_MONEY_LIMIT + Decimal("0.0001"), -SQLITE_MONEY_LIMIT - 1, Decimal("NaN")):
        with pytest.raises(ValueError, match="outside what SQLite stores exactly"):
            Money.raw(bad, "sqlite")
    assert Money.raw(Decimal("0.00005"), "sqlite") == 0.0001  # halves away from zero, as PostgreSQL rounds


def _raw_times(conn, table: sa.Table, where) -> list[str]:
    cols = [c for c in table.c if isinstance(c.type, UTCDateTime)]
    row = conn.execute(sa.select(*[sa.cast(c, sa.Text) for c in cols]).where(where)).one()
    return [v for v in row if v is not None]


def test_sqlite_writes_every_time_in_one_utc_form(sqlite_engine):
    """Bound values, server defaults, the upsert's touch and utc_now() all write the one form,
    so text order is time order."""
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    eastern = dt.timezone(dt.timedelta(hours=-5))
    rows = _payments(tenant, [Decimal(1), Decimal(2)])
    rows[0]["created_at"] = dt.datetime(2026, 3, 1, 7, 30, 5, tzinfo=eastern)
    rows[1]["created_at"] = dt.datetime(2026, 3, 1, 12, 30)  # naive: taken as UTC
    with sqlite_engine.begin() as conn:
        conn.execute(sa.insert(tenants), {"tenant_id": tenant, "name": tenant})  # server defaults
        upsert(conn, transactions, rows)
        upsert(conn, transactions, [{**rows[0], "status": "Settled"}])  # the touch: updated_at = now
        conn.execute(sa.update(tenants).where(tenants.c.tenant_id == tenant).values(updated_at=utc_now()))
        written = (_raw_times(conn, tenants, tenants.c.tenant_id == tenant)
                   + _raw_times(conn, transactions, (transactions.c.tenant_id == tenant) & (transactions.c.id == 0))
                   + _raw_times(conn, transactions, (transactions.c.tenant_id == tenant) & (transactions.c.id == 1)))
        first = conn.execute(sa.text("SELECT min(created_at) FROM transactions WHERE tenant_id = :t"),
                             {"t": tenant}).scalar_one()
    assert len(written) == 8 and all(ONE_TIME_FORM.fullmatch(v) for v in written), written
    assert first == "2026-03-01 12:30:00.000000+00:00"
    assert "2026-03-01 12:30:05.000000+00:00" in written


def test_the_migrated_sqlite_schema_stores_numbers_and_defaults_to_the_one_form(sqlite_engine):
    """Every money column has NUMERIC affinity and every "now" default writes the one time form,
    in the schema the migrations really build (tables added later included)."""
    inspector = sa.inspect(sqlite_engine)
    wrong = []
    for table in metadata.sorted_tables:
        reflected = {c["name"]: c for c in inspector.get_columns(table.name)}
        for column in table.c:
            got = reflected[column.name]
            if isinstance(column.type, Money) and "NUMERIC" not in str(got["type"]).upper():
                wrong.append(f"{table.name}.{column.name}: {got['type']}")
            if isinstance(column.type, UTCDateTime) and column.server_default is not None \
                    and SQLITE_NOW not in (got["default"] or ""):
                wrong.append(f"{table.name}.{column.name} defaults to {got['default']}")
    assert wrong == []


def test_every_analyst_column_is_described(engine):
    """Tables by their column comments (the Dagster Columns tab shows them), views by their descriptions."""
    missing = [f"{name}.{c.name}" for name in ANALYST_TABLES for c in metadata.tables[name].c if not c.comment]
    inspector = sa.inspect(engine)
    for view, descriptions in ANALYST_VIEWS.items():
        missing += [f"{view}.{c['name']}" for c in inspector.get_columns(view) if not descriptions.get(c["name"])]
    assert missing == []


def test_every_table_analysts_read_is_among_those_checked_for_descriptions():
    from warehouse.schemas import ANALYST

    assert [name for name in ANALYST if name in metadata.tables and name not in ANALYST_TABLES] == []


