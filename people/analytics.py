"""Investors' analytics: aggregates per tenant and day across exactly the tenants granted to them,
never a customer row. Payments (MX Merchant) are summed per day here; the shop's sales come from
its mart (``mart_orders_daily``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from warehouse.tables.mx import transactions

# The shop's daily mart is a dbt model (analytics/models/orders): read as the table dbt builds.
mart_orders_daily = sa.table("mart_orders_daily", *(sa.column(name) for name in (
    "tenant_id", "day", "currency", "orders", "paid_orders", "provisioned", "net_revenue")))


def _day(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.substr(column, 1, 10)  # SQLite keeps UTC text, 'YYYY-MM-DD HH:MM:SS...'


def payments_daily(conn: sa.Connection, tenant_ids: list[str], since: dt.date | None = None,
                   until: dt.date | None = None) -> list[dict[str, Any]]:
    t = transactions.c
    day = _day(t.created_at, conn.dialect.name).label("day")
    approved = t.status == "Approved"
    query = (sa.select(t.tenant_id, day, sa.func.count().label("payments"),
                       sa.func.sum(sa.case((approved, 1), else_=0)).label("approved"),
                       sa.func.sum(sa.case((t.has_invoice.is_(True), 1), else_=0)).label("with_invoice"),
                       sa.func.sum(sa.case((approved, t.amount), else_=None)).label("approved_amount"))
             .where(t.tenant_id.in_(tenant_ids)).group_by(t.tenant_id, day).order_by(t.tenant_id, day))
    if since:
        query = query.where(t.created_at >= dt.datetime.combine(since, dt.time(), dt.timezone.utc))
    if until:
        query = query.where(t.created_at < dt.datetime.combine(until, dt.time(), dt.timezone.utc))
    return [{**dict(r), "approved_amount": f"{float(r.approved_amount or 0):.2f}"}
            for r in conn.execute(query).mappings()]


def orders_daily(conn: sa.Connection, tenant_ids: list[str]) -> list[dict[str, Any]]:
    if not sa.inspect(conn).has_table("mart_orders_daily"):
        return []  # the marts have not been built yet
    m = mart_orders_daily.c
    rows = conn.execute(sa.select(m.tenant_id, m.day, m.currency, m.orders, m.paid_orders, m.provisioned,
                                  m.net_revenue).where(m.tenant_id.in_(tenant_ids)).order_by(m.tenant_id, m.day))
    return [{**dict(r), "net_revenue": str(r.net_revenue)} for r in rows.mappings()]


def summary(conn: sa.Connection, tenant_ids: list[str], since: dt.date | None = None,
            until: dt.date | None = None) -> dict[str, Any]:
    return {"tenants": sorted(tenant_ids), "payments_daily": payments_daily(conn, tenant_ids, since, until),
            "orders_daily": orders_daily(conn, tenant_ids)}
