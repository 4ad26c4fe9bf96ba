"""The migrations create exactly what the table definitions describe, on SQLite and PostgreSQL."""

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from warehouse.db import make_engine
from warehouse.marts import not_dbt_owned
from warehouse.migrate import upgrade
from warehouse.tables import metadata
from warehouse.tables.orders import order_refunds, orders, webhook_events


def schema_differences(conn) -> list:
    """Where the database differs from the table definitions: tables, columns, types and indexes
    (server defaults and comments render differently per dialect)."""
    # The marts' tables are dbt's (analytics/): the migrations neither own nor compare them.
    diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": not_dbt_owned}), metadata)
    return [d for d in diff if not (isinstance(d, tuple) and d[0] in ("modify_default", "modify_comment"))
            and not (isinstance(d, list) and d and d[0][0] in ("modify_default", "modify_comment", "modify_nullable"))]


def test_migrated_schema_matches_the_table_definitions(engine):
    with engine.connect() as conn:
        assert schema_differences(conn) == []


def test_orders_refunded_before_0017_have_their_refund_recorded(empty_warehouse):
    """0017 records what each order had refunded so far, at the best time known: when it completed."""
    upgrade(empty_warehouse, "0009_types_numbers_utc")  # 0017 rests on it and on the shop's 0008
    created = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
    completed = created + dt.timedelta(hours=3)

    def order(order_id: str, refunded: str) -> dict:
        return {"tenant_id": "t1", "order_id": order_id, "status": "failed", "email": "b@example.com",
                "provider": "esimcard", "provider_package_id": "p1", "package_name": "1GB", "quantity": 2,
                "unit_price": Decimal("4.5"), "amount_total": Decimal("9"), "currency": "USD",
                "amount_refunded": Decimal(refunded), "request_hash": "h" * 64, "created_at": created,
                "status_changed_at": completed, "completed_at": completed}

    engine = make_engine(empty_warehouse)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(orders), [order("ord_refunded", "4.5"), order("ord_kept", "0")])
        upgrade(empty_warehouse)
        with engine.connect() as conn:
            recorded = [dict(r) for r in conn.execute(sa.select(order_refunds)).mappings()]
    finally:
        engine.dispose()
    assert recorded == [{"tenant_id": "t1", "order_id": "ord_refunded", "refunded_total": Decimal("4.5"),
                         "amount": Decimal("4.5"), "recorded_at": completed}]


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


def test_payment_codes_that_are_not_invoice_numbers_move_out_at_0008(empty_warehouse):
    upgrade(empty_warehouse, "0001_foundation")
    engine = make_engine(empty_warehouse)
    try:
        with engine.begin() as conn:
            for pid, invoice in ((1, "100042"), (2, "B00INYBB"), (3, None)):
                conn.execute(sa.text(
                    "INSERT INTO transactions (tenant_id, id, merchant_id, amount, status, created_at, invoice_number,"
                    " has_invoice) VALUES ('t1', :id, 9, 1, 'Settled', '2026-01-01 00:00:00', :invoice, false)"),
                    {"id": pid, "invoice": invoice})
            for key, source_id in (("a", "number:B00INYBB"), ("b", "number:100077"), ("c", "id:5")):
                conn.execute(sa.text(
                    "INSERT INTO quarantine (tenant_id, stream, record_key, source_id, reason, raw)"
                    " VALUES ('t1', 'mx_invoices', :key, :source_id, 'why', '{}')"), {"key": key, "source_id": source_id})
        upgrade(empty_warehouse)
        with engine.connect() as conn:
            stored = conn.execute(sa.text(
                "SELECT id, invoice_number, invoice_code FROM transactions ORDER BY id")).all()
            kept = conn.execute(sa.text("SELECT source_id FROM quarantine ORDER BY source_id")).scalars().all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in stored] == [(1, "100042", None), (2, None, "B00INYBB"), (3, None, None)]
    assert kept == ["id:5", "number:100077"]


BEFORE_0009 = "0008_writers_pos_tokens"  # 0009 rests on it (and depends on the other branches' heads)


def test_sqlite_money_and_times_from_before_0009_become_numbers_and_one_utc_form(empty_warehouse):
    """Data stored the old way (money as text, offset-less times, whole-second defaults) is
    converted in place; no row is lost (no cascade from rebuilt parents), the view survives,
    and the schema is again what the tables describe. On PostgreSQL the migration changes nothing."""
    from alembic import command

    from warehouse.migrate import alembic_config
    from warehouse.tables.core import tenant_connections, tenants
    from warehouse.tables.mx import transactions
    from warehouse.tables.pos import customers

    upgrade(empty_warehouse)
    engine = make_engine(empty_warehouse)
    sqlite = engine.dialect.name == "sqlite"
    utc = dt.timezone.utc
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(tenants), {"tenant_id": "t1", "name": "T"})
            conn.execute(sa.insert(tenant_connections), {"tenant_id": "t1", "system": "mx_merchant", "base_url": "u",
                                                         "credentials": "", "options": {}})  # sealed text since 0008
            conn.execute(sa.insert(customers), {"tenant_id": "t1", "source": "treez", "customer_id": "c1",
                                                "status": "active", "loyalty_points": Decimal("12.5")})
            conn.execute(sa.insert(transactions), [
                {"tenant_id": "t1", "id": i, "merchant_id": 1, "amount": Decimal(a), "status": "Approved",
                 "created_at": dt.datetime(2026, 1, i, 5, 6, 7, 890, tzinfo=utc)}
                for i, a in [(1, "872"), (2, "99.34"), (3, "-0.0001")]])
        command.downgrade(alembic_config(empty_warehouse), BEFORE_0009)  # back to how main stored them
        with engine.begin() as conn:
            if sqlite:  # what an analyst met before: text money, offset-less times
                assert conn.exec_driver_sql("SELECT max(amount) FROM transactions").scalar_one() == "99.3400"
                conn.exec_driver_sql("INSERT INTO tenants (tenant_id, name) VALUES ('t2', 'T2')")
                legacy = conn.exec_driver_sql("SELECT first_seen_at FROM tenants WHERE tenant_id = 't2'").scalar_one()
                assert len(legacy) == 19  # CURRENT_TIMESTAMP: whole seconds, no offset
        upgrade(empty_warehouse)
        with engine.connect() as conn:
            top = conn.exec_driver_sql("SELECT max(amount) FROM transactions").scalar_one()
            amounts = conn.execute(sa.select(transactions.c.amount).order_by(transactions.c.id)).scalars().all()
            points = conn.execute(sa.select(customers.c.loyalty_points)).scalar_one()
            created = conn.execute(sa.select(transactions.c.created_at).order_by(transactions.c.id)).scalars().all()
            connections = conn.execute(sa.select(sa.func.count()).select_from(tenant_connections)).scalar_one()
            view = conn.exec_driver_sql("SELECT count(*), sum(loyalty_points) FROM customers_analytics").one()
            diff = schema_differences(conn)
            if sqlite:
                times = [v for (v,) in conn.exec_driver_sql(
                    "SELECT created_at FROM transactions UNION ALL SELECT first_seen_at FROM tenants")]
                assert all(len(t) == 32 and t.endswith("+00:00") for t in times), times
                assert conn.exec_driver_sql("SELECT typeof(amount) FROM transactions WHERE id = 1").scalar_one() \
                    == "integer"
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        engine.dispose()
    assert Decimal(str(top)) == 872
    assert amounts == [Decimal("872"), Decimal("99.34"), Decimal("-0.0001")] and points == Decimal("12.5")
    assert created[1] == dt.datetime(2026, 1, 2, 5, 6, 7, 890, tzinfo=utc)
    assert connections == 1 and view[0] == 1 and Decimal(str(view[1])) == Decimal("12.5")
    assert diff == []


def test_mx_marts_of_the_old_shape_are_dropped_at_0012(empty_warehouse):
    """The tables the previous dbt models built (no watermark in mx_sales_daily) go, so the next
    dbt build makes them in full instead of merging rows of a new shape into them."""
    upgrade(empty_warehouse, "0011_mx_updated_at_index")
    engine = make_engine(empty_warehouse)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE mx_sales_daily (tenant_id varchar(64), day date, sales bigint)"))
            conn.execute(sa.text("CREATE TABLE mx_transactions_daily (day_key text, tenant_id varchar(64))"))
        upgrade(empty_warehouse)
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            if conn.dialect.name == "postgresql":
                names |= set(sa.inspect(conn).get_table_names(schema="analytics"))
    finally:
        engine.dispose()
    assert not names & {"mx_sales_daily", "mx_transactions_daily"}
