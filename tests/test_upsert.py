"""The one write path: idempotent, exact money and UTC time, unchanged rows not rewritten."""

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from syncing.state import quarantine_records
from warehouse.syncs import Rejected
from warehouse.tables.core import quarantine
from warehouse.tables.mx import transactions
from warehouse.upsert import upsert

UTC = dt.timezone.utc


def _rows(tenant_id, n, status="Approved"):
    return [
        {"tenant_id": tenant_id, "id": i, "merchant_id": 1, "amount": Decimal("10.10") + i,
         "status": status, "created_at": dt.datetime(2026, 1, 1, 12, tzinfo=UTC) + dt.timedelta(minutes=i)}
        for i in range(n)
    ]


def test_insert_then_resend_writes_nothing(engine, tenant_id):
    with engine.begin() as conn:
        first = upsert(conn, transactions, _rows(tenant_id, 500))
    with engine.begin() as conn:
        again = upsert(conn, transactions, _rows(tenant_id, 500))
    assert (first.rows, first.written) == (500, 500)
    assert (again.rows, again.written) == (500, 0)


def test_changed_rows_only_are_written_and_touched(engine, tenant_id):
    with engine.begin() as conn:
        upsert(conn, transactions, _rows(tenant_id, 10))
    rows = _rows(tenant_id, 10)
    rows[3]["status"] = "Settled"
    with engine.begin() as conn:
        result = upsert(conn, transactions, rows)
        status = conn.execute(
            sa.select(transactions.c.status).where(transactions.c.tenant_id == tenant_id, transactions.c.id == 3)
        ).scalar_one()
    assert result.written == 1 and status == "Settled"


def test_money_is_exact_and_time_is_utc(engine, tenant_id):
    eastern = dt.timezone(dt.timedelta(hours=-5))
    row = {"tenant_id": tenant_id, "id": 1, "merchant_id": 1, "amount": Decimal("0.1") + Decimal("0.2"),
           "status": "Approved", "created_at": dt.datetime(2026, 3, 1, 7, 30, tzinfo=eastern)}
    with engine.begin() as conn:
        upsert(conn, transactions, [row])
        amount, created = conn.execute(
            sa.select(transactions.c.amount, transactions.c.created_at).where(transactions.c.tenant_id == tenant_id)
        ).one()
    assert amount == Decimal("0.3") and isinstance(amount, Decimal)
    assert created == dt.datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_duplicate_keys_in_one_call_keep_the_last(engine, tenant_id):
    rows = _rows(tenant_id, 3) + [{**_rows(tenant_id, 1)[0], "status": "Voided"}]
    with engine.begin() as conn:
        upsert(conn, transactions, rows)
        statuses = conn.execute(
            sa.select(transactions.c.status).where(transactions.c.tenant_id == tenant_id).order_by(transactions.c.id)
        ).scalars().all()
    assert statuses == ["Voided", "Approved", "Approved"]


def test_same_tenant_key_in_other_tenant_is_a_different_row(engine, tenant_id):
    with engine.begin() as conn:
        upsert(conn, transactions, _rows(tenant_id, 2) + _rows(tenant_id + "-b", 2))
        count = conn.execute(
            sa.select(sa.func.count()).select_from(transactions).where(transactions.c.tenant_id.like(f"{tenant_id}%"))
        ).scalar_one()
    assert count == 4


def test_quarantine_keeps_each_bad_record_once(engine, tenant_id):
    bad = Rejected({"amount": "12.3O"}, "amount: invalid decimal", None)
    with engine.begin() as conn:
        quarantine_records(conn, tenant_id, "s", [bad, bad])
        quarantine_records(conn, tenant_id, "s", [bad])
        rows = conn.execute(sa.select(quarantine.c.reason, quarantine.c.raw).where(quarantine.c.tenant_id == tenant_id)).all()
    assert rows == [("amount: invalid decimal", {"amount": "12.3O"})]


def test_new_key_fast_path_falls_back_when_a_key_appears_meanwhile(engine, tenant_id, monkeypatch):
    """On PostgreSQL, a batch believed all-new is copied straight in; a key inserted by someone
    else in between makes that copy fail and the batch is merged instead, losing nothing."""
    import warehouse.upsert as upsert_module

    if engine.dialect.name != "postgresql":
        import pytest

        pytest.skip("the COPY fast path is PostgreSQL's")
    with engine.begin() as conn:
        upsert(conn, transactions, _rows(tenant_id, 3))
    monkeypatch.setattr(upsert_module, "_pg_any_existing", lambda *args: False)  # the race: probe saw none
    rows = _rows(tenant_id, 5, status="Settled")
    with engine.begin() as conn:
        result = upsert(conn, transactions, rows)
        statuses = conn.execute(sa.select(transactions.c.status).where(transactions.c.tenant_id == tenant_id)).scalars().all()
    assert result.written == 5 and statuses == ["Settled"] * 5
