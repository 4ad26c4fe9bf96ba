"""Blaze partner API: partner key + developer key, ``start/limit`` pages, ``/modified`` feed.

Headers ``x-api-key`` (partner key) and ``Authorization`` (developer key, raw). Pages are
``{values, skip, limit, total}``; Blaze clamps ``limit`` silently, so we advance by what came
back, not by what we asked for. ``/products/modified?startDate=`` (epoch ms, inclusive) lists
changes oldest first with soft-deleted products (``deleted: true``), which makes products and
their stock incremental with deletions reported. Stock rides on the product (``quantities``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field

from resources.connection import ConnectionSpec, page_size_field
from resources.http import HttpSession, NotFound
from resources.pos.base import (
    CUSTOMERS, INVENTORY, PRODUCTS, BasePosClient, PosCustomer, PosInventoryItem, PosProduct, Potency, Wire,
    from_epoch_ms, translate,
    PosCredentials, PosOptions,
)
from warehouse.syncs import Rejected
from resources.pos.base import POS_POLICY
from resources.provider import DemoAccount, PosProvider, PosWebhook

if TYPE_CHECKING:
    from resources.pos_orders import OrderDraft

SYSTEM = "blaze"
CANNABINOIDS = ("thc", "cbd", "thca", "cbda", "cbn", "cbg")


class BlazeCategory(Wire):
    name: str | None = None
    cannabis: bool = True


class BlazeQuantity(Wire):
    inventory_id: str = Field(alias="inventoryId")
    quantity: Decimal


class BlazeProduct(Wire):
    id: str
    modified: int
    deleted: bool = False
    active: bool = True
    sku: str | None = None
    name: str = Field(min_length=1)
    brand_name: str | None = Field(None, alias="brandName")
    category: BlazeCategory | None = None
    flower_type: str | None = Field(None, alias="flowerType")
    unit_price: Decimal | None = Field(None, alias="unitPrice")
    weight_per_unit: str | None = Field("EACH", alias="weightPerUnit")
    custom_weight: Decimal | None = Field(None, alias="customWeight")
    thc: Decimal | None = None
    cbd: Decimal | None = None
    thca: Decimal | None = None
    cbda: Decimal | None = None
    cbn: Decimal | None = None
    cbg: Decimal | None = None
    potency_amount: dict[str, Decimal | None] | None = Field(None, alias="potencyAmount")
    tags: list[str] = Field(default_factory=list)
    quantities: list[BlazeQuantity] = Field(default_factory=list)


class BlazeAddress(Wire):
    address: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = Field(None, alias="zipCode")
    country: str | None = None


class BlazeMember(Wire):
    id: str
    created: int | None = None
    modified: int
    deleted: bool = False
    first_name: str | None = Field(None, alias="firstName")
    last_name: str | None = Field(None, alias="lastName")
    email: str | None = None
    primary_phone: str | None = Field(None, alias="primaryPhone")
    dob: int | None = None
    sex: str | None = None
    status: str | None = None
    medical: bool = False
    loyalty_points: Decimal | None = Field(None, alias="loyaltyPoints")
    email_opt_in: bool | None = Field(None, alias="emailOptIn")
    address: BlazeAddress | None = None


def potency(p: BlazeProduct) -> list[Potency]:
    """mg products carry their content in ``potencyAmount`` (top-level 0); smokables use % at the top.

    Blaze defaults every cannabinoid to 0.0, so zeros are kept only for THC/CBD of cannabis
    products, where 0 is a real lab value; on accessories they mean "not applicable".
    """
    amounts = {k: v for k, v in (p.potency_amount or {}).items() if v}
    if amounts:
        return [Potency(name=k, low=v, high=v, unit="mg") for k, v in amounts.items()]
    cannabis = p.category.cannabis if p.category else True
    out = []
    for name in CANNABINOIDS:
        value = getattr(p, name)
        if value is None or not cannabis or (value == 0 and name not in ("thc", "cbd")):
            continue
        out.append(Potency(name=name, low=value, high=value, unit="%"))
    return out


def product_record(p: BlazeProduct) -> PosProduct:
    return PosProduct(
        source=SYSTEM, source_id=p.id, sku=p.sku, name=p.name, brand=p.brand_name,
        category_labels=[p.category.name] if p.category and p.category.name else [],
        strain_labels=[p.flower_type] if p.flower_type else [], tags=p.tags, potency=potency(p),
        net_amount=p.custom_weight, net_unit=p.weight_per_unit, price=p.unit_price,
        active=p.active and not p.deleted, deleted=p.deleted, updated_at=from_epoch_ms(p.modified),
    )


def inventory_records(p: BlazeProduct) -> list[PosInventoryItem]:
    return [PosInventoryItem(
        source=SYSTEM, product_id=p.id, location_id=q.inventory_id, sku=p.sku, quantity=q.quantity,
        quantity_unit="each", active=p.active and not p.deleted, deleted=p.deleted, updated_at=from_epoch_ms(p.modified),
    ) for q in p.quantities]


def member_record(m: BlazeMember) -> PosCustomer:
    a = m.address or BlazeAddress()
    return PosCustomer(
        source=SYSTEM, source_id=m.id, first_name=m.first_name, last_name=m.last_name, email=m.email,
        phone=m.primary_phone, birth_date=from_epoch_ms(m.dob).date() if m.dob is not None else None,
        street=a.address, city=a.city, state=a.state, postal_code=a.zip_code, country=a.country, gender=m.sex,
        customer_type="medical" if m.medical else "recreational", loyalty_points=m.loyalty_points,
        marketing_opt_in=m.email_opt_in, status=m.status, deleted=m.deleted,
        created_at=from_epoch_ms(m.created), updated_at=from_epoch_ms(m.modified),
    )


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


class BlazeClient(BasePosClient):
    system = SYSTEM
    supports_incremental = frozenset({PRODUCTS, INVENTORY, CUSTOMERS})

    def __init__(self, session: HttpSession, options: dict | None = None) -> None:
        super().__init__(session, options)
        self.page_size = int(self.options.get("page_size", 500))

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        start = 0
        while True:
            body = self.session.get_json(path, params={**params, "start": start, "limit": self.page_size})
            values = body.get("values") or []
            yield from values
            start += len(values)
            if not values or start >= int(body.get("total") or 0):
                return

    def _raw_products(self, updated_since: dt.datetime | None) -> Iterator[dict]:
        if updated_since is None:
            return self._pages("/products", {})
        # startDate is inclusive and our cursor is the newest change already stored
        return self._changes("/products/modified", _ms(updated_since) + 1)

    def _changes(self, path: str, since_ms: int) -> Iterator[dict]:
        """The oldest-first change feed, paged by value rather than offset. A product changed while
        we read moves to the feed's end; with offsets, the one sliding into its place would be
        skipped, and the cursor would then pass it by. Each page starts at the last change seen
        (inclusive), less the products already read at that very millisecond."""
        lo, start, at_lo = since_ms, 0, set()
        while True:
            body = self.session.get_json(path, params={"startDate": lo, "start": start, "limit": self.page_size})
            values = body.get("values") or []
            yield from (v for v in values if v.get("id") not in at_lo)
            if not values or start + len(values) >= int(body.get("total") or 0):  # Blaze may clamp the limit
                return
            top = max(int(v.get("modified") or lo) for v in values)
            if top == lo:  # a whole page changed in one millisecond: only an offset can move on
                start += len(values)
            else:
                start = 0
            at_lo = (at_lo if top == lo else set()) | {v.get("id") for v in values if int(v.get("modified") or 0) == top}
            lo = top

    def still_listed(self, product_ids: list[str]) -> set[str]:
        """``GET /products/{id}`` for each: a 404, or a product flagged ``deleted``, is gone."""
        found = set()
        for product_id in product_ids:
            try:
                product = self.session.get_json(f"/products/{product_id}")
            except NotFound:
                continue
            if not product.get("deleted"):
                found.add(product_id)
        return found

    def iter_products(self, updated_since: dt.datetime | None = None) -> Iterator[PosProduct | Rejected]:
        for raw in self._raw_products(updated_since):
            yield translate(raw, BlazeProduct, "id", product_record)

    def iter_inventory(self, updated_since: dt.datetime | None = None) -> Iterator[PosInventoryItem | Rejected]:
        for raw in self._raw_products(updated_since):
            out = translate(raw, BlazeProduct, "id", inventory_records)
            yield from ([out] if isinstance(out, Rejected) else out)

    def iter_customers(self, updated_since: dt.datetime | None = None) -> Iterator[PosCustomer | Rejected]:
        params = {"startDate": _ms(updated_since) + 1} if updated_since else {}
        for raw in self._pages("/members", params):
            yield translate(raw, BlazeMember, "id", member_record)


def blaze_client(base_url: str, credentials: dict, options: dict, **session_kwargs) -> BlazeClient:
    headers = {"x-api-key": credentials["partner_key"], "Authorization": credentials["developer_key"]}
    session = HttpSession(SYSTEM, f"{base_url.rstrip('/')}/api/v1/partner", headers=headers, **session_kwargs)
    return BlazeClient(session, options)


class BlazeCredentials(PosCredentials):
    partner_key: str
    developer_key: str


class BlazeOptions(PosOptions):
    page_size: int | None = page_size_field()  # a larger `limit` than it serves Blaze clamps itself
    shop_id: str | None = None  # the account webhooks name


CONNECTION = ConnectionSpec(SYSTEM, BlazeCredentials, BlazeOptions)


def order_request(client: BlazeClient, d: OrderDraft):
    """A member's order (``POST /orders``); Blaze does not deduplicate it."""
    body = {"memberId": d.customer_ref, "items": [{"productId": x.product_id, "quantity": x.quantity} for x in d.lines]}
    return body, lambda: client.session.request("POST", "/orders", json=body).json(), \
        lambda r: (str(r["id"]), str(r.get("status") or "placed"))


PROVIDER = PosProvider(
    system=SYSTEM, connection=CONNECTION, client=blaze_client, policy=POS_POLICY,
    wire=(BlazeProduct, BlazeMember),
    order_format=order_request, self_deduplicating=False,
    webhook=PosWebhook(secret_header="authorization", topic_field="type", account_field="shopId",
                       inventory_topics=frozenset({"PRODUCT_UPDATED", "INVENTORY_UPDATED"}), account_keys=("shop_id",)),
    sandbox="blaze",
    demo=DemoAccount("canyon-blaze", "Canyon Dispensary (Blaze)", "/blaze",
                     {"partner_key": "blaze-demo-partner", "developer_key": "blaze-demo-dev"}),
)
