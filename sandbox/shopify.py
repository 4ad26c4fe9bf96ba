"""Shopify Admin REST fake (`/shopify/{shop}/admin/api/{version}/...`).

* ``X-Shopify-Access-Token``; a wrong one is 401 ``{"errors": "[API] Invalid API key or access
  token (unrecognized login or wrong password)"}``; unknown shop or malformed version is 404.
* ``products.json`` (``ids, since_id, status, updated_at_min/max``), ``inventory_levels.json``
  (``inventory_item_ids`` (<= 50) or ``location_ids`` required, else 422), ``locations.json``,
  ``customers.json`` (``updated_at_min``), ``orders.json`` (``status=open|closed|cancelled|any``,
  ``updated_at_min``) and ``POST orders.json`` (``inventory_behaviour`` bypass by default, or
  ``decrement_ignoring_policy`` / ``decrement_obeying_policy``).
* Cursor paging by id: ``limit`` (default 50, max 250) and an opaque ``page_info`` in the
  ``Link`` header (``rel="previous"``/``rel="next"``), absent when there is a single page. With
  ``page_info`` only ``limit``/``fields`` may be sent (filters travel in the cursor); a
  tampered cursor is 400 (``sandbox.shopify_query``).
* Leaky bucket per shop (40, leaking 2/s): every answer carries
  ``X-Shopify-Shop-Api-Call-Limit: n/40``; a full bucket answers 429, ``Retry-After: 2.0``.
* Golden product: title "Blue Dream", variant "3.5g" at "45.00", vendor "Cresco", product_type
  "Flower", tags "CBD: 0.1%, Effect: ..., Hybrid, Sativa-dominant, THC: 22.5%", weight 0.125 oz
  (``grams`` 4; trade fractions of an ounce are rendered in oz, other weights in g). Times are
  shop-local (``-05:00``).
* Webhooks: registered per shop with the app secret through the control router; stock changes
  send ``inventory_levels/update`` and ``products/update``, archive ``products/update``, delete
  ``products/delete``, orders ``orders/create``; headers ``X-Shopify-Topic``,
  ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with the secret),
  ``X-Shopify-Shop-Domain``, ``X-Shopify-Webhook-Id``, ``X-Shopify-API-Version``; delivered from
  a background thread (5 s timeout), retried up to 4 times on non-2xx.

Control (``/_sandbox/shopify``): ``POST /shops`` {shop, access_token, api_secret, products,
customers}; ``GET /shops``; ``PUT /limits`` {bucket_size, leak_rate, retry_after, max_limit};
``POST /shops/{shop}/products/{product_id}/stock`` {quantity}; ``DELETE
/shops/{shop}/products/{product_id}?hard=false``; ``POST /shops/{shop}/webhooks`` {address, secret,
topics}; ``GET /shops/{shop}/webhooks``; ``GET /shops/{shop}/orders``; ``GET /webhooks``.

Demo shops after reset: ``storehouse-demo`` (token ``shpat_storehouse_demo_token``, app secret
``shpss_storehouse_demo_secret``, 120 products, 60 customers) and ``storehouse-outlet`` (token
``shpat_storehouse_outlet_token``, secret ``shpss_storehouse_outlet_secret``, 30 products).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from sandbox.pos_catalog import Listing, Store, iso
from sandbox.pos_control import PosControl
from sandbox.pos_http import LeakyBucket, Reject, RejectRoute, WebhookLog
from sandbox.shopify_query import page_of, read_page, updated_bounds

NAME = "shopify"
API = "/{shop}/admin/api/{version}"
TYPE = {"flower": "Flower", "preroll": "Pre-Roll", "vape": "Vape", "concentrate": "Concentrate", "edible": "Edible",
        "tincture": "Tincture", "topical": "Topical", "beverage": "Beverage", "accessory": "Accessory"}
OUNCES = {3.5: 0.125, 7.0: 0.25, 14.0: 0.5, 28.0: 1.0}
TOPICS = ["inventory_levels/update", "products/update", "products/delete", "orders/create"]
DEFAULT_LIMITS = {"bucket_size": 40, "leak_rate": 2.0, "retry_after": 2.0, "max_limit": 250}

router = APIRouter(route_class=RejectRoute)
control = APIRouter()
LIMITS = dict(DEFAULT_LIMITS)
BUCKET = LeakyBucket()
WEBHOOKS = WebhookLog(attempts=4, timeout=5.0)
SHOPS: dict[str, "Shop"] = {}


class ShopSpec(BaseModel):
    shop: str
    access_token: str
    api_secret: str = "shpss_sandbox_secret"
    products: int = Field(120, ge=1, le=1_000_000)
    customers: int = Field(60, ge=0, le=1_000_000)


class Shop:
    def __init__(self, spec: ShopSpec) -> None:
        self.spec = spec
        self.store = Store(f"shopify:{spec.shop}", spec.products, spec.customers)
        n = int(hashlib.sha1(spec.shop.encode()).hexdigest()[:6], 16) % 100_000
        self.product_base, self.variant_base = 7_000_000_000_000 + n * 10_000_000, 4_000_000_000_000 + n * 10_000_000
        self.item_base, self.customer_base = 4_500_000_000_000 + n * 10_000_000, 6_000_000_000_000 + n * 10_000_000
        self.location_id = 60_000_000_000 + n
        self.orders: list[dict] = []
        self.webhooks: list[dict] = []


def _ts(ms: int) -> str:
    return iso(ms, -5, millis=False, zulu=False)


def _reject(status: int, errors, shop: Shop | None = None, level: int | None = None, **headers: str) -> Reject:
    if shop is not None:
        headers["X-Shopify-Shop-Api-Call-Limit"] = f"{level}/{int(LIMITS['bucket_size'])}"
    return Reject(JSONResponse({"errors": errors}, status, headers=headers))


def _auth(shop: str, version: str, request: Request, response: Response) -> Shop:
    s = SHOPS.get(shop)
    if s is None or not re.fullmatch(r"\d{4}-(01|04|07|10)|unstable", version):
        raise _reject(404, "Not Found")
    if request.headers.get("x-shopify-access-token") != s.spec.access_token:
        raise _reject(401, "[API] Invalid API key or access token (unrecognized login or wrong password)")
    ok, level = BUCKET.hit(shop, int(LIMITS["bucket_size"]), float(LIMITS["leak_rate"]))
    if not ok:
        message = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
        raise _reject(429, message, s, level, **{"Retry-After": f"{LIMITS['retry_after']:.1f}"})
    response.headers["X-Shopify-Shop-Api-Call-Limit"] = f"{level}/{int(LIMITS['bucket_size'])}"
    response.headers["X-Shopify-API-Version"] = version
    return s


def _pct(rng: tuple[float, float], unit: str) -> str:
    return f"{rng[0]:g}{unit}" if rng[0] == rng[1] else f"{rng[0]:g}-{rng[1]:g}{unit}"


def render(shop: Shop, item: Listing) -> dict:
    p, pid = item.p, shop.product_base + item.p.index
    vid, iid = shop.variant_base + p.index, shop.item_base + p.index
    grams = p.weight if p.weight_unit in ("g", "ml") else 0.0
    weight, unit = (OUNCES[grams], "oz") if grams in OUNCES else (grams, "g")
    tags = [f"Effect: {e}" for e in p.effects] + [f"Flavor: {f}" for f in p.flavors]
    if p.strain_type:
        tags.append(p.strain_type.upper() if p.strain_type == "cbd" else p.strain_type.title())
    if p.strain_lean:
        tags.append(f"{p.strain_lean.title()}-dominant")
    tags += [f"{name}: {_pct(rng, p.potency_unit)}" for name, rng in (("THC", p.thc), ("CBD", p.cbd)) if rng]
    created = _ts(item.updated_ms - 86_400_000)
    return {
        "id": pid, "title": p.name, "body_html": f"<p>{p.description}</p>", "vendor": p.brand,
        "product_type": TYPE[p.category],
        "created_at": created, "handle": re.sub(r"[^a-z0-9]+", "-", f"{p.brand} {p.name} {p.size} {p.index}".lower()),
        "updated_at": _ts(item.updated_ms), "published_at": created, "template_suffix": None,
        "status": "active" if item.active else "archived", "published_scope": "web", "tags": ", ".join(sorted(tags)),
        "admin_graphql_api_id": f"gid://shopify/Product/{pid}",
        "variants": [{"id": vid, "product_id": pid, "title": p.size, "price": f"{p.price_cents / 100:.2f}",
                      "sku": p.sku, "position": 1, "inventory_policy": "deny", "compare_at_price": None,
                      "fulfillment_service": "manual",
                      "inventory_management": "shopify", "option1": p.size, "option2": None, "option3": None,
                      "created_at": created, "updated_at": _ts(item.updated_ms), "taxable": True, "barcode": None,
                      "grams": round(grams), "weight": weight, "weight_unit": unit, "inventory_item_id": iid,
                      "inventory_quantity": item.quantity, "old_inventory_quantity": item.quantity,
                      "requires_shipping": True, "admin_graphql_api_id": f"gid://shopify/ProductVariant/{vid}"}],
        "options": [{"id": pid + 1, "product_id": pid, "name": "Size", "position": 1, "values": [p.size]}],
        "images": [], "image": None,
    }


def _level(shop: Shop, item: Listing) -> dict:
    iid = shop.item_base + item.p.index
    return {"inventory_item_id": iid, "location_id": shop.location_id, "available": item.quantity,
            "updated_at": _ts(item.updated_ms),
            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{shop.location_id}?inventory_item_id={iid}"}


@router.get(API + "/products.json")
def products(shop: str, version: str, request: Request, response: Response) -> dict:
    s = _auth(shop, version, request, response)
    filters = ("ids", "since_id", "status", "updated_at_min", "updated_at_max")
    limit, f, cursor = read_page(request, s.spec.shop, filters, LIMITS["max_limit"])
    lo, hi = updated_bounds(f)
    indices = s.store.indices() if lo is None and hi is None else sorted(s.store.updated_since((lo or 0) - 1, hi))
    wanted = {int(x) - s.product_base for x in f["ids"].split(",") if x.strip().isdigit()} if "ids" in f else None
    ids = []
    for i in indices:
        status = "active" if s.store.listing(i).active else "archived"
        if (wanted is None or i in wanted) and f.get("status", status) == status:
            ids.append(s.product_base + i)
    ids = [x for x in ids if x > int(f.get("since_id", 0) or 0)]
    page = page_of(request, response, s.spec.shop, ids, limit, f, cursor)
    return {"products": [render(s, s.store.listing(x - s.product_base)) for x in page]}


@router.get(API + "/inventory_levels.json")
def inventory_levels(shop: str, version: str, request: Request, response: Response) -> dict:
    s = _auth(shop, version, request, response)
    filters = ("inventory_item_ids", "location_ids", "updated_at_min")
    limit, f, cursor = read_page(request, s.spec.shop, filters, LIMITS["max_limit"])
    if "inventory_item_ids" not in f and "location_ids" not in f:
        raise _reject(422, {"base": ["inventory_item_ids or location_ids must be present"]})
    items = [int(x) - s.item_base for x in f.get("inventory_item_ids", "").split(",") if x.strip().isdigit()]
    if len(items) > 50:
        raise _reject(422, {"inventory_item_ids": ["must be 50 or fewer"]})
    locations = [int(x) for x in f.get("location_ids", "").split(",") if x.strip().isdigit()]
    if "location_ids" in f and s.location_id not in locations:
        return {"inventory_levels": []}
    lo, _ = updated_bounds({"updated_at_min": f["updated_at_min"]} if "updated_at_min" in f else {})
    pool = s.store.indices() if lo is None else sorted(s.store.updated_since(lo - 1))
    wanted = set(items)
    chosen = [s.item_base + i for i in pool if not wanted or i in wanted]
    return {"inventory_levels": [_level(s, s.store.listing(x - s.item_base))
                                 for x in page_of(request, response, s.spec.shop, chosen, limit, f, cursor)]}


@router.get(API + "/locations.json")
def locations(shop: str, version: str, request: Request, response: Response) -> dict:
    s = _auth(shop, version, request, response)
    return {"locations": [{"id": s.location_id, "name": "Main Store", "address1": "1 Main St", "city": "Denver",
                           "province": "Colorado", "country": "US", "zip": "80202", "active": True,
                           "admin_graphql_api_id": f"gid://shopify/Location/{s.location_id}"}]}


@router.get(API + "/customers.json")
def customers(shop: str, version: str, request: Request, response: Response) -> dict:
    s = _auth(shop, version, request, response)
    filters = ("ids", "since_id", "updated_at_min", "updated_at_max")
    limit, f, cursor = read_page(request, s.spec.shop, filters, LIMITS["max_limit"])
    lo, hi = updated_bounds(f)
    people = {s.customer_base + c.index: c for c in s.store.customers()
              if (lo is None or c.updated_ms >= lo) and (hi is None or c.updated_ms <= hi)}
    out = []
    after = int(f.get("since_id", 0) or 0)
    for cid in page_of(request, response, s.spec.shop, [x for x in people if x > after], limit, f, cursor):
        c = people[cid]
        address = {"id": cid + 1, "customer_id": cid, "first_name": c.first_name, "last_name": c.last_name,
                   "address1": c.street, "city": c.city, "province_code": c.state, "country_code": "US",
                   "zip": c.postal_code, "phone": c.phone, "default": True}
        out.append({"id": cid, "email": c.email, "created_at": _ts(c.created_ms), "updated_at": _ts(c.updated_ms),
                    "first_name": c.first_name, "last_name": c.last_name, "orders_count": 0, "state": "enabled",
                    "total_spent": "0.00", "verified_email": True, "phone": f"+1{c.phone}", "tags": "",
                    "currency": "USD", "addresses": [address], "default_address": address,
                    "admin_graphql_api_id": f"gid://shopify/Customer/{cid}"})
    return {"customers": out}


@router.get(API + "/orders.json")
def list_orders(shop: str, version: str, request: Request, response: Response) -> dict:
    s = _auth(shop, version, request, response)
    filters = ("status", "updated_at_min", "updated_at_max")
    limit, f, cursor = read_page(request, s.spec.shop, filters, LIMITS["max_limit"])
    lo, hi = updated_bounds(f)
    status = f.get("status", "open")
    state = {"open": lambda o: not o["closed_at"] and not o["cancelled_at"], "closed": lambda o: o["closed_at"],
             "cancelled": lambda o: o["cancelled_at"], "any": lambda o: True}.get(status, lambda o: False)
    by_id = {o["id"]: o for o in s.orders if state(o)}
    by_id = {k: o for k, o in by_id.items() if (lo is None or o["_ms"] >= lo) and (hi is None or o["_ms"] <= hi)}
    page = page_of(request, response, s.spec.shop, sorted(by_id), limit, f, cursor)
    return {"orders": [{k: v for k, v in by_id[x].items() if k != "_ms"} for x in page]}


@router.post(API + "/orders.json", status_code=201)
async def create_order(shop: str, version: str, request: Request, response: Response) -> dict:
    s = _auth(shop, version, request, response)
    try:
        order = json.loads(await request.body())["order"]
        lines_in = list(order["line_items"])
    except (ValueError, KeyError, TypeError):
        raise _reject(400, {"order": "Required parameter missing or invalid"})
    behaviour = order.get("inventory_behaviour", "bypass")
    lines, total, changed = [], 0, []
    for n, line in enumerate(lines_in):
        i = int(line.get("variant_id") or 0) - s.variant_base
        if not s.store.exists(i) or s.store.listing(i).deleted:
            raise _reject(422, {"line_items": [f"variant {line.get('variant_id')} not found"]})
        item, qty = s.store.listing(i), int(line.get("quantity", 1))
        if behaviour == "decrement_obeying_policy" and qty > item.quantity:
            raise _reject(422, {"line_items": [f"{item.p.name} is out of stock"]})
        if behaviour.startswith("decrement"):
            changed.append(s.store.set_quantity(i, item.quantity - qty))
        total += item.p.price_cents * qty
        lines.append({"id": 9_000_000_000 + len(s.orders) * 100 + n, "variant_id": s.variant_base + i,
                      "product_id": s.product_base + i, "title": item.p.name, "variant_title": item.p.size,
                      "sku": item.p.sku, "vendor": item.p.brand, "quantity": qty,
                      "price": f"{item.p.price_cents / 100:.2f}"})
    now = int(time.time() * 1000)
    number = 1001 + len(s.orders)
    oid = 5_000_000_000_000 + number
    money = f"{total / 100:.2f}"
    record = {"id": oid, "admin_graphql_api_id": f"gid://shopify/Order/{oid}", "name": f"#{number}",
              "order_number": number, "email": order.get("email") or (order.get("customer") or {}).get("email"),
              "created_at": _ts(now), "updated_at": _ts(now), "processed_at": _ts(now),
              "financial_status": order.get("financial_status", "paid"), "fulfillment_status": None,
              "currency": order.get("currency", "USD"), "subtotal_price": money, "total_price": money,
              "total_tax": "0.00", "line_items": lines, "customer": order.get("customer"), "note": order.get("note"),
              "tags": order.get("tags", ""), "cancelled_at": None, "closed_at": None, "_ms": now}
    s.orders.append(record)
    public = {k: v for k, v in record.items() if k != "_ms"}
    for item in changed:
        _emit(s, "inventory_levels/update", _level(s, item))
    _emit(s, "orders/create", public)
    return {"order": public}


# -- webhooks and control -----------------------------------------------------------
def _emit(shop: Shop, topic: str, payload: dict) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    for hook in shop.webhooks:
        if topic not in hook["topics"]:
            continue
        digest = base64.b64encode(hmac.new(hook["secret"].encode(), body, hashlib.sha256).digest()).decode()
        webhook_id = str(uuid.uuid4())
        headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": digest,
                   "X-Shopify-Shop-Domain": f"{shop.spec.shop}.myshopify.com", "X-Shopify-Webhook-Id": webhook_id,
                   "X-Shopify-API-Version": "2024-10", "X-Shopify-Triggered-At": iso(int(time.time() * 1000))}
        WEBHOOKS.send(hook["address"], body, headers, topic=topic, webhook_id=webhook_id, shop=shop.spec.shop)


class Hook(BaseModel):
    address: str
    secret: str | None = None
    topics: list[str] = TOPICS


def _stock_hooks(s: Shop, item: Listing) -> None:
    _emit(s, "inventory_levels/update", _level(s, item))
    _emit(s, "products/update", render(s, item))


def _delete_hooks(s: Shop, item: Listing) -> None:
    if item.deleted:
        _emit(s, "products/delete", {"id": s.product_base + item.p.index})
    else:
        _emit(s, "products/update", render(s, item))


def _deleted(s: Shop, item: Listing, product_id: int, hard: bool) -> dict:
    return {"id": product_id, "deleted": True} if hard else render(s, item)


CONTROL = PosControl(control, SHOPS, Shop, lambda spec: spec.shop, noun="shop", types={"product_id": int},
                     limits=LIMITS, defaults=DEFAULT_LIMITS, limiter=BUCKET, webhooks=WEBHOOKS)
CONTROL.account_collection("/shops", ShopSpec, listed=lambda s: dict(s.spec.model_dump(), location_id=s.location_id))
CONTROL.limits_route(on_change=BUCKET.clear)
CONTROL.product_routes("/shops/{shop}/products/{product_id}",
                       CONTROL.in_account(offset=lambda s: s.product_base, live=True), render, notify=_stock_hooks,
                       notify_delete=_delete_hooks, deleted=_deleted)


@control.post("/shops/{shop}/webhooks", status_code=201)
def register_webhook(shop: str, hook: Hook) -> dict:
    s = CONTROL.account(shop)
    entry = dict(hook.model_dump(), secret=hook.secret or s.spec.api_secret)
    s.webhooks.append(entry)
    return entry


@control.get("/shops/{shop}/webhooks")
def list_webhooks(shop: str) -> list[dict]:
    return CONTROL.account(shop).webhooks


CONTROL.account_routes("/shops/{shop}", orders=lambda s: [{k: v for k, v in o.items() if k != "_ms"} for o in s.orders],
                       orders_name="orders_received")
CONTROL.deliveries_route()


def reset() -> None:
    CONTROL.reset(ShopSpec(shop="storehouse-demo", access_token="shpat_storehouse_demo_token",
                           api_secret="shpss_storehouse_demo_secret"),
                  ShopSpec(shop="storehouse-outlet", access_token="shpat_storehouse_outlet_token",
                           api_secret="shpss_storehouse_outlet_secret", products=30, customers=10))


reset()
