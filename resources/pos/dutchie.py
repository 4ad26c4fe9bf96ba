"""Dutchie POS: HTTP Basic with the location key, whole arrays, modified-date incremental reads.

Models follow ``dutchie-pos-openapi.json`` (``ProductDetail``, ``InventoryItem``, ``Customer``).
``/products?fromLastModifiedDateUTC=`` is incremental and reports deactivations
(``isActive: false``); hard-deleted products vanish, so deletions need a full read.
``/inventory`` has no modified filter: one call returns every package with stock (one record
per package, several per batch; a package that sold out disappears), so lots are keyed on the
package, never the batch name. Customers page with ``PageNumber`` until ``[]``, anonymous
walk-ins left out (``includeAnonymous=false``). Limits are per endpoint per minute with
``Retry-After``, which the session honours.

Compliance, as the document gives it: a package whose ``packageStatus`` is not Active or whose
``labTestStatus`` is not Passed is not sellable stock (loaded, unavailable); ``isMedicalOnly``
products carry ``attributes.medical_only``; ``flowerEquivalent``/``recFlowerEquivalent`` (grams
per unit) go to ``attributes`` for purchase limits; the state tag is ``externalPackageId``;
``mmjidExpirationDate`` is kept with the medical id; merged-away customers are loaded deleted.
A 403 is a key without the endpoint's role (``MissingRole``), not rejected credentials.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field

from resources.connection import ConnectionSpec, page_size_field
from resources.http import AuthFailed, HttpSession
from resources.pos.base import (
    CUSTOMERS, PRODUCTS, BasePosClient, PosCustomer, PosInventoryItem, PosProduct, Potency, Wire, translate, utc,
    PosCredentials, PosOptions,
)
from warehouse.syncs import Rejected
from resources.pos.base import POS_POLICY, NotConfigured, numeric
from resources.provider import DemoAccount, PosProvider, PosWebhook

if TYPE_CHECKING:
    from resources.pos_orders import OrderDraft

SYSTEM = "dutchie"
SELLABLE_PACKAGE, PASSED_LAB = "active", "passed"


class MissingRole(AuthFailed):
    """The key was accepted but lacks the role an endpoint needs (Dutchie's 403)."""

    kind = "missing_role"


def _naive_utc(value: dt.datetime) -> str:
    """Dutchie's own style: naive UTC with milliseconds."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


class DutchieTag(Wire):
    tag_name: str | None = Field(None, alias="tagName")


class DutchieTier(Wire):
    start_weight: Decimal | None = Field(None, alias="startWeight")
    end_weight: Decimal | None = Field(None, alias="endWeight")
    price: Decimal
    medical_price: Decimal | None = Field(None, alias="medicalPrice")


class DutchieProduct(Wire):
    product_id: int = Field(alias="productId")
    sku: str | None = None
    product_name: str | None = Field(None, alias="productName", min_length=1)  # nullable in the document
    internal_name: str | None = Field(None, alias="internalName")
    online_title: str | None = Field(None, alias="onlineTitle")
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
    pricing_tiers: list[DutchieTier] | None = Field(None, alias="pricingTierData")
    medical_only: bool = Field(False, alias="isMedicalOnly")
    flower_equivalent: Decimal | None = Field(None, alias="flowerEquivalent")
    rec_flower_equivalent: Decimal | None = Field(None, alias="recFlowerEquivalent")
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
    external_package_id: str | None = Field(None, alias="externalPackageId")
    package_status: str | None = Field(None, alias="packageStatus")
    lab_test_status: str | None = Field(None, alias="labTestStatus")
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
    mmjid_expires: dt.datetime | None = Field(None, alias="mmjidExpirationDate")
    is_anonymous: bool = Field(False, alias="isAnonymous")
    merged_into: int | None = Field(None, alias="mergedIntoCustomerId")
    last_modified: dt.datetime | None = Field(None, alias="lastModifiedDateUTC")
    created: dt.datetime | None = Field(None, alias="creationDate")
    customer_type: str | None = Field(None, alias="customerType")
    gender: str | None = None
    date_of_birth: dt.datetime | None = Field(None, alias="dateOfBirth")
    opted_in: bool | None = Field(None, alias="optedIntoMarketing")


def _tiers(p: DutchieProduct) -> list[DutchieTier]:
    return sorted(p.pricing_tiers or [], key=lambda t: t.start_weight or Decimal(0))


def product_attributes(p: DutchieProduct) -> dict:
    """What the order rules need beyond the catalog: medical-only, flower equivalents, tiers."""
    tiers = _tiers(p)
    out = {
        "med_price": None if p.med_price is None else str(p.med_price),
        "medical_only": p.medical_only or None,
        "flower_equivalent_g": None if p.flower_equivalent is None else str(p.flower_equivalent),
        "rec_flower_equivalent_g": None if p.rec_flower_equivalent is None else str(p.rec_flower_equivalent),
        "pricing_tiers": [{"start_weight": None if t.start_weight is None else str(t.start_weight),
                           "end_weight": None if t.end_weight is None else str(t.end_weight), "price": str(t.price),
                           "medical_price": None if t.medical_price is None else str(t.medical_price)}
                          for t in tiers] or None,
    }
    if p.med_price is None and tiers and tiers[0].medical_price is not None:
        out["med_price"] = str(tiers[0].medical_price)
    return {k: v for k, v in out.items() if v is not None}


def product_record(p: DutchieProduct) -> PosProduct:
    name = p.product_name or p.internal_name or p.online_title
    if not name:
        raise ValueError("no productName, internalName or onlineTitle")
    tiers = _tiers(p)
    price = next((x for x in (p.rec_price, p.price) if x is not None), tiers[0].price if tiers else None)
    potency = [Potency(name=label, low=value, high=value, unit=unit)
               for label, value, unit in (("THC", p.thc_content, p.thc_content_unit), ("CBD", p.cbd_content, p.cbd_content_unit))
               if value is not None]
    return PosProduct(
        source=SYSTEM, source_id=str(p.product_id), sku=p.sku, name=name, brand=p.brand_name,
        category_labels=[x for x in (p.category, p.master_category) if x],
        strain_labels=[p.strain_type] if p.strain_type else [],
        flavors=[f.strip() for f in (p.flavor or "").split(",") if f.strip()],
        tags=[t.tag_name for t in p.tags or [] if t.tag_name], potency=potency, size=p.size,
        net_amount=p.net_weight, net_unit=p.net_weight_unit, price=price,  # tiered: the first tier's
        active=p.is_active, updated_at=utc(p.last_modified), attributes=product_attributes(p),
    )


def customer_record(c: DutchieCustomer) -> PosCustomer:
    return PosCustomer(
        source=SYSTEM, source_id=str(c.customer_id), first_name=c.first_name, last_name=c.last_name, email=c.email,
        phone=c.cell_phone or c.phone, birth_date=c.date_of_birth.date() if c.date_of_birth else None,
        street=c.address1, city=c.city, state=c.state, postal_code=c.postal_code, country="US", gender=c.gender,
        medical_id=c.mmjid, medical_id_expires_on=c.mmjid_expires.date() if c.mmjid and c.mmjid_expires else None,
        customer_type=c.customer_type, marketing_opt_in=c.opted_in, status=c.status,
        deleted=c.merged_into is not None,  # merged into another record: that one is the customer
        created_at=utc(c.created), updated_at=utc(c.last_modified),
    )


def inventory_record(i: DutchieInventoryItem, location: str) -> PosInventoryItem:
    """One package. Held back (quarantine, testing, a lab test not passed): loaded, not sellable."""
    sellable = ((i.package_status or SELLABLE_PACKAGE).lower() == SELLABLE_PACKAGE
                and (i.lab_test_status or PASSED_LAB).lower() == PASSED_LAB)
    return PosInventoryItem(
        source=SYSTEM, product_id=str(i.product_id), location_id=location,
        lot_id=i.package_id or str(i.inventory_id), sku=i.sku, quantity=i.quantity_available,
        quantity_unit=i.quantity_units, compliance_id=i.external_package_id, active=sellable,
        expires_on=i.expiration_date.date() if i.expiration_date else None,
        packaged_on=i.packaged_date.date() if i.packaged_date else None, updated_at=utc(i.last_modified),
    )


class DutchieClient(BasePosClient):
    system = SYSTEM
    supports_incremental = frozenset({PRODUCTS, CUSTOMERS})

    def __init__(self, session: HttpSession, options: dict | None = None, consumer_key: str | None = None) -> None:
        super().__init__(session, options)
        self.consumer_key = consumer_key or None  # the integrator's ConsumerKey: needed to submit orders
        self._location_id: str | None = None
        self.page_size = int(self.options.get("customer_page_size", 1000))

    def get_json(self, path: str, **kwargs) -> object:
        try:
            return self.session.get_json(path, **kwargs)
        except AuthFailed as exc:
            if exc.status == 403:
                raise MissingRole(SYSTEM, f"the API key lacks the role for GET {path} (403); the key itself was "
                                  "accepted: ask Dutchie to grant the role", status=403) from exc
            raise

    def location_id(self) -> str:
        """The key's location (``/whoami``), asked once per client."""
        if self._location_id is None:
            self._location_id = str(self.get_json("/whoami")["locationId"])
        return self._location_id

    def iter_products(self, updated_since: dt.datetime | None = None) -> Iterator[PosProduct | Rejected]:
        params = {"fromLastModifiedDateUTC": _naive_utc(updated_since)} if updated_since else {}
        for raw in self.get_json("/products", params=params):
            yield translate(raw, DutchieProduct, "productId", product_record)

    def iter_inventory(self, updated_since: dt.datetime | None = None) -> Iterator[PosInventoryItem | Rejected]:
        location = self.location_id()
        for raw in self.get_json("/inventory", params={"includeLabResults": "false"}):
            yield translate(raw, DutchieInventoryItem, "inventoryId", lambda i: inventory_record(i, location))

    def iter_customers(self, updated_since: dt.datetime | None = None) -> Iterator[PosCustomer | Rejected]:
        params = {"PageSize": self.page_size, "includeAnonymous": "false"}
        if updated_since:
            params["fromLastModifiedDateUTC"] = _naive_utc(updated_since)
        page = 0
        while rows := self.get_json("/customer/customers-paginated", params={**params, "PageNumber": page}):
            for raw in rows:
                if isinstance(raw, dict) and raw.get("isAnonymous") is True:
                    continue  # a walk-in, not a customer (should includeAnonymous be ignored)
                yield translate(raw, DutchieCustomer, "customerId", customer_record)
            page += 1


def dutchie_client(base_url: str, credentials: dict, options: dict, **session_kwargs) -> DutchieClient:
    session = HttpSession(SYSTEM, base_url, auth=(credentials["api_key"], ""), **session_kwargs)
    consumer_key = credentials.get("consumer_key")  # the integrator's ConsumerKey: orders are not sent without it
    return DutchieClient(session, options, str(consumer_key) if consumer_key else None)


class DutchieCredentials(PosCredentials):
    api_key: str
    consumer_key: str | None = None  # the integrator's ConsumerKey: needed only to submit orders


class DutchieOptions(PosOptions):
    customer_page_size: int | None = page_size_field(10_000)  # Dutchie's largest `PageSize`
    location_id: str | None = None  # the account webhooks name


CONNECTION = ConnectionSpec(SYSTEM, DutchieCredentials, DutchieOptions)


def order_request(client: DutchieClient, d: OrderDraft):
    """A pre-order (``POST /preorder/submit``), deduplicated by Dutchie on the ``ConsumerKey`` header and
    ``idempotencyKey``, both required by its document: a connection without its consumer key sends none."""
    body = {"customerId": numeric(d.customer_ref, "customer id"), "orderType": "Pickup", "isDelivery": False,
            "idempotencyKey": f"{d.tenant_id}:{d.order_ref}", "notes": d.note,
            "items": [{"productId": numeric(x.product_id, "product id"), "quantity": x.quantity} for x in d.lines]}
    if not client.consumer_key:  # without it Dutchie does not deduplicate, and a retried submit is a second order
        raise NotConfigured("this Dutchie connection has no consumer_key (the ConsumerKey Dutchie issues to the "
                            "integrator); orders are not sent without it")
    headers = {"ConsumerKey": client.consumer_key}
    return body, lambda: client.session.request("POST", "/preorder/submit", json=body, headers=headers).json(), \
        order_confirmation


def order_confirmation(answer: Any) -> tuple[str, str]:
    """(order id, status) from a ``/preorder/submit`` 200: the integer its schema gives, or the object
    with ``orderId`` (and ``transactionId``) its description promises. Anything else is unreadable."""
    if isinstance(answer, dict):
        answer = answer["orderId"]
    if isinstance(answer, bool) or not isinstance(answer, int) or answer <= 0:
        raise ValueError(f"not an order id: {type(answer).__name__}")
    return str(answer), "submitted"


PROVIDER = PosProvider(
    system=SYSTEM, connection=CONNECTION, client=dutchie_client, policy=POS_POLICY,
    wire=(DutchieProduct, DutchieInventoryItem, DutchieCustomer),
    rate_limit_scope=("per endpoint per minute, with Retry-After: we keep no limiter of our own and wait what "
                      "Dutchie asks, which holds across our processes because Dutchie does the counting."),
    order_format=order_request, self_deduplicating=True,
    webhook=PosWebhook(secret_header="authorization", topic_field="eventType", account_field="locationId",
                       inventory_topics=frozenset({"product.updated", "inventory.updated"}),
                       account_keys=("location_id",)),
    sandbox="dutchie",
    demo=DemoAccount("front-range-dutchie", "Front Range Cannabis (Dutchie)", "/dutchie",
                     {"api_key": "dutchie-demo-key", "consumer_key": "storehouse-demo-consumer",
                      # the key the shop's storefront sends orders with (POST /shops/{tenant}/pos/orders)
                      "orders_api_key": "front-range-orders-demo-key"}),
)
