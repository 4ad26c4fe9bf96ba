"""Portaus (SAQ, Québec alcohol): an API key wrapped in a signed JWT, page/limit envelopes.

Every call sends ``apikey: <JWT>``, an HS256 token over ``{"API_KEY": key}`` signed with the
tenant's JWT secret; we sign locally (short ``exp``) and reuse the token until near expiry.
Lists answer ``{list, count, pages, page}`` with pages from 1 and ``limit`` <= 100. There is no
updated-since filter: an incremental read orders by ``updatedAt`` descending and stops at the
first record older than the bookmark. SAQ fields: code in ``sku``, volume in ml, alcohol % as a
string in ``item.extraInfo.alcohol``, CAD prices.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import jwt
from pydantic import Field

from resources.connection import ConnectionSpec, page_size_field
from resources.http import HttpSession
from resources.pos.base import (
    CUSTOMERS, INVENTORY, PRODUCTS, TOKENS, PosCustomer, PosInventoryItem, PosProduct, SaqBranch, TokenClient, Wire,
    money, parse, translate, utc,
    PosCredentials, PosOptions,
)
from warehouse.syncs import Rejected
from resources.pos.base import POS_POLICY
from resources.provider import DemoAccount, PosProvider

SYSTEM = "portaus"
JWT_LIFETIME_S = 600


class Coded(Wire):
    id: int | None = None
    code: str | None = None
    name: str | None = None


class PortausQuantity(Wire):
    total: Decimal | None = None
    on_hand: Decimal | None = Field(None, alias="onHand")


class PortausExtra(Wire):
    alcohol: str | None = None
    vintage: str | None = None


class PortausItem(Wire):
    extra_info: PortausExtra | None = Field(None, alias="extraInfo")


class PortausPricing(Wire):
    price: Decimal | None = None


class PortausInventory(Wire):
    id: int


class PortausProduct(Wire):
    puid: str
    sku: str | None = None
    name: str = Field(min_length=1)
    active: bool = True
    volume: Decimal | None = None
    lbl_format: str | None = Field(None, alias="lblFormat")
    category: Coded | None = None
    specific_category: Coded | None = Field(None, alias="specificCategory")
    pricing: PortausPricing | None = None
    item: PortausItem | None = None
    quantity: PortausQuantity | None = None
    inventory: PortausInventory | None = None
    origin_country: str | None = Field(None, alias="originCountry")
    origin_region: str | None = Field(None, alias="originRegion")
    uvc: int | None = None
    updated_at: dt.datetime = Field(alias="updatedAt")


class PortausAddress(Wire):
    type: Coded | None = None
    street: str | None = None
    city: str | None = None
    state: dict[str, Any] | None = None
    country: dict[str, Any] | None = None
    postal_code: str | None = Field(None, alias="postalCode")


class PortausContact(Wire):
    first_name: str | None = Field(None, alias="firstName")
    last_name: str | None = Field(None, alias="lastName")
    email: str | None = None
    phone: str | None = None
    addresses: list[PortausAddress] = Field(default_factory=list)


class PortausCustomer(Wire):
    id: int
    active: bool = True
    contact: PortausContact = Field(default_factory=PortausContact)
    created_at: dt.datetime | None = Field(None, alias="createdAt")
    updated_at: dt.datetime = Field(alias="updatedAt")


def product_record(p: PortausProduct) -> PosProduct:
    extra = p.item.extra_info if p.item and p.item.extra_info else PortausExtra()
    labels = [c.name for c in (p.category, p.specific_category) if c and c.name]
    return PosProduct(
        source=SYSTEM, source_id=p.puid, sku=p.sku, name=p.name, category_labels=labels, size=p.lbl_format,
        net_amount=p.volume, net_unit="ml", price=p.pricing.price if p.pricing else None, currency="CAD",
        alcohol_pct=money(extra.alcohol), active=p.active, updated_at=utc(p.updated_at),
        attributes={k: v for k, v in {"vintage": extra.vintage, "origin_country": p.origin_country,
                                      "origin_region": p.origin_region, "bottles_per_case": p.uvc}.items() if v},
    )


def inventory_record(p: PortausProduct) -> PosInventoryItem:
    q = p.quantity or PortausQuantity()
    on_hand = q.on_hand if q.on_hand is not None else q.total
    return PosInventoryItem(
        source=SYSTEM, product_id=p.puid, location_id=str(p.inventory.id) if p.inventory else "", sku=p.sku,
        quantity=on_hand if on_hand is not None else Decimal(0), quantity_unit="each", active=p.active,
        updated_at=utc(p.updated_at),
    )


def customer_record(c: PortausCustomer) -> PosCustomer:
    home = next((a for a in c.contact.addresses if a.type and a.type.code == "PRINCIPAL"),
                c.contact.addresses[0] if c.contact.addresses else PortausAddress())
    return PosCustomer(
        source=SYSTEM, source_id=str(c.id), first_name=c.contact.first_name, last_name=c.contact.last_name,
        email=c.contact.email, phone=c.contact.phone, street=home.street, city=home.city,
        state=(home.state or {}).get("isoCode"), postal_code=home.postal_code, country=(home.country or {}).get("isoCode"),
        status="active" if c.active else "inactive", created_at=utc(c.created_at), updated_at=utc(c.updated_at),
    )


class PortausClient(TokenClient):
    system = SYSTEM
    supports_incremental = frozenset({PRODUCTS, INVENTORY, CUSTOMERS})

    def __init__(self, session: HttpSession, api_key: str, jwt_secret: str, options: dict | None = None) -> None:
        super().__init__(session, TOKENS.key(SYSTEM, api_key, jwt_secret), options)
        self._api_key, self._secret = api_key, jwt_secret
        self.page_size = min(int(self.options.get("page_size", 100)), 100)
        self.inventory_id = int(self.options.get("inventory_id", 1))

    def fetch_token(self) -> tuple[str, float]:
        """Signed here, no call: the JWT only wraps the API key (``exp`` keeps a leaked one short-lived)."""
        now = int(time.time())
        token = jwt.encode({"API_KEY": self._api_key.strip(), "iat": now, "exp": now + JWT_LIFETIME_S},
                           self._secret, algorithm="HS256")
        return token, float(JWT_LIFETIME_S)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"apikey": token}

    def _pages(self, path: str, updated_since: dt.datetime | None) -> Iterator[dict]:
        """Every record; with ``updated_since``, newest first until one is older than it."""
        order = {"orderBy": "updatedAt", "direction": "DESC"} if updated_since else {}
        page = 1
        while True:
            body = self.authed("GET", path, params={"limit": self.page_size, "page": page, **order}).json()
            for raw in body.get("list") or []:
                stamp = parse(_Stamp, raw)
                if updated_since and not isinstance(stamp, Rejected) and stamp.updated_at < updated_since:
                    return
                yield raw
            if page >= int(body.get("pages") or 0):
                return
            page += 1

    def _products(self, updated_since: dt.datetime | None) -> Iterator[dict]:
        return self._pages(f"/API/latest/admin/inventories/{self.inventory_id}/products", updated_since)

    def iter_products(self, updated_since: dt.datetime | None = None) -> Iterator[PosProduct | Rejected]:
        for raw in self._products(updated_since):
            yield translate(raw, PortausProduct, "puid", product_record)

    def iter_inventory(self, updated_since: dt.datetime | None = None) -> Iterator[PosInventoryItem | Rejected]:
        for raw in self._products(updated_since):
            yield translate(raw, PortausProduct, "puid", inventory_record)

    def iter_customers(self, updated_since: dt.datetime | None = None) -> Iterator[PosCustomer | Rejected]:
        for raw in self._pages("/API/v1/admin/customers", updated_since):
            yield translate(raw, PortausCustomer, "id", customer_record)

    def iter_saq_branches(self) -> Iterator[SaqBranch | Rejected]:
        for raw in self.authed("GET", "/api/v1/saq-branches").json():
            yield parse(SaqBranch, raw, "number")


class _Stamp(Wire):
    updated_at: dt.datetime = Field(alias="updatedAt")


def portaus_client(base_url: str, credentials: dict, options: dict, **session_kwargs) -> PortausClient:
    return PortausClient(HttpSession(SYSTEM, base_url, **session_kwargs), credentials["api_key"],
                         credentials["jwt_secret"], options)


class PortausCredentials(PosCredentials):
    api_key: str
    jwt_secret: str


class PortausOptions(PosOptions):
    page_size: int | None = page_size_field(100)  # Portaus's largest `limit`
    inventory_id: int | None = None


CONNECTION = ConnectionSpec(SYSTEM, PortausCredentials, PortausOptions)


PROVIDER = PosProvider(
    system=SYSTEM, connection=CONNECTION, client=portaus_client, policy=POS_POLICY,
    wire=(PortausProduct, PortausInventory, PortausCustomer),
    # orders go as payment intents (resources.pos_orders.create_payment_intent), one per reference
    order_format=None, self_deduplicating=True, webhook=None,
    sandbox="portaus",
    demo=DemoAccount("importations-portaus", "Importations Privées (Portaus)", "/portaus",
                     {"api_key": "portaus-demo-key", "jwt_secret": "portaus-demo-jwt-secret-0000000000",
                      "orders_api_key": "portaus-orders-demo-key"}),
)
