"""What quotes and invoices share: their tables, line items and totals, numbers, reads and lists,
revisions, and the status rule that depends on the date.

**Statuses.** The stored ``status`` is the last transition made (``draft``, ``sent``, ``accepted``
… for quotes; ``draft``, ``issued``, ``partially_paid``, ``paid``, ``void`` for invoices). Two
states follow from the calendar alone and are never stored: a ``sent`` quote whose
``valid_until`` has passed **is** ``expired``, and an ``issued`` or ``partially_paid`` invoice
whose ``due_date`` has passed **is** ``overdue``. Every read (``effective_status``) and every
list filter (``status_column``) applies that one rule, with today's UTC date, so no job has to
run at midnight for a document to show the right state, and a payment recorded on an overdue
invoice (``studio.ledger``) need not know about it. A date that has passed means strictly before
today: a document due today is not overdue yet.

**Revisions.** Every change to a document bumps its ``revision`` (``changed``): a PDF of another
revision is stale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from studio.activity import Actor, log_activity
from studio.business import get_business
from studio.errors import StudioError, bad_state, not_found
from studio.money import Totals, document_totals, line_totals
from studio.numbers import next_document_number
from warehouse.tables.studio import (
    studio_activity_logs, studio_clients, studio_invoice_items, studio_invoices, studio_quote_items, studio_quotes,
)
from warehouse.types import now_utc

MAX_ITEMS = 200


@dataclass(frozen=True)
class Kind:
    name: str  # "quote" or "invoice": the activity log's entity type and the counter's kind
    table: sa.Table
    items: sa.Table
    # stored status -> the status it shows once its date has passed (and the date column)
    dated: tuple[tuple[str, ...], str, str]

    @property
    def fk(self) -> sa.Column:
        return self.items.c[f"{self.name}_id"]


QUOTE = Kind("quote", studio_quotes, studio_quote_items, (("sent",), "valid_until", "expired"))
INVOICE = Kind("invoice", studio_invoices, studio_invoice_items, (("issued", "partially_paid"), "due_date", "overdue"))
KINDS = {"quote": QUOTE, "invoice": INVOICE}
ITEM_COLUMNS = ("position", "description", "quantity", "unit_price", "discount_percent", "tax_rate", "line_subtotal",
                "line_discount", "line_tax", "line_total")


def today() -> dt.date:
    """Today's date in UTC: the calendar the expiry and overdue rule reads."""
    return now_utc().date()


def effective_status(kind: Kind, row: Any, on: dt.date | None = None) -> str:
    """The document's status as shown: its stored status, or ``expired``/``overdue`` once its date has passed."""
    stored, (from_states, date_column, late) = row["status"], kind.dated
    date = row[date_column]
    return late if stored in from_states and date is not None and date < (on or today()) else stored


def status_column(kind: Kind, on: dt.date | None = None) -> sa.ColumnElement[str]:
    """``effective_status`` in SQL, for filters and lists."""
    from_states, date_column, late = kind.dated
    t = kind.table.c
    return sa.case((sa.and_(t.status.in_(from_states), t[date_column] < (on or today())), sa.literal(late)),
                   else_=t.status)


def changed(kind: Kind) -> dict[str, Any]:
    """The values every update of a document also sets: a new revision and its time."""
    return {"revision": kind.table.c.revision + 1, "updated_at": now_utc()}


# -- items and totals --------------------------------------------------------------------

def priced_items(items: list[dict[str, Any]], default_tax_rate: Decimal) -> tuple[list[dict[str, Any]], Totals]:
    """Each line with its amounts by ``studio.money``'s rule, and the document's totals.

    A line is ``{description, quantity, unit_price, discount_percent?, tax_rate?}``; no tax rate:
    the studio's GST rate."""
    if len(items) > MAX_ITEMS:
        raise StudioError(422, "too-many-items", f"a document has at most {MAX_ITEMS} lines")
    rows, lines = [], []
    for position, item in enumerate(items, 1):
        description = (item.get("description") or "").strip()
        if not description:
            raise StudioError(422, "invalid-item", f"line {position} needs a description")
        rate = item.get("tax_rate")
        rate = default_tax_rate if rate is None else rate
        pct = item.get("discount_percent") or 0
        amounts = line_totals(item["quantity"], item["unit_price"], pct, rate)
        lines.append(amounts)
        rows.append({"position": position, "description": description, "quantity": item["quantity"],
                     "unit_price": item["unit_price"], "discount_percent": pct, "tax_rate": rate,
                     "line_subtotal": amounts.subtotal, "line_discount": amounts.discount, "line_tax": amounts.tax,
                     "line_total": amounts.total})
    return rows, document_totals(lines)


def _totals_values(totals: Totals) -> dict[str, Decimal]:
    return {"subtotal": totals.subtotal, "discount_total": totals.discount_total, "tax_total": totals.tax_total,
            "total": totals.total}


def write_items(conn: sa.Connection, kind: Kind, tenant_id: str, document_id: int, rows: list[dict[str, Any]]) -> None:
    conn.execute(sa.delete(kind.items).where(kind.items.c.tenant_id == tenant_id, kind.fk == document_id))
    if rows:
        conn.execute(sa.insert(kind.items), [{**r, "tenant_id": tenant_id, f"{kind.name}_id": document_id}
                                             for r in rows])


def items_of(conn: sa.Connection, kind: Kind, tenant_id: str, document_id: int) -> list[dict[str, Any]]:
    i = kind.items.c
    rows = conn.execute(sa.select(i.id, *(i[c] for c in ITEM_COLUMNS)).where(i.tenant_id == tenant_id, kind.fk == document_id)
                        .order_by(i.position)).mappings()
    return [dict(r) for r in rows]


# -- create, read, list ------------------------------------------------------------------

def live_client(conn: sa.Connection, tenant_id: str, client_id: int) -> None:
    """404 for a client this studio does not have; 409 for an archived one."""
    c = studio_clients.c
    row = conn.execute(sa.select(c.archived_at).where(c.tenant_id == tenant_id, c.id == client_id)).one_or_none()
    if row is None:
        raise not_found("client")
    if row.archived_at is not None:
        raise StudioError(409, "client-archived", "This client is archived: new documents cannot be made for them.")


def create_document(conn: sa.Connection, kind: Kind, tenant_id: str, client_id: int, items: list[dict[str, Any]],
                    actor: Actor, *, once: dict[str, str] | None = None, **fields: Any) -> int:
    """Insert a draft with its lines and its next number; returns its id. Run inside
    ``studio.db.writing``: the number is taken in this transaction (``studio.numbers``). ``once``:
    the request's idempotency key and digest (``studio.idempotency``), stored, not logged."""
    live_client(conn, tenant_id, client_id)
    business = get_business(conn, tenant_id)
    rows, totals = priced_items(items, business["gst_rate"])
    # From here to the commit other creations of this kind wait (studio.numbers): only inserts follow.
    number, printed = next_document_number(conn, tenant_id, kind.name, prefix=business[f"{kind.name}_prefix"])
    values = {**fields, **(once or {}), **_totals_values(totals), "tenant_id": tenant_id, "client_id": client_id, "number": number,
              "document_number": printed, "currency": business["currency"], "created_by": actor.user_id}
    if kind is INVOICE:
        values["balance_due"] = totals.total
    document_id = conn.execute(sa.insert(kind.table).values(**values).returning(kind.table.c.id)).scalar_one()
    write_items(conn, kind, tenant_id, document_id, rows)
    log_activity(conn, tenant_id, kind.name, document_id, "created", actor, number=printed, client_id=client_id,
                 total=totals.total, **fields)
    return document_id


def shown_to_client(kind: Kind, client_id: int) -> sa.ColumnElement[bool]:
    """What a client's portal shows: their documents past draft, and the drafts they made
    themselves (a quick order from their own models), which the studio has yet to send."""
    t, a = kind.table.c, studio_activity_logs.c
    own_draft = sa.exists().where(a.tenant_id == t.tenant_id, a.entity_type == kind.name, a.entity_id == t.id,
                                  a.action == "created", a.actor_kind == "client")
    return sa.and_(t.client_id == client_id, sa.or_(t.status != "draft", own_draft))


def load(conn: sa.Connection, kind: Kind, tenant_id: str, document_id: int, *, client_id: int | None = None,
         lock: bool = False) -> dict[str, Any]:
    """The document's row (no items); 404 when this studio (or, with ``client_id``, this client)
    has no such document. ``lock``: hold it until commit (PostgreSQL; SQLite's writer holds all)."""
    t = kind.table.c
    query = sa.select(kind.table).where(t.tenant_id == tenant_id, t.id == document_id)
    if client_id is not None:
        query = query.where(shown_to_client(kind, client_id))
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().one_or_none()
    if row is None:
        raise not_found(kind.name)
    return dict(row)


def read(conn: sa.Connection, kind: Kind, tenant_id: str, document_id: int,
         client_id: int | None = None) -> dict[str, Any]:
    """The document with its lines and its status as shown (``effective_status``)."""
    row = load(conn, kind, tenant_id, document_id, client_id=client_id)
    return {**row, "stored_status": row["status"], "status": effective_status(kind, row),
            "items": items_of(conn, kind, tenant_id, document_id)}


def list_documents(conn: sa.Connection, kind: Kind, tenant_id: str, *, status: str | None = None,
                   client_id: int | None = None, for_client: int | None = None, limit: int = 50,
                   before: int | None = None) -> list[dict[str, Any]]:
    """Newest first (by id; ``before``: the last id of the previous page), with the status as shown.
    ``for_client``: the client portal's view (``shown_to_client``)."""
    t = kind.table.c
    shown = status_column(kind).label("shown_status")
    query = sa.select(kind.table, shown).where(t.tenant_id == tenant_id)
    if status is not None:
        query = query.where(shown == status)
    if client_id is not None:
        query = query.where(t.client_id == client_id)
    if for_client is not None:
        query = query.where(shown_to_client(kind, for_client))
    if before is not None:
        query = query.where(t.id < before)
    rows = conn.execute(query.order_by(t.id.desc()).limit(limit)).mappings()
    return [{**{k: v for k, v in r.items() if k != "shown_status"}, "stored_status": r["status"],
             "status": r["shown_status"]} for r in rows]


# -- changes -----------------------------------------------------------------------------

def update_draft(conn: sa.Connection, kind: Kind, tenant_id: str, document_id: int, actor: Actor,
                 items: list[dict[str, Any]] | None = None, **fields: Any) -> None:
    """Change a draft's lines (replaced whole) and fields; a document past draft is not edited."""
    row = load(conn, kind, tenant_id, document_id, lock=True)
    if row["status"] != "draft":
        raise bad_state(kind.name, effective_status(kind, row), "edited", ("draft",))
    if "client_id" in fields:
        live_client(conn, tenant_id, fields["client_id"])
    values = dict(fields)
    if items is not None:
        rows, totals = priced_items(items, get_business(conn, tenant_id)["gst_rate"])
        write_items(conn, kind, tenant_id, document_id, rows)
        values.update(_totals_values(totals))
        if kind is INVOICE:
            values["balance_due"] = totals.total - row["amount_paid"] + row["amount_refunded"]
    if not values:
        return
    t = kind.table.c
    conn.execute(sa.update(kind.table).where(t.tenant_id == tenant_id, t.id == document_id)
                 .values(**values, **changed(kind)))
    detail = {k: v for k, v in fields.items()}
    if items is not None:
        detail.update(items=len(items), total=values["total"])
    log_activity(conn, tenant_id, kind.name, document_id, "updated", actor, **detail)


def transition(conn: sa.Connection, kind: Kind, tenant_id: str, document_id: int, actor: Actor, action: str,
               *, detail: dict[str, Any] | None = None, **values: Any) -> None:
    """Write a state change (with a new revision) and its activity entry (``detail``: more to log)."""
    t = kind.table.c
    conn.execute(sa.update(kind.table).where(t.tenant_id == tenant_id, t.id == document_id)
                 .values(**values, **changed(kind)))
    log_activity(conn, tenant_id, kind.name, document_id, action, actor,
                 **{k: v for k, v in values.items() if k in ("status", "invoice_id", "due_date", "valid_until")},
                 **(detail or {}))
