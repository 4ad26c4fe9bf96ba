"""Shopify Admin REST: access-token header, ``page_info`` cursors in ``Link``, a leaky bucket.

Pages follow the ``rel="next"`` URL verbatim (filters travel inside the cursor). Every answer
says how full the shop's bucket is (``X-Shopify-Shop-Api-Call-Limit: 32/40``); we slow down
before it overflows instead of collecting 429s (a 429 still waits its ``Retry-After``). One
catalog record per variant: stock is keyed by the variant's ``inventory_item_id``, kept as
``stock_ref`` so inventory levels can be joined to products in the warehouse. Potency, effects
and flavours come from tag conventions (``THC: 22.5%``, ``Effect: Happy``, ``Flavor: Berry``).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field

from resources.connection import ConnectionSpec, page_size_field
from resources.http import HttpSession
from resources.pos.base import (
    CUSTOMERS, INVENTORY, PRODUCTS, BasePosClient, PosCustomer, PosInventoryItem, PosProduct, Potency, Wire,
    iso_z, parse, translate, utc,
    PosCredentials, PosOptions,
)
from warehouse.syncs import Rejected
from resources.pos.base import POS_POLICY, numeric
from resources.provider import DemoAccount, PosProvider, PosWebhook

if TYPE_CHECKING:
    from resources.pos_orders import OrderDraft

SYSTEM = "shopify"
API_VERSION = "2024-10"
_POTENCY_TAG = re.compile(r"^(THC|CBD|CBN|CBG|THCA|CBDA)\s*:\s*([\d.]+)(?:\s*-\s*([\d.]+))?\s*(%|mg)$", re.I)


class ShopBucket:
    """Our view of one shop's leaky bucket, shared by every client of that shop in the process."""

    _buckets: dict[str, "ShopBucket"] = {}
    _guard = threading.Lock()

    def __init__(self, leak_rate: float, headroom: int) -> None:
        self.leak_rate, self.headroom = leak_rate, headroom
        self.level, self.size, self.seen_at = 0, 40, time.monotonic()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    @classmethod
    def for_shop(cls, key: str, leak_rate: float, headroom: int) -> "ShopBucket":
        with cls._guard:
            return cls._buckets.setdefault(key, cls(leak_rate, headroom))

    def before_call(self) -> None:
        """Wait just long enough that this call leaves ``headroom`` free in the bucket."""
        with self._lock:
            drained = (time.monotonic() - self.seen_at) * self.leak_rate
            excess = self.level - drained - (self.size - self.headroom) + 1
            wait = excess / self.leak_rate if excess > 0 else 0.0
            self.waited_s += wait
        if wait:
            time.sleep(wait)

    def observe(self, header: str | None) -> None:
        if not header or "/" not in header:
            return
        used, size = header.split("/", 1)
        with self._lock:
            self.level, self.size, self.seen_at = int(used), int(size), time.monotonic()


class ShopifyVariant(Wire):
    id: int
    title: str | None = None
    price: Decimal | None = None
    sku: str | None = None
    weight: Decimal | None = None
    weight_unit: str | None = None
    inventory_item_id: int | None = None


class ShopifyProduct(Wire):
    id: int
    title: str = Field(min_length=1)
    vendor: str | None = None
    product_type: str | None = None
    status: str = "active"
    tags: str = ""
    updated_at: dt.datetime | None = None
    variants: list[ShopifyVariant] = Field(min_length=1)


class ShopifyLevel(Wire):
    inventory_item_id: int
    location_id: int
    available: Decimal | None = None
    updated_at: dt.datetime | None = None


class ShopifyAddress(Wire):
    address1: str | None = None
    city: str | None = None
    province_code: str | None = None
    country_code: str | None = None
    zip: str | None = None


class ShopifyCustomer(Wire):
    id: int
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    state: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    default_address: ShopifyAddress | None = None
    accepts_marketing: bool | None = None


def split_tags(tags: str) -> tuple[list[Potency], list[str], list[str], list[str]]:
    """(potency, effects, flavours, other tags) from Shopify's comma-separated tag string."""
    potency, effects, flavors, other = [], [], [], []
    for tag in (t.strip() for t in tags.split(",")):
        if not tag:
            continue
        if m := _POTENCY_TAG.match(tag):
            low, high = Decimal(m[2]), Decimal(m[3] or m[2])
            potency.append(Potency(name=m[1].upper(), low=low, high=high, unit=m[4].lower()))
        elif ":" in tag and tag.split(":", 1)[0].strip().lower() in ("effect", "effects"):
            effects.append(tag.split(":", 1)[1].strip())
        elif ":" in tag and tag.split(":", 1)[0].strip().lower() in ("flavor", "flavour", "flavors", "flavours"):
            flavors.append(tag.split(":", 1)[1].strip())
        else:
            other.append(tag)
    return potency, effects, flavors, other


def product_records(p: ShopifyProduct) -> list[PosProduct]:
    potency, effects, flavors, other = split_tags(p.tags)
    return [PosProduct(
        source=SYSTEM, source_id=str(v.id), sku=v.sku, name=p.title, brand=p.vendor,
        category_labels=[p.product_type] if p.product_type else [], effects=effects, flavors=flavors, tags=other,
        potency=potency, size=v.title if v.title and v.title != "Default Title" else None,
        net_amount=v.weight, net_unit=v.weight_unit, price=v.price, active=p.status == "active",
        updated_at=utc(p.updated_at), stock_ref=str(v.inventory_item_id) if v.inventory_item_id else None,
        attributes={"shopify_product_id": p.id},
    ) for v in p.variants]


def customer_record(c: ShopifyCustomer) -> PosCustomer:
    a = c.default_address or ShopifyAddress()
    return PosCustomer(
        source=SYSTEM, source_id=str(c.id), first_name=c.first_name, last_name=c.last_name, email=c.email,
        phone=c.phone, street=a.address1, city=a.city, state=a.province_code, postal_code=a.zip, country=a.country_code,
        marketing_opt_in=c.accepts_marketing, status=c.state, created_at=utc(c.created_at), updated_at=utc(c.updated_at),
    )


class ShopifyClient(BasePosClient):
    system = SYSTEM
    supports_incremental = frozenset({PRODUCTS, INVENTORY, CUSTOMERS})

    def __init__(self, session: HttpSession, bucket: ShopBucket, options: dict | None = None) -> None:
        super().__init__(session, options)
        self.bucket = bucket
        self.page_size = min(int(self.options.get("page_size", 250)), 250)

    def get(self, url: str, params: dict[str, Any] | None = None):
        self.bucket.before_call()
        response = self.session.request("GET", url, params=params)
        self.bucket.observe(response.headers.get("X-Shopify-Shop-Api-Call-Limit"))
        return response

    def pages(self, resource: str, key: str, params: dict[str, Any]) -> Iterator[dict]:
        """Every record of ``resource``; the next page is the ``Link`` URL, used verbatim."""
        url: str | None = f"/{resource}.json"
        query: dict[str, Any] | None = {**params, "limit": self.page_size}
        while url:
            response = self.get(url, query)
            yield from response.json().get(key) or []
            url, query = response.links.get("next", {}).get("url"), None

    @staticmethod
    def _since(updated_since: dt.datetime | None) -> dict[str, str]:
        return {"updated_at_min": iso_z(updated_since)} if updated_since else {}

    def iter_products(self, updated_since: dt.datetime | None = None) -> Iterator[PosProduct | Rejected]:
        for raw in self.pages("products", "products", self._since(updated_since)):
            out = translate(raw, ShopifyProduct, "id", product_records)
            yield from ([out] if isinstance(out, Rejected) else out)

    def location_ids(self) -> list[str]:
        chosen = self.options.get("location_ids")
        if chosen:
            return [str(x) for x in chosen]
        return [str(loc["id"]) for loc in self.get("/locations.json").json()["locations"] if loc.get("active", True)]

    def iter_inventory(self, updated_since: dt.datetime | None = None) -> Iterator[PosInventoryItem | Rejected]:
        params = {"location_ids": ",".join(self.location_ids()), **self._since(updated_since)}
        for raw in self.pages("inventory_levels", "inventory_levels", params):
            level = parse(ShopifyLevel, raw, "inventory_item_id")
            if isinstance(level, Rejected):
                yield level
                continue
            yield PosInventoryItem(
                source=SYSTEM, product_id=str(level.inventory_item_id), by_stock_ref=True,
                location_id=str(level.location_id), quantity=level.available or Decimal(0), quantity_unit="each",
                updated_at=utc(level.updated_at),
            )

    def iter_customers(self, updated_since: dt.datetime | None = None) -> Iterator[PosCustomer | Rejected]:
        for raw in self.pages("customers", "customers", self._since(updated_since)):
            yield translate(raw, ShopifyCustomer, "id", customer_record)


def shopify_client(base_url: str, credentials: dict, options: dict, **session_kwargs) -> ShopifyClient:
    version = options.get("api_version", API_VERSION)
    session = HttpSession(SYSTEM, f"{base_url.rstrip('/')}/admin/api/{version}",
                          headers={"X-Shopify-Access-Token": credentials["access_token"]}, **session_kwargs)
    bucket = ShopBucket.for_shop(base_url, float(options.get("leak_rate", 2.0)), int(options.get("bucket_headroom", 4)))
    return ShopifyClient(session, bucket, options)


class ShopifyCredentials(PosCredentials):
    access_token: str
    api_secret: str | None = None  # the app secret: signs webhooks without a webhook_secret
    client_secret: str | None = None


class ShopifyOptions(PosOptions):
    page_size: int | None = page_size_field(250)  # Shopify's largest `limit`
    api_version: str | None = None
    leak_rate: float | None = Field(None, gt=0)
    bucket_headroom: int | None = Field(None, ge=0)
    location_ids: list[str] | None = None
    shop: str | None = None  # the shop's myshopify name, webhooks carry it


CONNECTION = ConnectionSpec(SYSTEM, ShopifyCredentials, ShopifyOptions)


def order_request(client: ShopifyClient, d: OrderDraft):
    """An Admin order for the variants; Shopify does not deduplicate it. The bucket paces it."""
    order = {"line_items": [{"variant_id": numeric(x.product_id, "variant id"), "quantity": x.quantity}
                            for x in d.lines],
             "customer": {"id": numeric(d.customer_ref, "customer id")}, "financial_status": "pending",
             # the POS refuses what it cannot fill and moves its own stock (which fires its webhook)
             "inventory_behaviour": "decrement_obeying_policy", "note": d.note, "send_receipt": False,
             "tags": f"storehouse, ref:{d.order_ref}"}

    def send() -> Any:
        client.bucket.before_call()
        response = client.session.request("POST", "/orders.json", json={"order": order})
        client.bucket.observe(response.headers.get("X-Shopify-Shop-Api-Call-Limit"))
        return response.json()

    return {"order": order}, send, lambda r: (str(r["order"]["id"]), str(r["order"].get("financial_status") or "pending"))


PROVIDER = PosProvider(
    system=SYSTEM, connection=CONNECTION, client=shopify_client, policy=POS_POLICY,
    wire=(ShopifyProduct, ShopifyLevel, ShopifyCustomer),
    rate_limit_scope=(
        "a leaky bucket per shop, counted by Shopify across every caller. Our ShopBucket is one per shop per "
        "process, but it is refilled from the X-Shopify-Shop-Api-Call-Limit header of every answer, which "
        "counts every caller's calls; so each process slows down for the others' use too (a 429 waits its "
        "Retry-After)."),
    order_format=order_request, self_deduplicating=False,
    webhook=PosWebhook(secret_header="x-shopify-hmac-sha256", signed=True,
                       inventory_topics=frozenset({"inventory_levels/update", "products/update", "products/create",
                                                   "products/delete"}),
                       account_keys=("shop",)),
    sandbox="shopify",
    demo=DemoAccount("lakeside-shopify", "Lakeside Goods (Shopify)", "/shopify/storehouse-demo",
                     {"access_token": "shpat_storehouse_demo_token"}),
)
