"""The migrations create exactly what the table definitions describe, on SQLite and PostgreSQL."""

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from tests.conftest import postgres_url
from warehouse.db import make_engine, normalise_url
from warehouse.marts import not_dbt_owned
from warehouse.migrate import upgrade
from warehouse.tables import metadata
from warehouse.tables.shop import webhook_events


def test_migrated_schema_matches_the_table_definitions(engine):
    with engine.connect() as conn:
        # The marts' tables are dbt's (analytics/): the migrations neither own nor compare them.
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": not_dbt_owned}), metadata)
    # Server defaults and comments render differently per dialect; tables, columns and indexes must match.
    relevant = [d for d in diff if not (isinstance(d, tuple) and d[0] in ("modify_default", "modify_comment"))
                and not (isinstance(d, list) and d and d[0][0] in ("modify_default", "modify_comment", "modify_nullable"))]
    assert relevant == []


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_warehouse(request, tmp_path) -> Iterator[str]:
    """A warehouse no migration has touched yet: a SQLite file, or a scratch PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    base = postgres_url()
    if base is None:
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgresql://… to run it")
    name = f"storehouse_migrate_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(normalise_url(base)).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def test_events_stored_before_0007_lose_their_order_tokens(empty_warehouse):
    upgrade(empty_warehouse, "0006_attempts_no_codes")
    base = "https://shop.test/shops/t1/orders/ord_1"
    session = {"id": "cs_1", "object": "checkout.session", "success_url": f"{base}/return?token=SECRET&session_id=cs_1",
               "cancel_url": f"{base}?token=SECRET", "metadata": {"order_id": "ord_1"}}
    rows = [("evt_1", "checkout.session.completed", session),
            ("evt_2", "checkout.session.expired", {**session, "success_url": f"{base}/return"}),
            ("evt_3", "payment_intent.succeeded", {"id": "pi_1", "description": "kept?token=as-is"})]
    engine = make_engine(empty_warehouse)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(webhook_events), [
                {"tenant_id": "t1", "event_id": event_id, "type": kind, "outcome": "applied",
                 "payload": {"id": event_id, "type": kind, "data": {"object": obj}}} for event_id, kind, obj in rows])
        upgrade(empty_warehouse)
        with engine.connect() as conn:
            stored = dict(conn.execute(sa.select(webhook_events.c.event_id, webhook_events.c.payload)).all())
    finally:
        engine.dispose()
    assert "SECRET" not in str(stored)
    completed = stored["evt_1"]["data"]["object"]
    assert completed["success_url"] == f"{base}/return" and completed["cancel_url"] == base
    assert completed["metadata"] == {"order_id": "ord_1"} and completed["id"] == "cs_1"
    assert stored["evt_2"]["data"]["object"]["cancel_url"] == base
    assert stored["evt_3"]["data"]["object"]["description"] == "kept?token=as-is"  # not a session: untouched
