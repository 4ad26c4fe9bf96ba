"""Orders to a tenant's POS (seed 004 "Order Processing") and Portaus payment intents (seed 000).

An order is checked against the warehouse before anything is sent: every product known, active
and priced, medical-only products only for medical customers, sellable stock available at one
location (packages held back by the POS, in quarantine or failing their lab test, do not count),
the customer old enough and within the daily purchase limit of their type. Prices, weights, the
customer's type, medical id expiry and birth date come from the warehouse, never from the
caller; medical limits apply only to customers the POS marks medical whose medical id has not
expired. Limits count the POS's flower equivalent of a unit where it gives one (the adult-use
figure for recreational customers when it has both), else the unit's net weight.
Rules live in the POS connection's ``options.order_rules`` (defaults below). The checks and the
claim of ``order_ref`` happen in one transaction, serialised per customer, so two concurrent
orders cannot both spend the same daily allowance; the POS is called after that commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from commerce.errors import Problem
from resources.dagster_resources import PosClientsResource
from resources.http import ProviderError, RequestInvalid
from resources.pos.base import NotConfigured
from resources.pos_orders import (
    OrderDraft,
    OrderLine,
    Unconfirmed,
    create_payment_intent,
    submit_order,
)
from warehouse.tables.pos import customers, inventory, products, saq_branches
from warehouse.tables.pos_events import portaus_payment_intents, pos_orders
from warehouse.tenants import TenantConnection
from warehouse.types import now_utc

COUNTED = ("submitting", "submitted", "unconfirmed")  # orders that spend the daily allowance
DEFAULT_RULES: dict[str, Any] = {
    "minimum_age": {"recreational": 21, "medical": 21},
    # 1 oz for adult use, 2.5 oz for patients: common US state limits, in grams
    "daily_limit_g": {"recreational": "28.35", "medical": "70.87"},
    "timezone": "UTC",
}


@dataclass(frozen=True)
class OrderRules:
    minimum_age: dict[str, int]
    daily_limit_g: dict[str, Decimal | None]
    timezone: ZoneInfo

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "OrderRules":
        given = options.get("order_rules") or {}
        age = given.get("minimum_age", DEFAULT_RULES["minimum_age"])
        age = {t: int(age) for t in ("recreational", "medical")} if isinstance(age, (int, str)) else {
            **DEFAULT_RULES["minimum_age"], **{k: int(v) for k, v in age.items()}}
        limits = {**DEFAULT_RULES["daily_limit_g"], **(given.get("daily_limit_g") or {})}
        return cls(age, {k: None if v is None else Decimal(str(v)) for k, v in limits.items()},
                   ZoneInfo(given.get("timezone", DEFAULT_RULES["timezone"])))


@dataclass(frozen=True)
class Finding:
    """One reason an order cannot go through; ``code`` becomes the problem type."""

    code: str
    detail: str
    product_id: str | None = None


MEDICAL, RECREATIONAL = "medical", "recreational"


@dataclass
class Checked:
    """The outcome of validation, with what the warehouse said about each line."""

    findings: list[Finding] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    location_id: str | None = None
    customer_type: str = "recreational"
    total: Decimal = Decimal(0)
    currency: str | None = None
    grams: Decimal = Decimal(0)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


def age_on(birth: dt.date, today: dt.date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def load_products(conn: sa.Connection, tenant_id: str, source: str, ids: list[str]) -> dict[str, Any]:
    p = products.c
    rows = conn.execute(sa.select(p.product_id, p.name, p.status, p.price, p.currency, p.weight_g, p.attributes).where(
        p.tenant_id == tenant_id, p.source == source, p.product_id.in_(ids)))
    return {r.product_id: r for r in rows}


def load_stock(conn: sa.Connection, tenant_id: str, source: str, ids: list[str]) -> dict[str, dict[str, tuple[Decimal, bool]]]:
    """location -> product -> (available units, whether the POS caps what it reports).

    Weight-tracked stock is held in grams; an order line counts packages, so grams become whole
    packages of the product's net weight (unknown weight: not orderable by count).
    """
    i, p = inventory.c, products.c
    rows = conn.execute(
        sa.select(i.location_id, i.product_id, i.quantity, i.quantity_unit, i.quantity_capped, p.weight_g)
        .select_from(inventory.outerjoin(products, sa.and_(
            p.tenant_id == i.tenant_id, p.source == i.source, p.product_id == i.product_id)))
        .where(i.tenant_id == tenant_id, i.source == source, i.product_id.in_(ids), i.available.is_(True),
               i.deleted_at.is_(None)))
    stock: dict[str, dict[str, tuple[Decimal, bool]]] = defaultdict(dict)
    for r in rows:
        units = r.quantity
        if r.quantity_unit == "g":
            units = (r.quantity // r.weight_g) if r.weight_g else Decimal(0)
        quantity, capped = stock[r.location_id].get(r.product_id, (Decimal(0), False))
        stock[r.location_id][r.product_id] = (quantity + units, capped or bool(r.quantity_capped))
    return dict(stock)


def load_customer(conn: sa.Connection, tenant_id: str, source: str, customer_id: str) -> Any:
    c = customers.c
    return conn.execute(sa.select(c.customer_id, c.birth_date, c.customer_type, c.medical_id, c.medical_id_expires_on,
                                  c.status).where(
        c.tenant_id == tenant_id, c.source == source, c.customer_id == customer_id, c.deleted_at.is_(None))).one_or_none()


def grams_today(conn: sa.Connection, tenant_id: str, customer_ref: str, since: dt.datetime, exclude_id: int) -> Decimal:
    o = pos_orders.c
    rows = conn.execute(sa.select(o.grams).where(
        o.tenant_id == tenant_id, o.customer_ref == customer_ref, o.submitted_at >= since, o.status.in_(COUNTED),
        o.id != exclude_id))
    return sum((g for (g,) in rows if g is not None), Decimal(0))


def choose_location(stock: dict[str, dict[str, tuple[Decimal, bool]]], wanted: dict[str, int],
                    asked: str | None) -> tuple[str | None, dict[str, Decimal]]:
    """The location that can fill every line (the asked one, else the first that can), and its stock."""
    def fills(location: str) -> bool:
        have = stock.get(location, {})
        return all(q <= have.get(pid, (0, False))[0] or (have.get(pid, (0, False))[1] and have[pid][0] > 0)
                   for pid, q in wanted.items())

    candidates = [asked] if asked else sorted(stock)
    chosen = next((loc for loc in candidates if fills(loc)), None)
    shown = asked or chosen or (max(stock, key=lambda loc: len(stock[loc])) if stock else None)
    return chosen, {pid: stock.get(shown, {}).get(pid, (Decimal(0), False))[0] for pid in wanted}


def grams_per_unit(row: Any, customer_type: str) -> Decimal:
    """What one unit counts against a purchase limit: the POS's flower equivalent where it gives
    one (its adult-use figure for a recreational customer when it has both), else the net weight."""
    attrs = row.attributes or {}
    for key in (("rec_flower_equivalent_g", "flower_equivalent_g") if customer_type == RECREATIONAL
                else ("flower_equivalent_g",)):
        if attrs.get(key) is not None:
            return Decimal(str(attrs[key]))
    return row.weight_g or Decimal(0)


def customer_type_of(customer: Any, today: dt.date) -> str:
    """Medical when the POS marks the customer medical (type or a medical id) and the id, if the
    POS gives its expiry, has not expired; recreational otherwise."""
    if customer is None or not (customer.customer_type == MEDICAL or customer.medical_id):
        return RECREATIONAL
    expires = customer.medical_id_expires_on
    return RECREATIONAL if expires is not None and expires < today else MEDICAL


def check_lines(conn: sa.Connection, tenant_id: str, source: str, lines: list[dict[str, Any]],
                location_id: str | None = None, customer_type: str = RECREATIONAL) -> Checked:
    """Products known, active and priced, allowed to ``customer_type``, in stock at one location."""
    out = Checked(customer_type=customer_type)
    wanted: dict[str, int] = defaultdict(int)
    for line in lines:
        wanted[str(line["product_id"])] += int(line["quantity"])
    known = load_products(conn, tenant_id, source, list(wanted))
    for pid, quantity in wanted.items():
        row = known.get(pid)
        if row is None or row.status != "active":
            out.findings.append(Finding("unknown-product", f"product {pid} is not in this shop's active catalog", pid))
            continue
        if (row.attributes or {}).get("medical_only") and customer_type != MEDICAL:
            out.findings.append(Finding("medical-only", f"product {pid} is sold to medical patients only", pid))
        if row.price is None:
            out.findings.append(Finding("unpriced-product", f"product {pid} has no unit price in the catalog", pid))
        grams = grams_per_unit(row, customer_type) * quantity
        out.lines.append({"product_id": pid, "name": row.name, "quantity": quantity,
                          "unit_price": None if row.price is None else str(row.price), "grams": str(grams)})
        out.total += (row.price or Decimal(0)) * quantity
        out.grams += grams
        if out.currency and row.currency != out.currency:
            out.findings.append(Finding("mixed-currency", "the products are priced in different currencies", pid))
        out.currency = out.currency or row.currency
    location, on_hand = choose_location(load_stock(conn, tenant_id, source, list(wanted)), wanted, location_id)
    out.location_id = location
    if location is None:
        short = [pid for pid, q in wanted.items() if pid in known and q > on_hand[pid]]
        for pid in short:
            out.findings.append(Finding("out-of-stock", f"{wanted[pid]} of {pid} requested, {on_hand[pid]:f} available", pid))
        if not short and len(out.findings) == 0:
            out.findings.append(Finding("out-of-stock", "no single location holds every line of this order"))
    return out


def check_order(conn: sa.Connection, tenant_id: str, source: str, order: dict[str, Any], rules: OrderRules,
                now: dt.datetime, own_id: int) -> Checked:
    """Validate ``order`` (``customer_ref``, ``birth_date``, ``lines``, ``location_id``) against the warehouse."""
    today = now.astimezone(rules.timezone).date()
    customer = load_customer(conn, tenant_id, source, order["customer_ref"])
    out = check_lines(conn, tenant_id, source, order["lines"], order.get("location_id"), customer_type_of(customer, today))
    birth = customer.birth_date if customer is not None and customer.birth_date else order.get("birth_date")
    minimum = rules.minimum_age[out.customer_type]
    if birth is None:
        out.findings.append(Finding("age-unverified", "no birth date on file or given for this customer"))
    elif age_on(birth, today) < minimum:
        out.findings.append(Finding("under-age", f"the customer is {age_on(birth, today)}; the minimum is {minimum}"))
    limit = rules.daily_limit_g.get(out.customer_type)
    day_start = dt.datetime.combine(today, dt.time(), rules.timezone)
    before = grams_today(conn, tenant_id, order["customer_ref"], day_start, own_id)
    if limit is not None and before + out.grams > limit:
        out.findings.append(Finding(
            "purchase-limit-exceeded",
            f"{out.grams:f} g now + {before:f} g earlier today exceeds the {out.customer_type} daily limit of {limit:f} g"))
    out.summary = {"customer_type": out.customer_type, "grams": str(out.grams), "grams_earlier_today": str(before),
                   "daily_limit_g": None if limit is None else str(limit), "minimum_age": minimum,
                   "location_id": out.location_id, "customer_on_file": customer is not None,
                   "medical_id_expired": bool(customer is not None and customer.medical_id_expires_on
                                              and customer.medical_id_expires_on < today),
                   "problems": [vars(f) for f in out.findings]}
    return out


def request_hash(order: dict[str, Any]) -> str:
    """The order as asked, canonically: a replayed ``order_ref`` must carry the same order."""
    return hashlib.sha256(orjson.dumps(order, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def _insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def problem_from(findings: list[Finding], **extra: Any) -> Problem:
    first = findings[0]
    detail = "; ".join(f.detail for f in findings)
    return Problem(422, first.code, detail, title="Order rejected", problems=[vars(f) for f in findings], **extra)


class PosOrderService:
    """Validates, records and submits POS orders; creates Portaus payment intents once."""

    def __init__(self, engine: sa.Engine, clients: PosClientsResource) -> None:
        self.engine, self.clients = engine, clients

    def get(self, tenant_id: str, order_ref: str) -> dict[str, Any] | None:
        o = pos_orders.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(pos_orders).where(o.tenant_id == tenant_id, o.order_ref == order_ref)).mappings().first()
        return None if row is None else dict(row)

    def _claim(self, conn: sa.Connection, tenant_id: str, provider: str, order: dict[str, Any], digest: str) -> tuple[int, Any]:
        """(row id, the earlier row when ``order_ref`` was already used, else None)."""
        if conn.dialect.name == "postgresql":
            # one customer's orders are checked one at a time, across every API worker
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                         {"k": f"pos-order:{tenant_id}:{order['customer_ref']}"})
        # On SQLite this INSERT is the transaction's first statement: it takes the write lock first.
        new_id = conn.execute(_insert(conn, pos_orders).values(
            tenant_id=tenant_id, order_ref=order["order_ref"], provider=provider, customer_ref=order["customer_ref"],
            customer_type="recreational", status="validating", validation={}, items=[], request_hash=digest,
        ).on_conflict_do_nothing(index_elements=["tenant_id", "order_ref"]).returning(pos_orders.c.id)).scalar()
        if new_id is not None:
            return new_id, None
        o = pos_orders.c
        row = conn.execute(sa.select(pos_orders).where(o.tenant_id == tenant_id, o.order_ref == order["order_ref"])).mappings().one()
        return row["id"], row

    def _finish(self, order_id: int, **values: Any) -> dict[str, Any]:
        with self.engine.begin() as conn:
            conn.execute(sa.update(pos_orders).where(pos_orders.c.id == order_id).values(updated_at=now_utc(), **values))
            return dict(conn.execute(sa.select(pos_orders).where(pos_orders.c.id == order_id)).mappings().one())

    def place(self, tenant_id: str, connection: TenantConnection, order: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """(created, order row). Raises ``Problem`` for a rejected, refused or doubtful order."""
        digest, rules, now = request_hash(order), OrderRules.from_options(connection.options), now_utc()
        with self.engine.begin() as conn:
            order_id, earlier = self._claim(conn, tenant_id, connection.system, order, digest)
            if earlier is not None:
                if earlier["request_hash"] != digest:
                    raise Problem(409, "order-ref-reused", f"order_ref {order['order_ref']} was used for a different order")
                if earlier["status"] == "submitted":
                    return False, dict(earlier)
                if earlier["status"] in ("submitting", "unconfirmed"):
                    raise Problem(409, "order-in-doubt", f"order {order['order_ref']} was sent to {connection.system} "
                                  "and its outcome is unknown; check the POS before placing it again")
            checked = check_order(conn, tenant_id, connection.system, order, rules, now, order_id)
            conn.execute(sa.update(pos_orders).where(pos_orders.c.id == order_id).values(
                status="submitting" if checked.ok else "rejected", customer_type=checked.customer_type,
                validation=checked.summary, items=checked.lines, total=checked.total, currency=checked.currency,
                grams=checked.grams, submitted_at=now if checked.ok else None, error=None, updated_at=now))
        if not checked.ok:  # raised after the commit: the rejection is recorded
            raise problem_from(checked.findings, order_ref=order["order_ref"])
        draft = OrderDraft(tenant_id, order["order_ref"], order["customer_ref"],
                           tuple(OrderLine(x["product_id"], x["quantity"]) for x in checked.lines),
                           checked.location_id, order.get("note"))
        client = self.clients.client_for(connection)
        try:
            confirmation = submit_order(client, draft)
        except Unconfirmed as exc:
            self._finish(order_id, status="unconfirmed", error=str(exc))
            raise Problem(502, "pos-unconfirmed", f"{connection.system} did not answer; the order may exist there") from exc
        except NotConfigured as exc:  # nothing was sent
            self._finish(order_id, status="failed", error=str(exc))
            raise Problem(503, "pos-not-configured", f"orders cannot be sent yet: {exc}") from exc
        except (ProviderError, ValueError, KeyError) as exc:
            self._finish(order_id, status="failed", error=str(exc)[:1000])
            refused = isinstance(exc, (RequestInvalid, ValueError, KeyError))
            raise Problem(409 if refused else 502, "pos-refused" if refused else "pos-unavailable",
                          f"{connection.system} did not take the order: {exc}") from exc
        finally:
            client.close()
        return True, self._finish(order_id, status="submitted", provider_order_id=confirmation.provider_order_id,
                                  provider_request=confirmation.request, confirmation=confirmation.response)

    def payment_intent(self, tenant_id: str, connection: TenantConnection,
                       request: dict[str, Any]) -> tuple[bool, dict[str, Any], str | None]:
        """(created, stored intent, Portaus's client secret when just created): one intent per reference."""
        t, digest, branch = portaus_payment_intents.c, request_hash(request), request.get("branch")
        with self.engine.connect() as conn:
            earlier = conn.execute(sa.select(portaus_payment_intents).where(
                t.tenant_id == tenant_id, t.reference == request["reference"])).mappings().first()
            if earlier is not None:
                if earlier["request_hash"] != digest:
                    raise Problem(409, "reference-reused", f"reference {request['reference']} was used for another payment")
                return False, dict(earlier), None
            checked = check_lines(conn, tenant_id, connection.system, request["lines"])
            b = saq_branches.c
            if branch and conn.execute(sa.select(b.branch_number).where(
                    b.tenant_id == tenant_id, b.branch_number == branch, b.deleted_at.is_(None))).first() is None:
                checked.findings.append(Finding("unknown-branch", f"SAQ branch {branch} is not one of this tenant's"))
        if not checked.ok:
            raise problem_from(checked.findings, reference=request["reference"])
        client = self.clients.client_for(connection)
        try:
            intent = create_payment_intent(client, request["reference"], checked.total, checked.currency or "CAD",
                                           request.get("customer"), branch)
        except ProviderError as exc:
            refused = isinstance(exc, RequestInvalid)
            raise Problem(409 if refused else 502, "portaus-refused" if refused else "portaus-unavailable", str(exc)) from exc
        finally:
            client.close()
        secret = intent.pop("clientSecret", None)  # handed to the caller once, never stored
        row = {"tenant_id": tenant_id, "reference": request["reference"], "intent_id": intent["id"],
               "status": intent["status"], "amount": Decimal(int(intent["amount"])) / 100,
               "currency": str(intent["currency"]).upper(), "customer": request.get("customer"), "branch": branch,
               "redirect_url": intent.get("redirectUrl"), "raw": intent, "request_hash": digest}
        with self.engine.begin() as conn:
            # a concurrent twin got the same intent from Portaus (same reference): keep the first row
            inserted = conn.execute(_insert(conn, portaus_payment_intents).values(**row).on_conflict_do_nothing(
                index_elements=["tenant_id", "reference"]).returning(t.reference)).scalar()
            stored = conn.execute(sa.select(portaus_payment_intents).where(
                t.tenant_id == tenant_id, t.reference == request["reference"])).mappings().one()
        if inserted is None and stored["request_hash"] != digest:  # the twin asked for another payment
            raise Problem(409, "reference-reused", f"reference {request['reference']} was used for another payment")
        return inserted is not None, dict(stored), secret if inserted is not None else None
