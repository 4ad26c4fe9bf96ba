"""The migrations create exactly what the table definitions describe, on SQLite and PostgreSQL."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from warehouse.db import make_engine
from warehouse.migrate import upgrade
from warehouse.tables import metadata
from warehouse.tables.shop import webhook_events


def test_migrated_schema_matches_the_table_definitions(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Server defaults and comments render differently per dialect; tables, columns and indexes must match.
    relevant = [d for d in diff if not (isinstance(d, tuple) and d[0] in ("modify_default", "modify_comment"))
                and not (isinstance(d, list) and d and d[0][0] in ("modify_default", "modify_comment", "modify_nullable"))]
    assert relevant == []


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
