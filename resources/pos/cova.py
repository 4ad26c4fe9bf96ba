"""COVA (iQmetrix): OAuth password grant for a 12-hour token, Skip/Top pages, ``UpdatedAsOf`` feed.

The token comes from the accounts service (``token_url``; in the sandbox beside the data
platform) and opens only its own company. ``DetailedProductData`` is read per location in
pages of ``Top`` until a short page; ``/UpdatedAsOf/{utc}`` is the incremental feed, deleted
products included (``IsDeleted``). Product facts live in ``Specifications`` as strings, THC/CBD
of smokables in ``mg/g`` (22.5 % arrives as "225"). Customers have no modified filter.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field

from resources.connection import ConnectionSpec, page_size_field
from resources.http import AuthFailed, HttpSession, RequestInvalid
from resources.pos.base import (
    INVENTORY, PRODUCTS, TOKENS, PosCustomer, PosInventoryItem, PosProduct, Potency, TokenClient, Wire, iso_z,
    money, translate, utc,
    PosCredentials, PosOptions,
)
from warehouse.syncs import Rejected
from resources.pos.base import POS_POLICY, numeric
from resources.provider import DemoAccount, PosProvider, PosWebhook

if TYPE_CHECKING:
    from resources.pos_orders import OrderDraft

SYSTEM = "cova"


class CovaField(Wire):
    display_name: str = Field(alias="DisplayName")
    value: str | None = Field(None, alias="Value")
    unit: str | None = Field(None, alias="Unit")


class CovaSpecification(Wire):
    name: str | None = Field(None, alias="Name")
    fields: list[CovaField] = Field(default_factory=list, alias="Fields")


class CovaAvailability(Wire):
    location_id: int = Field(alias="LocationId")
    in_stock: Decimal = Field(alias="InStockQuantity")


class CovaPrice(Wire):
    location_id: int = Field(alias="LocationId")
    regular_price: Decimal | None = Field(None, alias="RegularPrice")


class CovaPackage(Wire):
    package_id: str | None = Field(None, alias="PackageId")
    lot_number: str | None = Field(None, alias="LotNumber")
    expiry_date: dt.datetime | None = Field(None, alias="ExpiryDate")
    packaged_date: dt.datetime | None = Field(None, alias="PackagedDate")
    quantity: Decimal = Field(alias="Quantity")


class CovaProduct(Wire):
    product_id: str = Field(alias="ProductId")
    name: str = Field(alias="Name", min_length=1)
    sku: str | None = Field(None, alias="Sku")
    brand: str | None = Field(None, alias="Brand")
    classification: str | None = Field(None, alias="ClassificationName")
    is_active: bool = Field(True, alias="IsActive")
    is_deleted: bool = Field(False, alias="IsDeleted")
    updated: dt.datetime | None = Field(None, alias="UpdatedDateUtc")
    specifications: list[CovaSpecification] = Field(default_factory=list, alias="Specifications")
    availability: list[CovaAvailability] = Field(default_factory=list, alias="Availability")
    prices: list[CovaPrice] = Field(default_factory=list, alias="Prices")
    packages: list[CovaPackage] | None = Field(None, alias="Packages")

    def spec(self) -> dict[str, CovaField]:
        return {f.display_name.lower(): f for s in self.specifications for f in s.fields}


class CovaAddress(Wire):
    line1: str | None = Field(None, alias="AddressLine1")
    city: str | None = Field(None, alias="City")
    state: str | None = Field(None, alias="StateCode")
    zip: str | None = Field(None, alias="Zip")
    country: str | None = Field(None, alias="CountryCode")


class CovaCustomer(Wire):
    id: str = Field(alias="Id")
    first_name: str | None = Field(None, alias="FirstName")
    last_name: str | None = Field(None, alias="LastName")
    email: str | None = Field(None, alias="Email")
    phone: str | None = Field(None, alias="Phone")
    date_of_birth: dt.datetime | None = Field(None, alias="DateOfBirth")
    gender: str | None = Field(None, alias="Gender")
    medical_id: str | None = Field(None, alias="MedicalId")
    addresses: list[CovaAddress] = Field(default_factory=list, alias="Addresses")
    created: dt.datetime | None = Field(None, alias="CreatedDateUtc")
    modified: dt.datetime | None = Field(None, alias="LastModifiedDateUtc")


def _split(value: str | None) -> list[str]:
    return [x.strip() for x in (value or "").split(",") if x.strip()]


def product_record(p: CovaProduct, location_id: int) -> PosProduct:
    spec = p.spec()
    potency = []
    for name in ("THC", "CBD", "CBN", "CBG"):
        low, high = spec.get(f"{name.lower()} min"), spec.get(f"{name.lower()} max")
        if low or high:
            unit = (high or low).unit
            potency.append(Potency(name=name, low=money(low.value) if low else None,
                                   high=money(high.value) if high else None, unit=unit))
    weight = spec.get("net weight")
    price = next((x.regular_price for x in p.prices if x.location_id == location_id), None)
    return PosProduct(
        source=SYSTEM, source_id=p.product_id, sku=p.sku, name=p.name, brand=p.brand,
        category_labels=[p.classification] if p.classification else [],
        strain_labels=[spec["strain type"].value] if spec.get("strain type") and spec["strain type"].value else [],
        effects=_split(spec["effects"].value if "effects" in spec else None),
        flavors=_split(spec["flavours"].value if "flavours" in spec else None), potency=potency,
        net_amount=money(weight.value) if weight else None, net_unit=weight.unit if weight else None,
        price=price, active=p.is_active and not p.is_deleted, deleted=p.is_deleted, updated_at=utc(p.updated),
        attributes={"location_id": location_id},
    )


def inventory_records(p: CovaProduct, location_id: int) -> list[PosInventoryItem]:
    common: dict[str, Any] = dict(source=SYSTEM, product_id=p.product_id, location_id=str(location_id), sku=p.sku,
                                  quantity_unit="each", active=p.is_active and not p.is_deleted, deleted=p.is_deleted,
                                  updated_at=utc(p.updated))
    if p.packages:  # lot-tracked: one row per package
        return [PosInventoryItem(**common, lot_id=k.lot_number or k.package_id or "", quantity=k.quantity,
                                 compliance_id=k.package_id, expires_on=k.expiry_date.date() if k.expiry_date else None,
                                 packaged_on=k.packaged_date.date() if k.packaged_date else None) for k in p.packages]
    return [PosInventoryItem(**common, quantity=a.in_stock) for a in p.availability if a.location_id == location_id]


def customer_record(c: CovaCustomer) -> PosCustomer:
    a = c.addresses[0] if c.addresses else CovaAddress()
    return PosCustomer(
        source=SYSTEM, source_id=c.id, first_name=c.first_name, last_name=c.last_name, email=c.email, phone=c.phone,
        birth_date=c.date_of_birth.date() if c.date_of_birth else None, street=a.line1, city=a.city, state=a.state,
        postal_code=a.zip, country=a.country, gender=c.gender, medical_id=c.medical_id,
        customer_type="medical" if c.medical_id else "recreational", created_at=utc(c.created), updated_at=utc(c.modified),
    )


class CovaClient(TokenClient):
    system = SYSTEM
    supports_incremental = frozenset({PRODUCTS, INVENTORY})

    def __init__(self, session: HttpSession, credentials: dict, token_url: str, options: dict | None = None) -> None:
        super().__init__(session, TOKENS.key(SYSTEM, token_url, credentials["client_id"], credentials["username"],
                                             credentials["password"], credentials["client_secret"]), options)
        self._creds, self.token_url = credentials, token_url
        self.company_id = int(credentials["company_id"])
        self.page_size = min(int(self.options.get("page_size", 500)), 500)
        self.location_ids = [int(x) for x in self.options.get("location_ids") or credentials.get("location_ids") or []]
        if not self.location_ids:
            raise ValueError("cova connection needs options.location_ids (COVA has no location listing)")

    def fetch_token(self) -> tuple[str, float]:
        form = {"grant_type": "password", **{k: self._creds[k] for k in ("username", "password", "client_id", "client_secret")}}
        try:
            body = self.session.request("POST", self.token_url, data=form).json()
        except RequestInvalid as exc:  # OAuth answers bad credentials with 400 invalid_grant / invalid_client
            raise AuthFailed(SYSTEM, f"token request refused ({exc.status})", status=exc.status) from None
        return body["access_token"], float(body.get("expires_in") or 43200)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def _products(self, updated_since: dt.datetime | None, body: dict[str, bool]) -> Iterator[tuple[dict, int]]:
        path = f"/dataplatform/v1/companies/{self.company_id}/DetailedProductData"
        if updated_since is not None:
            path += f"/UpdatedAsOf/{iso_z(updated_since)}"
        for location_id in self.location_ids:
            skip = 0
            while True:
                query = {"LocationId": location_id, "InStockOnly": False, "SellingRoomOnly": False,
                         "Skip": skip, "Top": self.page_size, **body}
                rows = self.authed("POST", path, json=query).json().get("Products") or []
                yield from ((r, location_id) for r in rows)
                skip += len(rows)
                if len(rows) < self.page_size:
                    break

    def iter_products(self, updated_since: dt.datetime | None = None) -> Iterator[PosProduct | Rejected]:
        want = {"IncludePricing": True, "IncludeProductSpecifications": True}
        for raw, loc in self._products(updated_since, want):
            yield translate(raw, CovaProduct, "ProductId", lambda p: product_record(p, loc))

    def iter_inventory(self, updated_since: dt.datetime | None = None) -> Iterator[PosInventoryItem | Rejected]:
        want = {"IncludeAvailability": True, "IncludePackageDetails": True}
        for raw, loc in self._products(updated_since, want):
            out = translate(raw, CovaProduct, "ProductId", lambda p: inventory_records(p, loc))
            yield from ([out] if isinstance(out, Rejected) else out)

    def iter_customers(self, updated_since: dt.datetime | None = None) -> Iterator[PosCustomer | Rejected]:
        path, top, skip = f"/customers/v1/Companies({self.company_id})/CustomerFull", 1000, 0
        while True:
            rows = self.authed("GET", path, params={"$skip": skip, "$top": top}).json()
            for raw in rows:
                yield translate(raw, CovaCustomer, "Id", customer_record)
            skip += len(rows)
            if len(rows) < top:
                return


def cova_client(base_url: str, credentials: dict, options: dict, **session_kwargs) -> CovaClient:
    token_url = options.get("token_url") or f"{base_url.rstrip('/')}/v1/oauth2/token"
    return CovaClient(HttpSession(SYSTEM, base_url, **session_kwargs), credentials, token_url, options)


class CovaCredentials(PosCredentials):
    company_id: int
    client_id: str
    client_secret: str
    username: str
    password: str
    location_ids: list[int] | None = None  # older connections kept them here; options win


class CovaOptions(PosOptions):
    page_size: int | None = page_size_field(500)  # Cova's largest `$top`
    location_ids: list[int] | None = None
    location_id: int | None = None  # the account webhooks name
    token_url: str | None = None
    integrator_id: str | None = None


CONNECTION = ConnectionSpec(SYSTEM, CovaCredentials, CovaOptions)


def cova_order_id(tenant_id: str, order_ref: str) -> str:
    """Our order id at COVA: stable per order, so re-sending replaces instead of duplicating."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"storehouse:{tenant_id}:{order_ref}"))


def order_request(client: CovaClient, d: OrderDraft):
    """``PUT`` by our own order id (``cova_order_id``): a repeat replaces, so COVA deduplicates."""
    if not d.location_id:
        raise ValueError("a COVA order needs the location holding the products")
    order_id = cova_order_id(d.tenant_id, d.order_ref)
    body = {"CompanyId": client.company_id, "IntegratorId": str(client.options.get("integrator_id", "storehouse")),
            "LocationId": numeric(d.location_id, "location id"), "CustomerId": d.customer_ref,
            "ExternalOrderId": d.order_ref, "Notes": d.note,
            "Items": [{"ProductId": x.product_id, "Quantity": x.quantity} for x in d.lines]}
    return body, lambda: client.authed("PUT", f"/covaorderintake/v1/TIPCovaOrder({order_id})", json=body).json(), \
        lambda r: (str(r.get("OrderId") or order_id), str(r.get("Status") or "received"))


PROVIDER = PosProvider(
    system=SYSTEM, connection=CONNECTION, client=cova_client, policy=POS_POLICY,
    wire=(CovaProduct, CovaCustomer),
    order_format=order_request, self_deduplicating=True,
    webhook=PosWebhook(secret_header="authorization", topic_field="EventType", account_field="LocationId",
                       inventory_topics=frozenset({"ProductUpdated", "InventoryUpdated"}),
                       account_keys=("location_id", "location_ids")),
    sandbox="cova",
    demo=DemoAccount("coastal-cova", "Coastal Cannabis (COVA)", "/cova",
                     {"company_id": 12345, "client_id": "cova-demo-client", "client_secret": "cova-demo-secret",
                      "username": "demo@storehouse.test", "password": "cova-demo-password"},
                     {"location_ids": [201], "currency": "CAD"}),
)
