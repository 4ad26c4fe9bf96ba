"""Dutchie POS: HTTP Basic with the location key, whole arrays, modified-date incremental reads.

Models follow ``dutchie-pos-openapi.json`` (``ProductDetail``, ``InventoryItem``, ``Customer``).
``/products?fromLastModifiedDateUTC=`` is incremental and reports deactivations
(``isActive: false``); hard-deleted products vanish, so deletions need a full read.
``/inventory`` has no modified filter: one call returns every batch with stock (a batch that
sold out disappears). Customers page with ``PageNumber`` until ``[]``. Limits are per endpoint
per minute with ``Retry-After``, which the session honours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

from pydantic import Field

from resources.connection import ConnectionSpec
from resources.http import HttpSession
from resources.pos.base import (
    CUSTOMERS, PRODUCTS, BasePosClient, PosCustomer, PosInventoryItem, PosProduct, Potency, Wire, translate, utc,
    PosCredentials, PosOptions,
)
from warehouse.syncs import Rejected

SYSTEM = "dutchie"


def _naive_utc(value: dt.datetime) -> str:
    """Dutchie's own style: naive UTC with milliseconds."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


class DutchieTag(Wire):
    tag_name: str | None = Field(None, alias="tagName")


class DutchieProduct(Wire):
    product_id: int = Field(alias="productId")
    sku: str | None = None
    product_name: str = Field(alias="productName", min_length=1)
    master_category: str | None = Field(None, alias="masterCategory")
    category: str | None = None
    strain_type: str | None = Field(None, alias="strainType")
    size: str | None = None
    net_weight: Decimal | None = Field(None, alias="netWeight")
    net_weight_unit: str | None = Field(None, alias="netWeightUnit")
    brand_name: str | None = Field(None, alias="brandName")
    is_active: bool = Field(alias="isActive")
    thc_content: Decimal | None = Field(None, alias="thcContent")
    thc_content_unit: str | None = Field(None, alias="thcContentUnit")
    cbd_content: Decimal | None = Field(None, alias="cbdContent")
    cbd_content_unit: str | None = Field(None, alias="cbdContentUnit")
    rec_price: Decimal | None = Field(None, alias="recPrice")
    price: Decimal | None = None
    med_price: Decimal | None = Field(None, alias="medPrice")
    flavor: str | None = None
    tags: list[DutchieTag] | None = None
    last_modified: dt.datetime | None = Field(None, alias="lastModifiedDateUTC")


class DutchieLabResult(Wire):
    lab_test: str | None = Field(None, alias="labTest")
    value: Decimal | None = None
    unit: str | None = Field(None, alias="labResultUnit")


class DutchieInventoryItem(Wire):
    inventory_id: int = Field(alias="inventoryId")
    product_id: int = Field(alias="productId")
    sku: str | None = None
    quantity_available: Decimal = Field(alias="quantityAvailable")
    quantity_units: str | None = Field(None, alias="quantityUnits")
    batch_id: int | None = Field(None, alias="batchId")
    batch_name: str | None = Field(None, alias="batchName")
    package_id: str | None = Field(None, alias="packageId")
    expiration_date: dt.datetime | None = Field(None, alias="expirationDate")
    packaged_date: dt.datetime | None = Field(None, alias="packagedDate")
    last_modified: dt.datetime | None = Field(None, alias="lastModifiedDateUtc")


class DutchieCustomer(Wire):
    customer_id: int = Field(alias="customerId")
    first_name: str | None = Field(None, alias="firstName")
    last_name: str | None = Field(None, alias="lastName")
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = Field(None, alias="postalCode")
    phone: str | None = None
    cell_phone: str | None = Field(None, alias="cellPhone")
    email: str | None = Field(None, alias="emailAddress")
    status: str | None = None
    mmjid: str | None = Field(None, alias="mmjidNumber")
    last_modified: dt.datetime | None = Field(None, alias="lastModifiedDateUTC")
    created: dt.datetime | None = Field(None, alias="creationDate")
    customer_type: str | None = Field(None, alias="customerType")
    gender: str | None = None
    date_of_birth: dt.datetime | None = Field(None, alias="dateOfBirth")
    opted_in: bool | None = Field(None, alias="optedIntoMarketing")


def product_record(p: DutchieProduct) -> PosProduct:
    potency = [Potency(name=name, low=value, high=value, unit=unit)
               for name, value, unit in (("THC", p.thc_content, p.thc_content_unit), ("CBD", p.cbd_content, p.cbd_content_unit))
               if value is not None]
    return PosProduct(
        source=SYSTEM, source_id=str(p.product_id), sku=p.sku, name=p.product_name, brand=p.brand_name,
        category_labels=[x for x in (p.category, p.master_category) if x],
        strain_labels=[p.strain_type] if p.strain_type else [],
        flavors=[f.strip() for f in (p.flavor or "").split(",") if f.strip()],
        tags=[t.tag_name for t in p.tags or [] if t.tag_name], potency=potency, size=p.size,
        net_amount=p.net_weight, net_unit=p.net_weight_unit, price=p.rec_price if p.rec_price is not None else p.price,
        active=p.is_active, updated_at=utc(p.last_modified),
        attributes={"med_price": str(p.med_price)} if p.med_price is not None else {},
    )


def customer_record(c: DutchieCustomer) -> PosCustomer:
    return PosCustomer(
        source=SYSTEM, source_id=str(c.customer_id), first_name=c.first_name, last_name=c.last_name, email=c.email,
        phone=c.cell_phone or c.phone, birth_date=c.date_of_birth.date() if c.date_of_birth else None,
        street=c.address1, city=c.city, state=c.state, postal_code=c.postal_code, country="US", gender=c.gender,
        medical_id=c.mmjid, customer_type=c.customer_type, marketing_opt_in=c.opted_in, status=c.status,
        created_at=utc(c.created), updated_at=utc(c.last_modified),
    )


class DutchieClient(BasePosClient):
    system = SYSTEM
    supports_incremental = frozenset({PRODUCTS, CUSTOMERS})

    def __init__(self, session: HttpSession, options: dict | None = None) -> None:
        super().__init__(session, options)
        self._location_id: str | None = None
        self.page_size = int(self.options.get("customer_page_size", 1000))

    def location_id(self) -> str:
        """The key's location (``/whoami``), asked once per client."""
        if self._location_id is None:
            self._location_id = str(self.session.get_json("/whoami")["locationId"])
        return self._location_id

    def iter_products(self, updated_since: dt.datetime | None = None) -> Iterator[PosProduct | Rejected]:
        params = {"fromLastModifiedDateUTC": _naive_utc(updated_since)} if updated_since else {}
        for raw in self.session.get_json("/products", params=params):
            yield translate(raw, DutchieProduct, "productId", product_record)

    def iter_inventory(self, updated_since: dt.datetime | None = None) -> Iterator[PosInventoryItem | Rejected]:
        location = self.location_id()

        def record(i: DutchieInventoryItem) -> PosInventoryItem:
            return PosInventoryItem(
                source=SYSTEM, product_id=str(i.product_id), location_id=location,
                lot_id=i.batch_name or (str(i.batch_id) if i.batch_id is not None else ""), sku=i.sku,
                quantity=i.quantity_available, quantity_unit=i.quantity_units, compliance_id=i.package_id,
                expires_on=i.expiration_date.date() if i.expiration_date else None,
                packaged_on=i.packaged_date.date() if i.packaged_date else None, updated_at=utc(i.last_modified),
            )

        for raw in self.session.get_json("/inventory", params={"includeLabResults": "false"}):
            yield translate(raw, DutchieInventoryItem, "inventoryId", record)

    def iter_customers(self, updated_since: dt.datetime | None = None) -> Iterator[PosCustomer | Rejected]:
        params = {"PageSize": self.page_size}
        if updated_since:
            params["fromLastModifiedDateUTC"] = _naive_utc(updated_since)
        page = 0
        while rows := self.session.get_json("/customer/customers-paginated", params={**params, "PageNumber": page}):
            for raw in rows:
                yield translate(raw, DutchieCustomer, "customerId", customer_record)
            page += 1


def dutchie_client(base_url: str, credentials: dict, options: dict, **session_kwargs) -> DutchieClient:
    session = HttpSession(SYSTEM, base_url, auth=(credentials["api_key"], ""), **session_kwargs)
    return DutchieClient(session, options)


class DutchieCredentials(PosCredentials):
    api_key: str
    consumer_key: str | None = None  # the integrator's ConsumerKey: needed only to submit orders


class DutchieOptions(PosOptions):
    customer_page_size: int | None = None
    location_id: str | None = None  # the account webhooks name


CONNECTION = ConnectionSpec(SYSTEM, DutchieCredentials, DutchieOptions)
