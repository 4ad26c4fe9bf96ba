"""Blaze partner API fake (`/blaze/api/v1/partner/...`), after apidocs.blaze.me.

* Headers ``x-api-key: <partner key>`` (legacy ``partner_key`` accepted) and ``Authorization:
  <developer key>`` raw, no "Bearer". Unknown partner key: 403 ``{"message": "Forbidden"}``
  (the API gateway); unknown developer key: 401; a developer key lacking the permission an
  endpoint needs (``products``, ``members``, ``orders``): 403.
* ``GET /products?start=&limit=`` -> ``{"values", "skip", "limit", "total"}``; ``limit`` is
  clamped to 500 silently. ``GET /products/modified?startDate=&endDate=`` (epoch ms, inclusive)
  returns changes oldest first, soft-deleted products included with ``deleted: true``.
  ``GET /products/{id}``, ``GET /products/sku/{sku}``.
* Products: ``name`` "Blue Dream (3.5g)", ``brandName``, ``flowerType`` ("Indica", "Sativa",
  "Hybrid", "Indica Dominant", "Sativa Dominant", "CBD"), ``unitPrice`` dollars, ``weightPerUnit``
  (HALF_GRAM, FULL_GRAM, EIGHTH, QUARTER, HALF, OUNCE, CUSTOM_GRAMS + ``customWeight``, EACH),
  ``thc``/``cbd`` numbers in % for smokables, and for mg products in ``potencyAmount``
  (top-level ``thc`` 0), ``modified``/``created`` epoch ms.
* ``GET /members?start=&limit=&startDate=&endDate=`` (modified window, epoch ms) -> same envelope.
* ``POST /orders`` {memberId, items: [{productId, quantity}]} -> 201 order (``status: Placed``).
* 10,000 calls per 5 minutes per partner key (Blaze's partner terms) -> 429
  ``{"message": "Too Many Requests"}``, no ``Retry-After``.
* Webhooks (modelled, unsigned): stock changes POST ``{"type": "PRODUCT_UPDATED", "shopId",
  "payload": <product>}``; a registered ``secret`` goes in ``Authorization``.

Control (``/_sandbox/blaze``): ``POST /shops`` {developer_key, shop_id, name, permissions,
products, customers}; ``GET /shops``; ``PUT /limits`` {calls, window_s, max_limit}; ``POST
/shops/{shop_id}/products/{product_id}/stock`` {quantity}; ``DELETE
/shops/{shop_id}/products/{product_id}?hard=false`` (hard = ``deleted: true``); ``PUT
/shops/{shop_id}/webhook`` {url, secret}; ``GET /shops/{shop_id}/orders``; ``GET /webhooks``.

Demo after reset: partner key ``blaze-demo-partner``; developer keys ``blaze-demo-dev`` (shop
``5f0c0ffee0000000000000a1``, all permissions, 200 products, 40 members) and
``blaze-demo-dev-noperm`` (shop ``...a2``, products only, 30 products).
"""

from __future__ import annotations

import calendar
import json
import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from sandbox.pos_catalog import Listing, Store, hex_id, index_of
from sandbox.pos_control import PosControl
from sandbox.pos_http import Reject, RejectRoute, WebhookLog, Window

NAME = "blaze"
PARTNER_KEYS = {"blaze-demo-partner"}
CATEGORY = {"flower": "Flowers", "preroll": "Preroll", "vape": "Vape Pens", "concentrate": "Wax", "edible": "Edibles",
            "tincture": "Tinctures", "topical": "Topicals", "beverage": "Beverages", "accessory": "Accessories"}
GRAMS = {0.5: "HALF_GRAM", 1.0: "FULL_GRAM", 3.5: "EIGHTH", 7.0: "QUARTER", 14.0: "HALF", 28.0: "OUNCE"}
DEFAULT_LIMITS = {"calls": 10_000, "window_s": 300, "max_limit": 500}

router = APIRouter(route_class=RejectRoute)
control = APIRouter()
LIMITS = dict(DEFAULT_LIMITS)
WINDOW = Window()
WEBHOOKS = WebhookLog()
SHOPS: dict[str, "Shop"] = {}


class ShopSpec(BaseModel):
    developer_key: str
    shop_id: str
    name: str = "Sandbox Shop"
    permissions: list[str] = ["products", "members", "orders"]
    products: int = Field(200, ge=1, le=100_000)
    customers: int = Field(40, ge=0, le=1_000_000)


class Shop:
    def __init__(self, spec: ShopSpec) -> None:
        self.spec = spec
        self.store = Store(f"blaze:{spec.shop_id}", spec.products, spec.customers)
        self.orders: list[dict] = []
        self.webhook: dict | None = None


def _err(status: int, message: str, field: str | None = None) -> Reject:
    body = {"message": message}
    if field is not None:
        body = {"field": field, "message": message, "errorType": "BlazeAuthException"}
    return Reject(JSONResponse(body, status))


def _auth(request: Request, permission: str) -> Shop:
    partner = request.headers.get("x-api-key") or request.headers.get("partner_key")
    if partner not in PARTNER_KEYS:
        raise _err(403, "Forbidden")
    if WINDOW.hit(partner, int(LIMITS["calls"]), float(LIMITS["window_s"])):
        raise _err(429, "Too Many Requests")
    shop = SHOPS.get(request.headers.get("authorization", ""))
    if shop is None:
        raise _err(401, "Invalid developer key.", "Authorization")
    if permission not in shop.spec.permissions:
        raise _err(403, f"Developer key does not have the '{permission}' permission.", "Authorization")
    return shop


def _window(request: Request) -> tuple[int, int]:
    q = request.query_params
    try:
        start, limit = int(q.get("start", q.get("skip", 0))), int(q.get("limit", 100))
    except ValueError:
        raise _err(400, "start and limit must be integers")
    return max(0, start), max(1, min(limit, int(LIMITS["max_limit"])))


def _page(values: list, start: int, limit: int, total: int) -> dict:
    return {"values": values, "skip": start, "limit": limit, "total": total}


def render(shop: Shop, item: Listing) -> dict:
    p = item.p
    mg = p.potency_unit == "mg"
    weight_per_unit = GRAMS.get(p.weight, "CUSTOM_GRAMS") if p.weight_unit == "g" else "EACH"
    flower = {"hybrid": f"{(p.strain_lean or '').title()} Dominant" if p.strain_lean else "Hybrid", "cbd": "CBD"}
    created = item.updated_ms - 86_400_000
    return {
        "id": hex_id(shop.store.seed, p.index), "created": created, "modified": item.updated_ms,
        "deleted": item.deleted,
        "companyId": hex_id("blaze:company", 1), "shopId": shop.spec.shop_id, "sku": p.sku,
        "name": f"{p.name} ({p.size})", "description": p.description, "active": item.active,
        "brandId": hex_id("blaze:brand:" + p.brand, 1), "brandName": p.brand,
        "category": {"id": hex_id("blaze:cat", list(CATEGORY).index(p.category)), "name": CATEGORY[p.category],
                     "cannabis": p.category != "accessory", "unitType": "units"},
        "flowerType": flower.get(p.strain_type or "", (p.strain_type or "").title() or None),
        "unitPrice": p.price_cents / 100, "weightPerUnit": weight_per_unit,
        "customWeight": p.weight if weight_per_unit == "CUSTOM_GRAMS" else None,
        "customGramType": "GRAM" if weight_per_unit == "CUSTOM_GRAMS" else None,
        "thc": 0.0 if mg or not p.thc else p.thc[1], "cbd": 0.0 if mg or not p.cbd else p.cbd[1],
        "thca": 0.0, "cbda": 0.0, "cbn": 0.0, "cbg": 0.0,
        "totalCannabinoids": 0.0 if mg else round((p.thc[1] if p.thc else 0) + (p.cbd[1] if p.cbd else 0), 2),
        "potencyAmount": {"thc": p.thc[1] if mg and p.thc else 0.0, "cbd": p.cbd[1] if mg and p.cbd else 0.0,
                          "cbn": 0.0, "thca": 0.0, "cbda": 0.0},
        "tags": list(p.effects) + list(p.flavors),
        "quantities": [{"inventoryId": hex_id(shop.store.seed + ":inv", 1), "quantity": float(item.quantity)}],
    }


def _member(shop: Shop, c) -> dict:
    return {
        "id": hex_id(shop.store.seed + ":member", c.index), "created": c.created_ms, "modified": c.updated_ms,
        "deleted": False, "firstName": c.first_name, "lastName": c.last_name, "email": c.email,
        "primaryPhone": c.phone, "dob": calendar.timegm(c.birth_date.timetuple()) * 1000, "sex": c.gender,
        "status": "Active", "medical": c.medical_id is not None, "loyaltyPoints": float(c.loyalty_points),
        "textOptIn": c.index % 3 == 0, "emailOptIn": c.index % 2 == 0,
        "address": {"address": c.street, "city": c.city, "state": c.state, "zipCode": c.postal_code, "country": "US"},
    }


def _epoch(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        raise _err(400, f"{name} must be epoch milliseconds")


@router.get("/api/v1/partner/products")
def products(request: Request) -> dict:
    shop = _auth(request, "products")
    start, limit = _window(request)
    live = shop.store.indices()
    return _page([render(shop, shop.store.listing(i)) for i in live[start:start + limit]], start, limit, len(live))


@router.get("/api/v1/partner/products/modified")
def products_modified(request: Request) -> dict:
    shop = _auth(request, "products")
    start, limit = _window(request)
    lo, hi = _epoch(request, "startDate", 0), _epoch(request, "endDate", int(time.time() * 1000))
    hits = shop.store.updated_since(lo - 1, hi, include_deleted=True)
    return _page([render(shop, shop.store.listing(i)) for i in hits[start:start + limit]], start, limit, len(hits))


@router.get("/api/v1/partner/products/sku/{sku}")
def product_by_sku(sku: str, request: Request) -> dict:
    shop = _auth(request, "products")
    for i in shop.store.indices():
        if shop.store.listing(i).p.sku == sku:
            return render(shop, shop.store.listing(i))
    raise _err(404, f"Product with sku {sku} not found.")


@router.get("/api/v1/partner/products/{product_id}")
def product(product_id: str, request: Request) -> dict:
    shop = _auth(request, "products")
    i = index_of(product_id, shop.store.seed, hex_id)
    if i is None or not shop.store.exists(i):
        raise _err(404, f"Product {product_id} not found.")
    return render(shop, shop.store.listing(i))


@router.get("/api/v1/partner/members")
def members(request: Request) -> dict:
    shop = _auth(request, "members")
    start, limit = _window(request)
    lo, hi = _epoch(request, "startDate", 0), _epoch(request, "endDate", 2**53)
    hits = [c for c in shop.store.customers() if lo <= c.updated_ms <= hi]
    return _page([_member(shop, c) for c in hits[start:start + limit]], start, limit, len(hits))


@router.post("/api/v1/partner/orders", status_code=201)
async def create_order(request: Request) -> dict:
    shop = _auth(request, "orders")
    try:
        body = json.loads(await request.body())
        items = list(body["items"])
    except (ValueError, KeyError, TypeError):
        raise _err(400, "Body must be JSON with items[].")
    lines, total = [], 0.0
    for line in items:
        i = index_of(str(line.get("productId", "")), shop.store.seed, hex_id)
        if i is None or not shop.store.exists(i) or not shop.store.listing(i).active:
            raise _err(400, f"Product {line.get('productId')} is not available.")
        p = shop.store.listing(i).p
        total += p.price_cents / 100 * float(line.get("quantity", 1))
        lines.append({"productId": line["productId"], "quantity": line.get("quantity", 1),
                      "unitPrice": p.price_cents / 100})
    order = {"id": hex_id(shop.store.seed + ":order", len(shop.orders)), "orderNo": str(5000 + len(shop.orders)),
             "memberId": body.get("memberId"), "status": "Placed", "items": lines, "total": round(total, 2),
             "created": int(time.time() * 1000)}
    shop.orders.append(order)
    return order


# -- control --------------------------------------------------------------------------
def _fire(shop: Shop, item: Listing) -> None:
    body = {"type": "PRODUCT_UPDATED", "shopId": shop.spec.shop_id, "payload": render(shop, item)}
    WEBHOOKS.deliver(shop.webhook, body, "Authorization", event="PRODUCT_UPDATED", shop_id=shop.spec.shop_id)


CONTROL = PosControl(control, SHOPS, Shop, lambda spec: spec.developer_key, noun="shop",
                     ident=lambda spec: spec.shop_id, limits=LIMITS, defaults=DEFAULT_LIMITS, limiter=WINDOW,
                     webhooks=WEBHOOKS)
CONTROL.account_collection("/shops", ShopSpec)
CONTROL.limits_route()
CONTROL.product_routes("/shops/{shop_id}/products/{product_id}", CONTROL.in_account(maker=hex_id), render,
                       notify=_fire)
CONTROL.account_routes("/shops/{shop_id}", webhook=True, orders=lambda shop: shop.orders)
CONTROL.deliveries_route()


def reset() -> None:
    CONTROL.reset(ShopSpec(developer_key="blaze-demo-dev", shop_id="5f0c0ffee0000000000000a1", name="Storehouse Demo"),
                  ShopSpec(developer_key="blaze-demo-dev-noperm", shop_id="5f0c0ffee0000000000000a2",
                           name="Products-only", permissions=["products"], products=30, customers=10))


reset()
