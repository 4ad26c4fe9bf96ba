"""A tenant's transactions and invoices as the staff read them: filtered, keyset-paginated, with
detail and lines, scoped to one customer for the customer portal; and the nurse's data-sent flag."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from people.auth import Access
from warehouse.tables.mx import invoice_lines, invoices, transactions
from warehouse.tables.people import invoice_data_sent
from warehouse.types import now_utc
from warehouse.upsert import upsert

TX_COLUMNS = ("id", "amount", "status", "type", "source", "tender_type", "card_type", "card_last4", "customer_name",
              "invoice_number", "created_at", "invoice_id", "has_invoice", "primary_product", "product_category")
INVOICE_COLUMNS = ("id", "invoice_number", "status", "total_amount", "balance", "paid_amount", "customer_id",
                   "customer_name", "invoice_date", "line_count", "primary_product")


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class TransactionFilter:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    status: str | None = None
    category: str | None = None
    linked: bool | None = None


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values, default=str)).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise BadCursor("the cursor is not one this API gave") from None
    if not isinstance(values, list) or len(values) != arity:
        raise BadCursor("the cursor is not one this API gave")
    return values


def _customer_scope(access: Access) -> sa.ColumnElement[bool] | None:
    """Only the customer's own invoices (a customer id that is no MX id matches nothing)."""
    if access.customer_id is None:
        return None
    try:
        return invoices.c.customer_id == int(access.customer_id)
    except ValueError:
        return sa.false()


def transactions_query(access: Access, f: TransactionFilter) -> sa.Select:
    t = transactions.c
    query = sa.select(*(t[c] for c in TX_COLUMNS)).where(t.tenant_id == access.tenant_id)
    scope = _customer_scope(access)
    if scope is not None:
        query = query.where(t.invoice_id.in_(sa.select(invoices.c.id).where(
            invoices.c.tenant_id == access.tenant_id, scope)))
    if f.since:
        query = query.where(t.created_at >= f.since)
    if f.until:
        query = query.where(t.created_at < f.until)
    if f.status:
        query = query.where(t.status == f.status)
    if f.category:
        query = query.where(t.product_category == f.category)
    if f.linked is not None:
        query = query.where(t.has_invoice.is_(f.linked))
    return query


def transaction_page(conn: sa.Connection, access: Access, f: TransactionFilter, limit: int,
                     cursor: str | None) -> tuple[list[dict], str | None]:
    t = transactions.c
    query = transactions_query(access, f)
    if cursor:
        at, last_id = decode_cursor(cursor, 2)
        try:
            at, last_id = dt.datetime.fromisoformat(at), int(last_id)
        except (TypeError, ValueError):
            raise BadCursor("the cursor is not one this API gave") from None
        query = query.where(sa.or_(t.created_at < at, sa.and_(t.created_at == at, t.id < last_id)))
    rows = [dict(r) for r in conn.execute(query.order_by(t.created_at.desc(), t.id.desc()).limit(limit + 1)).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["created_at"].isoformat(), rows[-1]["id"]) if more else None


def invoices_query(access: Access, since: dt.datetime | None = None, until: dt.datetime | None = None,
                   status: str | None = None) -> sa.Select:
    i, d = invoices.c, invoice_data_sent.c
    query = (sa.select(*(i[c] for c in INVOICE_COLUMNS), sa.func.coalesce(d.data_sent, sa.false()).label("data_sent"))
             .outerjoin(invoice_data_sent, sa.and_(d.tenant_id == i.tenant_id, d.invoice_id == i.id))
             .where(i.tenant_id == access.tenant_id))
    scope = _customer_scope(access)
    if scope is not None:
        query = query.where(scope)
    if since:
        query = query.where(i.invoice_date >= since)
    if until:
        query = query.where(i.invoice_date < until)
    if status:
        query = query.where(i.status == status)
    return query


def invoice_page(conn: sa.Connection, access: Access, limit: int, cursor: str | None, **filters: Any
                 ) -> tuple[list[dict], str | None]:
    i = invoices.c
    query = invoices_query(access, **filters)
    if cursor:
        (last_id,) = decode_cursor(cursor, 1)
        if not isinstance(last_id, int):
            raise BadCursor("the cursor is not one this API gave")
        query = query.where(i.id < last_id)
    rows = [dict(r) for r in conn.execute(query.order_by(i.id.desc()).limit(limit + 1)).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["id"]) if more else None


def lines_of(conn: sa.Connection, tenant_id: str, invoice_id: int) -> list[dict]:
    c = invoice_lines.c
    rows = conn.execute(sa.select(c.line_id, c.product_id, c.product_name, c.quantity, c.price, c.tax_amount,
                                  c.total_amount).where(c.tenant_id == tenant_id, c.invoice_id == invoice_id)
                        .order_by(c.line_id)).mappings()
    return [dict(r) for r in rows]


def invoice_detail(conn: sa.Connection, access: Access, invoice_id: int) -> dict | None:
    row = conn.execute(invoices_query(access).where(invoices.c.id == invoice_id)).mappings().one_or_none()
    if row is None:
        return None
    t = transactions.c
    linked = conn.execute(sa.select(t.id).where(t.tenant_id == access.tenant_id, t.invoice_id == invoice_id)
                          .order_by(t.id)).scalars().all()
    return {**dict(row), "lines": lines_of(conn, access.tenant_id, invoice_id), "transaction_ids": list(linked)}


def transaction_detail(conn: sa.Connection, access: Access, transaction_id: int) -> dict | None:
    query = transactions_query(access, TransactionFilter()).where(transactions.c.id == transaction_id)
    row = conn.execute(query).mappings().one_or_none()
    if row is None:
        return None
    invoice = invoice_detail(conn, access, row["invoice_id"]) if row["invoice_id"] is not None else None
    return {**dict(row), "invoice": invoice}


def set_data_sent(conn: sa.Connection, access: Access, invoice_id: int, sent: bool) -> bool:
    """Set the invoice's 'data sent to provider' flag; False when the tenant has no such invoice."""
    if conn.execute(invoices_query(access).where(invoices.c.id == invoice_id)).first() is None:
        return False
    upsert(conn, invoice_data_sent, [{"tenant_id": access.tenant_id, "invoice_id": invoice_id, "data_sent": sent,
                                      "updated_by": access.principal.user_id, "updated_at": now_utc()}])
    return True
