"""The order state machine and the small SQL helpers every shop service shares.

Payment events can arrive duplicated and in any order, so an outside event may only move an
order *up* its payment rank (a late ``payment_failed`` never undoes ``paid``), and every move is
one compare-and-set ``UPDATE … WHERE status IN (allowed sources)``: two deliveries racing each
other, or the success redirect racing the webhook, cannot both win. Fulfilment statuses
(``processing`` and after) are reached only by the provisioning worker.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from warehouse.tables.orders import order_effects, order_refunds, orders, provisioning_jobs
from warehouse.types import now_utc

PENDING = "pending"
AWAITING_PAYMENT = "awaiting_payment"  # a bank debit is settling
PAYMENT_FAILED = "payment_failed"  # declined; the customer may still pay this session
EXPIRED = "expired"
PAID = "paid"
PROCESSING = "processing"
PROVISIONED = "provisioned"
PARTIALLY_PROVISIONED = "partially_provisioned"
FAILED = "failed"  # no provider could deliver; refunded when enabled
REFUNDED = "refunded"

RANK = {PENDING: 0, AWAITING_PAYMENT: 1, PAYMENT_FAILED: 2, EXPIRED: 3, PAID: 4, PROCESSING: 5,
        PROVISIONED: 6, PARTIALLY_PROVISIONED: 6, FAILED: 6, REFUNDED: 7}
FULFILMENT = frozenset({PROCESSING, PROVISIONED, PARTIALLY_PROVISIONED, FAILED})
FINAL = frozenset({PROVISIONED, PARTIALLY_PROVISIONED, FAILED, REFUNDED, EXPIRED})


def payment_sources(target: str) -> tuple[str, ...]:
    """Statuses an outside payment event may move an order from, to reach ``target``."""
    if target == REFUNDED:
        # A failed order keeps its status: its refund is recorded, the reason stays visible.
        return tuple(s for s in RANK if s not in (FAILED, REFUNDED))
    return tuple(s for s, rank in RANK.items() if rank < RANK[target] and s not in FULFILMENT)


# The statements every payment event runs, built once: constructing a SQLAlchemy statement (its
# clauses coerced, its cache key generated) cost more CPU than executing it on every webhook. The
# order's key is bound by name (``k_tenant``, ``k_order``); what an UPDATE sets is named by the
# parameters it is executed with.
_KEY = (orders.c.tenant_id == sa.bindparam("k_tenant"), orders.c.order_id == sa.bindparam("k_order"))
_LOAD = sa.select(orders).where(*_KEY)
_LOCK = {"postgresql": sa.select(orders).where(*_KEY).with_for_update(),
         "sqlite": sa.update(orders).where(*_KEY).values(status=orders.c.status).returning(*orders.c)}
_BY_INTENT = sa.select(orders.c.order_id).where(orders.c.tenant_id == sa.bindparam("k_tenant"),
                                                orders.c.stripe_payment_intent_id == sa.bindparam("k_intent"))
_MOVES: dict[tuple[str, ...], sa.Update] = {}


def one_of(column: sa.ColumnElement, values: Any) -> sa.ColumnElement[bool]:
    """``column IN (…)`` of constants, one bound parameter each, fixed when the statement is built:
    ``in_(values)`` is an expanding parameter, whose SQL is rendered again at every execution."""
    return column.in_([sa.literal(v, column.type) for v in values])


def move(conn: sa.Connection, tenant_id: str, order_id: str, target: str, sources: tuple[str, ...],
         **fields: Any) -> bool:
    """Set ``target`` (and ``fields``) if the order is in one of ``sources``; True when it moved."""
    now = now_utc()
    values: dict[str, Any] = {"status": target, "status_changed_at": now, **fields}
    if target in FINAL:
        values.setdefault("completed_at", now)
    stmt = _MOVES.get(sources)
    if stmt is None:  # one per set of sources (a handful): the statement is built once
        stmt = _MOVES[sources] = sa.update(orders).where(*_KEY, one_of(orders.c.status, sources))
    result = conn.execute(stmt, {"k_tenant": tenant_id, "k_order": order_id, **values})
    return result.rowcount == 1


def load(conn: sa.Connection, tenant_id: str, order_id: str) -> dict[str, Any] | None:
    row = conn.execute(_LOAD, {"k_tenant": tenant_id, "k_order": order_id}).mappings().one_or_none()
    return dict(row) if row else None


def lock(conn: sa.Connection, tenant_id: str, order_id: str) -> dict[str, Any] | None:
    """Hold the order's row for the rest of the transaction, and read it (one statement); None
    when there is no such order.

    PostgreSQL: ``SELECT … FOR UPDATE``. SQLite has one writer and locks the database at a
    transaction's first write, so a no-op write takes that lock now, returning the row.
    """
    row = conn.execute(_LOCK[conn.dialect.name], {"k_tenant": tenant_id, "k_order": order_id}).mappings().one_or_none()
    return dict(row) if row else None


def raise_refunded(conn: sa.Connection, tenant_id: str, order_id: str, amount: Decimal) -> bool:
    """Refunds only grow: set ``amount_refunded`` to ``amount`` when larger (row locked first), and
    record the refund with its time in ``order_refunds`` (what the marts count up to their cut-off)."""
    lock(conn, tenant_id, order_id)
    where = (orders.c.tenant_id == tenant_id, orders.c.order_id == order_id)
    # Read after the lock; compared in Python, since SQLite keeps Money as text.
    current = conn.execute(sa.select(orders.c.amount_refunded).where(*where)).scalar_one_or_none()
    if current is None or amount <= current:
        return False
    conn.execute(sa.update(orders).where(*where).values(amount_refunded=amount))
    # Stamped when written, after the wait for the lock (PostgreSQL's CURRENT_TIMESTAMP is the
    # transaction's start): the row commits right after its stamp, as a new order's does.
    stamp = {"recorded_at": sa.func.clock_timestamp()} if conn.dialect.name == "postgresql" else {}
    conn.execute(sa.insert(order_refunds).values(tenant_id=tenant_id, order_id=order_id, refunded_total=amount,
                                                 amount=amount - current, **stamp))
    return True


def find_by_intent(conn: sa.Connection, tenant_id: str, payment_intent_id: str) -> str | None:
    return conn.execute(_BY_INTENT, {"k_tenant": tenant_id, "k_intent": payment_intent_id}).scalar_one_or_none()


_IGNORING: dict[tuple[str, str], Any] = {}


def insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING`` on the primary key; True when the row was inserted."""
    stmt = _IGNORING.get((table.name, conn.dialect.name))
    if stmt is None:  # built once per table and dialect: these run on every webhook and job
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        key = [c for c in table.primary_key.columns]
        # RETURNING rather than rowcount: psycopg reports -1 for some single-row inserts.
        stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=[c.name for c in key]).returning(key[0])
        _IGNORING[(table.name, conn.dialect.name)] = stmt
    return conn.execute(stmt, values).first() is not None


def enqueue_provisioning(conn: sa.Connection, tenant_id: str, order_id: str) -> bool:
    """The order's one provisioning job (a second call for the same order changes nothing)."""
    return insert_ignore(conn, provisioning_jobs, {
        "tenant_id": tenant_id, "order_id": order_id, "state": "queued", "next_run_at": now_utc(),
    })


def enqueue_effects(conn: sa.Connection, tenant_id: str, order_id: str, kinds: list[str],
                    delay: dt.timedelta = dt.timedelta(0)) -> int:
    """Outbox rows for what an order change must cause; at most one per order and kind."""
    when = now_utc() + delay
    return sum(
        insert_ignore(conn, order_effects, {
            "tenant_id": tenant_id, "order_id": order_id, "kind": kind, "state": "pending", "next_run_at": when,
        })
        for kind in kinds
    )
