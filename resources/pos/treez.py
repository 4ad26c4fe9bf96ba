"""Treez: API key exchanged for a 2-hour token, 10 TPS per location, pages sorted by name.

``POST config/api/gettokens`` (form ``client_id`` + ``apikey``) gives an ``access_token`` sent
raw in ``authorization`` with ``client_id`` beside it. Products have no updated-since filter,
so every read is a full one (deactivated products included via ``active=ALL``; hard-deleted
ones vanish and are detected by their absence). ``sellable_quantity`` is capped at 30 by Treez;
inventory rows say so. Customers do have ``lastUpdated/after``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import Field

from resources.connection import ConnectionSpec, page_size_field
from resources.http import HttpSession, RateLimiter
from resources.pos.base import (
    CUSTOMERS, POS_POLICY, TOKENS, TokenClient, PosCustomer, PosInventoryItem, PosProduct, Potency, Wire, iso_z,
    translate, utc, PosCredentials, PosOptions,
)
from resources.provider import DemoAccount, PosProvider, PosWebhook
from warehouse.syncs import Rejected

if TYPE_CHECKING:
    from resources.pos_orders import OrderDraft

SYSTEM = "treez"
SELLABLE_CAP = Decimal(30)
_LIMITERS: dict[str, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def location_limiter(key: str, rate: float) -> RateLimiter:
    """One limiter per Treez location for the whole process: the 10 TPS budget is the store's.

    Burst 1: a token bucket lets ``burst + rate`` calls into one sliding second, and Treez
    counts a sliding second. The default 5/s leaves half the budget to the store's own menu
    and e-commerce integrations.
    """
    with _LIMITERS_LOCK:
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(rate, burst=1)
        return _LIMITERS[key]


class TreezRange(Wire):
    minimum_value: Decimal | None = None
    maximum_value: Decimal | None = None


class TreezLabResult(Wire):
    result_type: str
    amount: TreezRange
    amount_type: str | None = None


class TreezFields(Wire):
    name: str = Field(min_length=1)
    brand: str | None = None
    uom: str | None = None
    amount: Decimal | None = None
    size: str | None = None
    classification: str | None = None
    subtype: str | None = None


class TreezStock(Wire):
    inventory_type: str | None = None
    location_id: str
    sellable_quantity: Decimal


class TreezPricing(Wire):
    price_sell: Decimal | None = None


class TreezAttributes(Wire):
    flavors: list[str] = Field(default_factory=list)
    effects: list[str] = Field(default_factory=list)
    general: list[str] = Field(default_factory=list)


class TreezBarcode(Wire):
    sku: str | None = None
    type: str | None = None


class TreezProduct(Wire):
    product_id: str
    product_status: str
    last_updated_at: dt.datetime
    category_type: str | None = None
    product_configurable_fields: TreezFields
    sellable_quantity_detail: list[TreezStock] = Field(default_factory=list)
    pricing: TreezPricing | None = None
    attributes: TreezAttributes | None = None
    product_barcodes: list[TreezBarcode] = Field(default_factory=list)
    lab_results: list[TreezLabResult] = Field(default_factory=list)

    @property
    def sku(self) -> str | None:
        return next((b.sku for b in self.product_barcodes if b.sku and (b.type or "SKU") == "SKU"), None)


class TreezAddress(Wire):
    street1: str | None = None
    city: str | None = None
    state: str | None = None
    zipcode: str | None = None
    primary: bool = False


class TreezCustomer(Wire):
    customer_id: str
    status: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birthday: dt.date | None = None
    email: str | None = None
    phone: str | None = None
    state_medical_id: str | None = None
    patient_type: str | None = None
    rewards_balance: Decimal | None = None
    gender: str | None = None
    signup_date: dt.datetime | None = None
    last_update: dt.datetime | None = None
    addresses: list[TreezAddress] = Field(default_factory=list)


def product_record(p: TreezProduct) -> PosProduct:
    f = p.product_configurable_fields
    attrs = p.attributes or TreezAttributes()
    return PosProduct(
        source=SYSTEM, source_id=p.product_id, sku=p.sku, name=f.name, brand=f.brand,
        category_labels=[x for x in (p.category_type, f.subtype) if x],
        strain_labels=[f.classification] if f.classification else [],
        effects=attrs.effects, flavors=attrs.flavors, tags=attrs.general,
        potency=[Potency(name=r.result_type, low=r.amount.minimum_value, high=r.amount.maximum_value, unit=r.amount_type)
                 for r in p.lab_results],
        size=f.size, net_amount=f.amount, net_unit=f.uom,
        price=p.pricing.price_sell if p.pricing else None,
        active=p.product_status == "ACTIVE", updated_at=utc(p.last_updated_at),
    )


def inventory_records(p: TreezProduct) -> list[PosInventoryItem]:
    active = p.product_status == "ACTIVE"
    # adult-use stock only: a MEDICAL entry for the same location would describe the same shelf twice
    adult = [s for s in p.sellable_quantity_detail if (s.inventory_type or "ADULT") == "ADULT"]
    return [PosInventoryItem(
        source=SYSTEM, product_id=p.product_id, location_id=s.location_id, sku=p.sku,
        quantity=s.sellable_quantity, quantity_unit="each", capped_at=SELLABLE_CAP, active=active,
        updated_at=utc(p.last_updated_at),
    ) for s in adult]


def customer_record(c: TreezCustomer) -> PosCustomer:
    home = next((a for a in c.addresses if a.primary), c.addresses[0] if c.addresses else TreezAddress())
    return PosCustomer(
        source=SYSTEM, source_id=c.customer_id, first_name=c.first_name, last_name=c.last_name, email=c.email,
        phone=c.phone, birth_date=c.birthday, street=home.street1, city=home.city, state=home.state,
        postal_code=home.zipcode, country="US", gender=c.gender, medical_id=c.state_medical_id,
        customer_type=c.patient_type, loyalty_points=c.rewards_balance, status=c.status,
        created_at=utc(c.signup_date), updated_at=utc(c.last_update),
    )


class TreezClient(TokenClient):
    system = SYSTEM
    supports_incremental = frozenset({CUSTOMERS})

    def __init__(self, session: HttpSession, client_id: str, apikey: str, options: dict | None = None) -> None:
        super().__init__(session, TOKENS.key(SYSTEM, session.client.base_url, client_id, apikey), options)
        self._client_id, self._apikey = client_id, apikey
        self.page_size = int(self.options.get("page_size", 1000))

    def fetch_token(self) -> tuple[str, float]:
        body = self.session.request(
            "POST", "/config/api/gettokens", data={"client_id": self._client_id, "apikey": self._apikey}
        ).json()
        return body["access_token"], float(body.get("expires_in") or 7200)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"authorization": token, "client_id": self._client_id}  # raw token, no "Bearer"

    def get_json(self, path: str, **kwargs) -> dict:
        return self.authed("GET", path, **kwargs).json()

    def _products(self) -> Iterator[dict]:
        page, seen = 1, 0
        while True:
            data = self.get_json("/product/product_list",
                                 params={"page": page, "pagesize": self.page_size, "active": "ALL"})["data"]
            rows = data.get("product_list") or []
            yield from rows
            seen += len(rows)
            if not rows or seen >= int(data.get("total_count") or 0):
                return
            page += 1

    def still_listed(self, product_ids: list[str]) -> set[str]:
        """``product_list`` takes up to 50 ``id=`` values (any status: a deactivated product is listed)."""
        found: set[str] = set()
        for at in range(0, len(product_ids), 50):
            batch = product_ids[at:at + 50]
            data = self.get_json("/product/product_list",
                                 params={"id": batch, "active": "ALL", "page": 1, "pagesize": 50})["data"]
            found |= {str(r.get("product_id")) for r in data.get("product_list") or []} & set(batch)
        return found

    def iter_products(self, updated_since: dt.datetime | None = None) -> Iterator[PosProduct | Rejected]:
        for raw in self._products():
            yield translate(raw, TreezProduct, "product_id", product_record)

    def iter_inventory(self, updated_since: dt.datetime | None = None) -> Iterator[PosInventoryItem | Rejected]:
        for raw in self._products():
            out = translate(raw, TreezProduct, "product_id", inventory_records)
            yield from ([out] if isinstance(out, Rejected) else out)

    def iter_customers(self, updated_since: dt.datetime | None = None) -> Iterator[PosCustomer | Rejected]:
        after = iso_z(updated_since or dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc))
        size = min(self.page_size, 1000)
        page = 1
        while rows := self.get_json(f"/customer/lastUpdated/after/{after}/page/{page}/pagesize/{size}").get("data") or []:
            for raw in rows:
                yield translate(raw, TreezCustomer, "customer_id", customer_record)
            if len(rows) < size:
                return
            page += 1


def treez_client(base_url: str, credentials: dict, options: dict, **session_kwargs) -> TreezClient:
    dispensary = credentials["dispensary"]
    session = HttpSession(SYSTEM, f"{base_url.rstrip('/')}/v2.0/dispensary/{dispensary}", **session_kwargs)
    rate = options.get("rate_limit_per_s") or session.policy.rate_limit_per_s
    session.limiter = location_limiter(f"{base_url}|{dispensary}", float(rate))
    return TreezClient(session, credentials["client_id"], credentials["apikey"], options)


class TreezCredentials(PosCredentials):
    dispensary: str
    client_id: str
    apikey: str


class TreezOptions(PosOptions):
    page_size: int | None = page_size_field(1000)  # Treez's largest `pagesize`
    rate_limit_per_s: float | None = Field(None, gt=0)


CONNECTION = ConnectionSpec(SYSTEM, TreezCredentials, TreezOptions)


def order_request(client: TreezClient, d: OrderDraft):
    """A pickup ticket (``POST /ticket/detailticket``); Treez does not deduplicate it."""
    body = {"type": "PICKUP", "order_source": "ECOMMERCE", "customer_id": d.customer_ref,
            "external_order_number": d.order_ref, "notes": d.note,
            "items": [{"product_id": x.product_id, "quantity": x.quantity} for x in d.lines]}
    return body, lambda: client.authed("POST", "/ticket/detailticket", json=body).json(), \
        lambda r: (r["data"]["ticket_id"], r["data"].get("order_status") or "received")


PROVIDER = PosProvider(
    system=SYSTEM, connection=CONNECTION, client=treez_client, wire=(TreezProduct, TreezCustomer),
    # No Retry-After on OVER LIMIT: Treez asks for 250-500 ms pauses, hence the floor and slower backoff.
    policy=replace(POS_POLICY, backoff_base_s=0.5, retry_after_floor_s=0.25, rate_limit_per_s=5.0),
    rate_limit_scope=(
        "10 TPS per location, counted by Treez across every caller. Our limiter is one per location per "
        "process (5/s by default, half the budget), not shared between processes. Enough because at most two "
        "of our processes page one location at once (the daily catalog and the 15-minute inventory run), "
        "2 x 5/s stays within 10, and the API process only submits single orders; a 429 that still comes is "
        "retried after the floor, within the run's budget."),
    order_format=order_request, self_deduplicating=False,
    webhook=PosWebhook(secret_header="authorization", topic_field="event_type", account_field="dispensary",
                       inventory_topics=frozenset({"PRODUCT"}), account_keys=("dispensary",)),
    sandbox="treez",
    demo=DemoAccount("mile-high-treez", "Mile High Dispensary (Treez)", "/treez",
                     {"dispensary": "partnerdemo", "client_id": "treez-demo-client", "apikey": "treez-demo-apikey"}),
)
