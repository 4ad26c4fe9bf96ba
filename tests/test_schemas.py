"""The analysts' schema: every table and view is classified, analysts see theirs and nothing else."""

import re
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from resources.warehouse import engine_for
from storehouse.cli import app
from tests.conftest import requires_postgres
from warehouse import schemas
from warehouse.db import make_engine, normalise_url
from warehouse.migrate import alembic_config, applied, current, upgrade
from warehouse.tables import metadata
from warehouse.tables.orders import orders, webhook_events

README = Path(__file__).resolve().parent.parent / "README.md"
CLASSIFIED = set(schemas.ANALYST) | set(schemas.OPERATIONAL)


def test_every_table_in_the_definitions_is_classified():
    assert not set(schemas.ANALYST) & set(schemas.OPERATIONAL)
    unclassified = sorted(set(metadata.tables) - CLASSIFIED)
    assert unclassified == [], "add them to warehouse.schemas.ANALYST or OPERATIONAL"
    with pytest.raises(schemas.Unclassified):
        schemas.schema_of("a_table_nobody_placed")


def test_every_migrated_table_and_view_is_classified_and_placed(empty_warehouse):
    upgrade(empty_warehouse)
    engine = make_engine(empty_warehouse)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            found = set(inspector.get_table_names()) | set(inspector.get_view_names())
            placed = schemas.relations(conn) if conn.dialect.name == "postgresql" else []
    finally:
        engine.dispose()
    assert sorted(found - CLASSIFIED) == [], "add them to warehouse.schemas.ANALYST or OPERATIONAL"
    assert sorted(CLASSIFIED - found) == [], "classified but created by no migration: remove them"
    for schema, name, _kind in placed:  # PostgreSQL: each in its schema, nothing left in public
        assert schema == schemas.schema_of(name), name


def test_analyst_views_leave_out_contacts_secrets_and_bodies(engine, tenant_id):
    hidden = {"orders_analytics": {"email", "checkout_url", "idempotency_key", "request_hash"},
              "webhook_events_analytics": {"payload"},
              "customers_analytics": {"email", "phone", "first_name", "last_name", "street", "medical_id"},
              "studio_invoices_analytics": {"stripe_checkout_session_id", "stripe_checkout_url",
                                            "stripe_checkout_amount", "stripe_checkout_expires_at",
                                            "public_token_sha256", "notes"},
              "studio_clients_analytics": {"name", "company", "email", "phone", "address", "abn"}}
    order = {"tenant_id": tenant_id, "order_id": "ord_1", "status": "paid", "email": "jo@example.com",
             "provider": "airalo", "provider_package_id": "pkg", "package_name": "Japan 1 GB", "quantity": 1,
             "unit_price": 5, "amount_total": 5, "currency": "USD", "request_hash": "h" * 64,
             "idempotency_key": "idem-1", "checkout_url": "https://checkout.stripe.test/c/pay/cs_1"}
    with engine.begin() as conn:
        conn.execute(sa.insert(orders), [order])
        conn.execute(sa.insert(webhook_events), [{"tenant_id": tenant_id, "event_id": "evt_1", "type": "x",
                                                  "order_id": "ord_1", "outcome": "applied", "payload": {"k": "body"}}])
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for view, columns in hidden.items():
            seen = {c["name"] for c in inspector.get_columns(view)}
            assert "tenant_id" in seen and not seen & columns, view
        row = conn.execute(sa.text("SELECT * FROM orders_analytics WHERE tenant_id = :t"), {"t": tenant_id}).one()
        event = conn.execute(sa.text("SELECT * FROM webhook_events_analytics WHERE tenant_id = :t"),
                             {"t": tenant_id}).one()
    assert (row.order_id, row.status, row.package_name) == ("ord_1", "paid", "Japan 1 GB")
    assert (event.event_id, event.outcome) == ("evt_1", "applied")
    for view, columns in hidden.items():
        assert schemas.schema_of(view) == schemas.ANALYTICS


def test_readme_lists_exactly_the_analyst_tables():
    section = README.read_text().split("## For analysts", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
    assert listed == set(schemas.ANALYST)
    assert "warehouse grant-analyst" in section


def test_on_sqlite_grant_analyst_explains_and_lists_the_analyst_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    done = CliRunner().invoke(app, ["warehouse", "grant-analyst", "analyst"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "no roles" in done.output
    assert set(re.findall(r"^│ (\w+) +│", done.output, flags=re.M)) == set(schemas.ANALYST)


# -- PostgreSQL: a role that reads the analysts' schema and nothing else -----------------------

@pytest.fixture
def analyst_role(empty_warehouse, monkeypatch):
    """A fresh role name, dropped with whatever it was granted (after the database is gone)."""
    if make_url(empty_warehouse).get_backend_name() != "postgresql":
        pytest.skip("SQLite has no roles: the README lists what is for analysts")
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DATABASE_URL", empty_warehouse)
    yield role
    admin = make_engine(make_url(empty_warehouse).set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(empty_warehouse).database}" WITH (FORCE)')
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
    finally:
        admin.dispose()


def _login(url: str, role: str, password: str) -> psycopg.Connection:
    parsed = make_url(normalise_url(url))
    return psycopg.connect(host=parsed.host, port=parsed.port or 5432, dbname=parsed.database, user=role,
                           password=password, autocommit=True)


@requires_postgres("roles and schemas are PostgreSQL's")
@pytest.mark.parametrize("empty_warehouse", ["postgresql"], indirect=True)
def test_analyst_role_reads_analytics_and_is_refused_everything_operational(empty_warehouse, analyst_role):
    runner, sent = CliRunner(), []
    sa.event.listen(engine_for(empty_warehouse), "before_cursor_execute",
                    lambda _conn, _cursor, statement, *_: sent.append(statement))
    for _ in range(2):  # idempotent
        done = runner.invoke(app, ["warehouse", "grant-analyst", analyst_role, "--password", "pw-Analyst-1"])
        assert done.exit_code == 0, done.output
        assert "pw-Analyst-1" not in done.output
    assert any("PASSWORD 'SCRAM-SHA-256$" in statement for statement in sent)  # hashed before it is sent
    assert not any("pw-Analyst-1" in statement for statement in sent)
    owner = make_engine(empty_warehouse)
    try:
        with owner.connect() as conn:
            stored = conn.execute(sa.text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"), {"r": analyst_role})
            assert stored.scalar().startswith("SCRAM-SHA-256$")
        with owner.begin() as conn:  # what dbt would build later, as the warehouse's owner
            conn.exec_driver_sql("CREATE TABLE analytics.mart_built_later AS SELECT 1 AS n")
    finally:
        owner.dispose()

    with _login(empty_warehouse, analyst_role, "pw-Analyst-1") as conn:
        for name in [*schemas.ANALYST, "mart_built_later"]:
            conn.execute(f"SELECT * FROM {name} LIMIT 1")  # by plain name: search_path is analytics
            conn.execute(f"SELECT * FROM analytics.{name} LIMIT 1")
        visible = {row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema IN ('ops', 'public')")}
        assert visible == set()
        for name in schemas.OPERATIONAL:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema ops"):
                conn.execute(f"SELECT * FROM ops.{name} LIMIT 1")
            with pytest.raises(psycopg.errors.UndefinedTable):
                conn.execute(f"SELECT * FROM {name} LIMIT 1")
            with pytest.raises(psycopg.errors.UndefinedTable):
                conn.execute(f"SELECT * FROM public.{name} LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # read-only
            conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ('x', 'x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE analytics.mine (n int)")


@requires_postgres("roles are PostgreSQL's")
@pytest.mark.parametrize("empty_warehouse", ["postgresql"], indirect=True)
def test_grant_analyst_refuses_the_warehouse_owner(empty_warehouse, analyst_role):
    owner = make_url(empty_warehouse).username
    done = CliRunner().invoke(app, ["warehouse", "grant-analyst", owner], env={"COLUMNS": "200"})
    assert done.exit_code == 2 and "cannot be made read-only" in done.output
    done = CliRunner().invoke(app, ["warehouse", "grant-analyst", "Robert'); DROP TABLE tenants; --"],
                              env={"COLUMNS": "200"})
    assert done.exit_code == 2 and "role name" in done.output


@requires_postgres("schemas are PostgreSQL's")
@pytest.mark.parametrize("empty_warehouse", ["postgresql"], indirect=True)
def test_a_warehouse_migrated_before_the_schemas_is_placed_by_the_next_upgrade(empty_warehouse):
    upgrade(empty_warehouse)
    heads, every = current(empty_warehouse), applied(empty_warehouse)
    command.downgrade(alembic_config(empty_warehouse), "0009_types_numbers_utc")
    engine = make_engine(empty_warehouse)
    try:
        with engine.begin() as conn:  # the layout before: every table in public, no schemas
            for schema, name, kind in schemas.relations(conn):
                conn.exec_driver_sql(f"ALTER {'VIEW' if kind == 'v' else 'TABLE'} {schema}.{name} SET SCHEMA public")
            conn.exec_driver_sql("DROP SCHEMA analytics")
            conn.exec_driver_sql("DROP SCHEMA ops")
            conn.exec_driver_sql("INSERT INTO tenants (tenant_id, name) VALUES ('kept', 'Kept')")
        past = {"0009_schemas_analyst_views", "0013_pos_events_comments"}  # the pos_events branch after the types
        assert applied(empty_warehouse) == every - past  # the shop's 0017 rests on the types: it stays

        upgrade(empty_warehouse)
        assert current(empty_warehouse) == heads
        with engine.connect() as conn:
            placed = schemas.relations(conn)
            assert conn.execute(sa.text("SELECT name FROM analytics.tenants")).scalars().all() == ["Kept"]
            assert conn.execute(sa.text("SELECT count(*) FROM ops.alembic_version")).scalar() == len(heads)
    finally:
        engine.dispose()
    assert {name for _, name, _ in placed} == CLASSIFIED
    assert all(schema == schemas.schema_of(name) for schema, name, _ in placed)
