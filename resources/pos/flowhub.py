"""Flowhub: ``clientId`` + ``key`` headers, one inventory snapshot per location, no paging.

Each inventory row is one batch of one product at one location and carries the product's
catalog fields, so products come from the same snapshot (first row per ``productId``).
There is no updated-since filter for inventory or products (every read is full; deletions
show as absence) and customers filter on creation only, so they are read in full too.
Prices are in minor units (cents); cannabinoids are ranges in ``%`` or ``mg``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import Field

from resources.connection import ConnectionSpec, page_size_field
from resources.http import HttpSession
from resources.pos.base import (
    BasePosClient, PosCustomer, PosInventoryItem, PosProduct, Potency, Wire, parse, translate, utc,
    PosCredentials, PosOptions,
)
from warehouse.syncs import Rejected
from resources.pos.base import POS_POLICY
from resources.provider import DemoAccount, PosProvider, PosWebhook

if TYPE_CHECKING:
    from resources.pos_orders import OrderDraft

SYSTEM = "flowhub"


class FlowhubCannabinoid(Wire):
    name: str
    lower_range: Decimal | None = Field(None, alias="lowerRange")
    upper_range: Decimal | None = Field(None, alias="upperRange")
    unit: str | None = Field(None, alias="unitOfMeasure")


class FlowhubRow(Wire):
    product_id: str = Field(alias="productId")
    product_name: str = Field(alias="productName", min_length=1)
    brand: str | None = None
    category: str | None = None
    species_name: str | None = Field(None, alias="speciesName")
    sku: str | None = None
    quantity: Decimal
    inventory_unit: str | None = Field(None, alias="inventoryUnitOfMeasure")
    product_weight: Decimal | None = Field(None, alias="productWeight")
    product_unit: str | None = Field(None, alias="productUnitOfMeasure")
    price_minor: int | None = Field(None, alias="priceInMinorUnits")
    currency: str | None = Field(None, alias="currencyCode")
    cannabinoids: list[FlowhubCannabinoid] = Field(default_factory=list, alias="cannabinoidInformation")
    expiration_date: dt.date | None = Field(None, alias="expirationDate")
    package_id: str | None = Field(None, alias="packageId")
    batch_id: str | None = Field(None, alias="batchId")
    effects: list[str] = Field(default_factory=list)
    flavors: list[str] = Field(default_factory=list)
    location_id: str = Field(alias="locationId")
    updated_at: dt.datetime | None = Field(None, alias="productUpdatedAt")
    is_active: bool = Field(True, alias="isActive")


class FlowhubAddress(Wire):
    street1: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None


class FlowhubCustomer(Wire):
    id: str
    first_name: str | None = Field(None, alias="firstName")
    last_name: str | None = Field(None, alias="lastName")
    email: str | None = None
    phone: str | None = None
    birth_date: dt.date | None = Field(None, alias="birthDate")
    gender: str | None = None
    is_medical: bool = Field(False, alias="isMedical")
    medical_id: str | None = Field(None, alias="medicalId")
    loyalty_points: Decimal | None = Field(None, alias="loyaltyPoints")
    created_at: dt.datetime | None = Field(None, alias="createdAt")
    updated_at: dt.datetime | None = Field(None, alias="updatedAt")
    address: FlowhubAddress | None = None


def product_record(r: FlowhubRow) -> PosProduct:
    return PosProduct(
        source=SYSTEM, source_id=r.product_id, sku=r.sku, name=r.product_name, brand=r.brand,
        category_labels=[r.category] if r.category else [], strain_labels=[r.species_name] if r.species_name else [],
        effects=r.effects, flavors=r.flavors,
        potency=[Potency(name=c.name, low=c.lower_range, high=c.upper_range, unit=c.unit) for c in r.cannabinoids],
        net_amount=r.product_weight, net_unit=r.product_unit,
        price=None if r.price_minor is None else Decimal(r.price_minor) / 100, currency=r.currency,
        active=r.is_active, updated_at=utc(r.updated_at), attributes={"location_id": r.location_id},
    )


def inventory_record(r: FlowhubRow) -> PosInventoryItem:
    return PosInventoryItem(
        source=SYSTEM, product_id=r.product_id, location_id=r.location_id, lot_id=r.batch_id or r.package_id or "",
        sku=r.sku, quantity=r.quantity, quantity_unit=r.inventory_unit, compliance_id=r.package_id,
        expires_on=r.expiration_date, active=r.is_active, updated_at=utc(r.updated_at),
    )


def customer_record(c: FlowhubCustomer) -> PosCustomer:
    a = c.address or FlowhubAddress()
    return PosCustomer(
        source=SYSTEM, source_id=c.id, first_name=c.first_name, last_name=c.last_name, email=c.email, phone=c.phone,
        birth_date=c.birth_date, street=a.street1, city=a.city, state=a.state, postal_code=a.zip, country="US",
        gender=c.gender, medical_id=c.medical_id, customer_type="medical" if c.is_medical else "recreational",
        loyalty_points=c.loyalty_points, created_at=utc(c.created_at), updated_at=utc(c.updated_at),
    )


class FlowhubClient(BasePosClient):
    system = SYSTEM
    supports_incremental = frozenset()

    def __init__(self, session: HttpSession, options: dict | None = None) -> None:
        super().__init__(session, options)
        self.page_size = int(self.options.get("customer_page_size", 100))

    def location_ids(self) -> list[str]:
        """The locations to read: the connection's choice, else every location of the client."""
        chosen = self.options.get("location_ids")
        if chosen:
            return [str(x) for x in chosen]
        return [str(loc["locationId"]) for loc in self.session.get_json("/v0/clientsLocations")["data"]]

    def _rows(self) -> Iterator[dict]:
        for location_id in self.location_ids():
            yield from self.session.get_json(f"/v0/locations/{location_id}/inventory")["data"]

    def iter_products(self, updated_since: dt.datetime | None = None) -> Iterator[PosProduct | Rejected]:
        seen: set[str] = set()
        for raw in self._rows():
            row = parse(FlowhubRow, raw, "productId")
            if isinstance(row, Rejected):
                yield row
            elif row.product_id not in seen:  # one row per batch; the product once
                seen.add(row.product_id)
                yield product_record(row)

    def iter_inventory(self, updated_since: dt.datetime | None = None) -> Iterator[PosInventoryItem | Rejected]:
        for raw in self._rows():
            yield translate(raw, FlowhubRow, "productId", inventory_record)

    def iter_customers(self, updated_since: dt.datetime | None = None) -> Iterator[PosCustomer | Rejected]:
        page = 1
        while rows := self.session.get_json("/v1/customers/", params={"page": page, "page_size": self.page_size})["data"]:
            for raw in rows:
                yield translate(raw, FlowhubCustomer, "id", customer_record)
            page += 1


def flowhub_client(base_url: str, credentials: dict, options: dict, **session_kwargs) -> FlowhubClient:
    headers = {"clientId": credentials["client_id"], "key": credentials["key"]}
    return FlowhubClient(HttpSession(SYSTEM, base_url, headers=headers, **session_kwargs), options)


class FlowhubCredentials(PosCredentials):
    client_id: str
    key: str


class FlowhubOptions(PosOptions):
    customer_page_size: int | None = page_size_field()
    location_ids: list[str] | None = None
    location_id: str | None = None  # the account webhooks name


CONNECTION = ConnectionSpec(SYSTEM, FlowhubCredentials, FlowhubOptions)


def order_request(client: FlowhubClient, d: OrderDraft):
    """An order-ahead at the location holding the products; Flowhub does not deduplicate it."""
    if not d.location_id:
        raise ValueError("a Flowhub order needs the location holding the products")
    body = {"locationId": d.location_id, "customerId": d.customer_ref,
            "items": [{"productId": x.product_id, "quantity": x.quantity} for x in d.lines]}
    return body, lambda: client.session.request("POST", "/order-ahead/v0/create", json=body).json(), \
        lambda r: (r["data"]["orderId"], r["data"].get("status") or "pending")


PROVIDER = PosProvider(
    system=SYSTEM, connection=CONNECTION, client=flowhub_client, policy=POS_POLICY,
    wire=(FlowhubRow, FlowhubCustomer),
    order_format=order_request, self_deduplicating=False,
    webhook=PosWebhook(secret_header="key", topic_field="event", account_field="locationId",
                       inventory_topics=frozenset({"inventory.updated"}), account_keys=("location_id", "location_ids")),
    sandbox="flowhub",
    demo=DemoAccount("cascade-flowhub", "Cascade Cannabis Co (Flowhub)", "/flowhub",
                     {"client_id": "flowhub-demo-client", "key": "flowhub-demo-key"}),
)
