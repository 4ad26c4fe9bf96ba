"""Treez fake (`/treez/v2.0/dispensary/{dispensary}/...`), faithful to code.treez.io and tap-treez.

* ``POST config/api/gettokens`` form ``client_id`` + ``apikey`` -> ``access_token`` valid 2 h;
  later calls send ``authorization: <token>`` (no "Bearer") and ``client_id``.
* ``GET product/product_list?page=&pagesize=&active=TRUE|FALSE|ALL&category_type=&id=``: pages
  from 1, sorted by name; ``data.page_count`` is the number of items on this page (tap-treez adds
  it up until it reaches ``total_count``); ``pagesize`` above 1000 is refused; ``sellable_quantity``
  is capped at 30; ``lab_results`` carry min/max ranges over batches; no batch/expiry fields.
  Names and brands are upper-case (``BLUE DREAM 3.5G`` / ``CRESCO``); times are local ``-07:00``.
* ``GET customer/lastUpdated/after/{iso}/page/{n}/pagesize/{m}`` -> ``{"data": [...]}`` newest
  first, ``[]`` past the end.
* ``POST ticket/detailticket`` submits an order (ticket); it does not move stock.
* 10 TPS per dispensary -> 429 ``{"resultCode": "FAIL", "resultReason": "OVER LIMIT"}`` with no
  ``Retry-After`` (Treez advises pausing 250-500 ms).
* Webhooks (modelled, unsigned): a stock change or deactivation POSTs
  ``{"event_type": "PRODUCT", "event_action": "UPDATE", "dispensary", "data": <product>}`` to the
  registered URL; a registered ``secret`` is sent verbatim as ``authorization``.

Control (``/_sandbox/treez``): ``POST /dispensaries`` {dispensary, client_id, apikey, products,
customers}; ``GET /dispensaries``; ``PUT /limits`` {tps, token_ttl_s}; ``POST
/dispensaries/{d}/products/{product_id}/stock`` {quantity}; ``DELETE
/dispensaries/{d}/products/{product_id}?hard=false``; ``PUT /dispensaries/{d}/webhook`` {url,
secret}; ``GET /dispensaries/{d}/orders``; ``POST /dispensaries/{d}/expire-tokens``;
``GET /webhooks``.

Demo dispensaries after reset: ``partnerdemo`` (client_id ``treez-demo-client``, apikey
``treez-demo-apikey``, 200 products, 40 customers) and ``partnerdemo2`` (same client_id, apikey
``treez-demo-apikey-2``, 60 products).
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from sandbox.pos_catalog import BASE_MS, Listing, Store, index_of, iso, parse_ms, uuid_id
from sandbox.pos_control import PosControl, deletion
from sandbox.pos_http import Reject, RejectRoute, WebhookLog, Window

NAME = "treez"
OFFSET_H = -7
CATEGORY = {"flower": "FLOWER", "preroll": "PREROLL", "vape": "CARTRIDGE", "concentrate": "EXTRACT",
            "edible": "EDIBLE", "tincture": "TINCTURE", "topical": "TOPICAL", "beverage": "BEVERAGE",
            "accessory": "MERCH"}
UOM = {"g": "GRAMS", "ml": "MILLILITERS", "each": "EACH"}
DEFAULT_LIMITS = {"tps": 10, "token_ttl_s": 7200}

router = APIRouter(route_class=RejectRoute)
control = APIRouter()
LIMITS = dict(DEFAULT_LIMITS)
WINDOW = Window()
WEBHOOKS = WebhookLog()
DISPENSARIES: dict[str, "Dispensary"] = {}


class DispensarySpec(BaseModel):
    dispensary: str
    client_id: str
    apikey: str
    products: int = Field(200, ge=1, le=100_000)
    customers: int = Field(40, ge=0, le=100_000)


class Dispensary:
    def __init__(self, spec: DispensarySpec) -> None:
        self.spec = spec
        self.store = Store(f"treez:{spec.dispensary}", spec.products, spec.customers)
        self.tokens: dict[str, float] = {}
        self.tickets: list[dict] = []
        self.webhook: dict | None = None


def _fail(status: int, reason: str, detail: str | None = None) -> Reject:
    return Reject(JSONResponse({"resultCode": "FAIL", "resultReason": reason, "resultDetail": detail}, status))


def _dispensary(name: str) -> Dispensary:
    d = DISPENSARIES.get(name)
    if d is None:
        raise _fail(404, "DISPENSARY_NOT_FOUND", f"No dispensary named {name}")
    return d


def _authed(dispensary: str, request: Request) -> Dispensary:
    d = _dispensary(dispensary)
    token, client_id = request.headers.get("authorization", ""), request.headers.get("client_id", "")
    expiry = d.tokens.get(token)
    if client_id != d.spec.client_id or expiry is None:
        raise _fail(401, "UNAUTHORIZED", "Invalid access token or client_id")
    if expiry < time.time():
        raise _fail(401, "TOKEN_EXPIRED", "Access token expired; call gettokens again")
    if WINDOW.hit(dispensary, LIMITS["tps"], 1.0):
        raise _fail(429, "OVER LIMIT", f"More than {LIMITS['tps']} transactions per second for this location")
    return d


def _name(p) -> str:
    return f"{p.name} {p.size}".upper()


def render(d: Dispensary, item: Listing) -> dict:
    p = item.p
    sellable = min(item.quantity, 30)
    labs = []
    for kind, rng in (("THC", p.thc), ("CBD", p.cbd)):
        if rng is not None:
            labs.append({"result_type": kind, "amount": {"minimum_value": rng[0], "maximum_value": rng[1]},
                         "amount_type": "PERCENTAGE" if p.potency_unit == "%" else "MILLIGRAMS"})
    mg = p.potency_unit == "mg"
    return {
        "product_id": uuid_id(d.store.seed, p.index),
        "product_status": "ACTIVE" if item.active else "DEACTIVATED",
        "last_updated_at": iso(item.updated_ms, OFFSET_H, zulu=False),
        "category_type": CATEGORY[p.category],
        "product_configurable_fields": {
            "name": _name(p), "brand": p.brand.upper(), "uom": UOM[p.weight_unit],
            "amount": p.weight, "size": p.size.upper(),
            "classification": (p.strain_type or "").upper() or None, "subtype": None,
            "total_mg_thc": p.thc[1] if mg and p.thc else None, "total_mg_cbd": p.cbd[1] if mg and p.cbd else None,
            "total_flower_weight_g": p.weight if p.category in ("flower", "preroll") else None,
            "total_concentrate_weight_g": p.weight if p.category in ("vape", "concentrate") else None,
            "doses": None, "mg_per_dose": None,
        },
        "sellable_quantity": sellable,
        "sellable_quantity_detail": [{"inventory_type": "ADULT", "location": "FRONT OF HOUSE",
                                      "location_id": uuid_id(d.store.seed + ":loc", 1), "sellable_quantity": sellable}],
        "pricing": {"price_type": "FLAT", "price_sell": p.price_cents / 100, "tier_name": None,
                    "tier_pricing_detail": []},
        "attributes": {"general": [], "flavors": list(p.flavors), "effects": list(p.effects), "ingredients": [],
                       "internal_tags": []},
        "product_barcodes": [{"sku": p.sku, "type": "SKU", "created_date": iso(BASE_MS, OFFSET_H, zulu=False)}],
        "e_commerce": {"menu_title": f"{p.name} {p.size}", "product_description": p.description, "primary_image": None,
                       "all_images": [], "minimum_visible_inventory_level": 0, "hide_from_menu": False},
        "autoupdate_lab_results": True,
        "lab_results": labs,
        "above_threshold": item.quantity > 0,
        "external_references": [],
    }


async def _form(request: Request) -> dict[str, str]:
    # Parsed by hand: the sandbox does not depend on python-multipart.
    return {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}


@router.post("/v2.0/dispensary/{dispensary}/config/api/gettokens")
async def gettokens(dispensary: str, request: Request) -> dict:
    d = _dispensary(dispensary)
    form = await _form(request)
    if form.get("client_id") != d.spec.client_id or form.get("apikey") != d.spec.apikey:
        raise _fail(401, "INVALID_CREDENTIALS", "client_id or apikey is invalid")
    token = secrets.token_hex(24)
    expires = time.time() + LIMITS["token_ttl_s"]
    d.tokens[token] = expires
    return {"resultCode": "SUCCESS", "resultReason": None, "resultDetail": None, "access_token": token,
            "refresh_token": secrets.token_hex(24), "expires_in": LIMITS["token_ttl_s"],
            "expires_at": iso(int(expires * 1000), OFFSET_H, zulu=False)}


@router.get("/v2.0/dispensary/{dispensary}/product/product_list")
def product_list(dispensary: str, request: Request) -> dict:
    d = _authed(dispensary, request)
    q = request.query_params
    try:
        page, size = int(q.get("page", 1)), int(q.get("pagesize", 50))
    except ValueError:
        raise _fail(400, "INVALID_PARAMETER", "page and pagesize must be integers")
    if page < 1 or not 1 <= size <= 1000:
        raise _fail(400, "INVALID_PARAMETER", "page must be >= 1 and pagesize between 1 and 1000")
    active = q.get("active", "TRUE").upper()
    ids = q.getlist("id")
    if len(ids) > 50:
        raise _fail(400, "INVALID_PARAMETER", "at most 50 id values")
    wanted = {index_of(i, d.store.seed, uuid_id) for i in ids}
    rows = []
    for i in d.store.by_name(_name):
        if ids and i not in wanted:
            continue
        item = d.store.listing(i)
        if (active == "TRUE" and not item.active) or (active == "FALSE" and item.active):
            continue
        if q.get("category_type") and CATEGORY[item.p.category] != q["category_type"].upper():
            continue
        rows.append(item)
    chunk = rows[(page - 1) * size: page * size]
    return {"resultCode": "SUCCESS", "resultReason": None, "resultDetail": None,
            "data": {"page_count": len(chunk), "total_count": len(rows),
                     "product_list": [render(d, item) for item in chunk]}}


@router.get("/v2.0/dispensary/{dispensary}/customer/lastUpdated/after/{after}/page/{page}/pagesize/{size}")
def customers(dispensary: str, after: str, page: int, size: int, request: Request) -> dict:
    d = _authed(dispensary, request)
    after_ms = parse_ms(after)
    if after_ms is None or page < 1 or not 1 <= size <= 1000:
        raise _fail(400, "INVALID_PARAMETER", "bad date, page or pagesize")
    hits = sorted((c for c in d.store.customers() if c.updated_ms > after_ms), key=lambda c: -c.updated_ms)
    return {"resultCode": "SUCCESS", "resultReason": None, "resultDetail": None,
            "data": [_customer(d, c) for c in hits[(page - 1) * size: page * size]]}


def _customer(d: Dispensary, c) -> dict:
    return {
        "customer_id": uuid_id(d.store.seed + ":cust", c.index), "status": "ACTIVE", "verification_status": "VERIFIED",
        "first_name": c.first_name, "middle_name": None, "last_name": c.last_name, "nickname": None,
        "birthday": c.birth_date.isoformat(), "drivers_license": f"D{c.index:07d}", "email": c.email, "phone": c.phone,
        "state_medical_id": c.medical_id, "patient_type": "MEDICAL" if c.medical_id else "ADULT",
        "rewards_balance": c.loyalty_points, "gender": c.gender, "banned": False,
        "signup_date": iso(c.created_ms, OFFSET_H, zulu=False), "last_update": iso(c.updated_ms, OFFSET_H, zulu=False),
        "addresses": [{"type": "HOME", "street1": c.street, "street2": None, "city": c.city, "state": c.state,
                       "zipcode": c.postal_code, "primary": True}],
        "customer_groups": [],
    }


@router.post("/v2.0/dispensary/{dispensary}/ticket/detailticket")
async def detail_ticket(dispensary: str, request: Request) -> dict:
    d = _authed(dispensary, request)
    try:
        body = json.loads(await request.body())
        items = body["items"]
    except (ValueError, KeyError, TypeError):
        raise _fail(400, "INVALID_REQUEST", "body must be JSON with items[]")
    lines, total = [], 0.0
    for line in items:
        i = index_of(str(line.get("product_id", "")), d.store.seed, uuid_id)
        qty = line.get("quantity", 0)
        if i is None or not d.store.exists(i) or not d.store.listing(i).active:
            raise _fail(400, "INVALID_PRODUCT", f"unknown product_id {line.get('product_id')}")
        item = d.store.listing(i)
        if not isinstance(qty, int) or qty < 1 or qty > item.quantity:
            raise _fail(400, "INSUFFICIENT_INVENTORY", f"cannot sell {qty} of {line['product_id']}")
        total += qty * item.p.price_cents / 100
        lines.append({"product_id": line["product_id"], "quantity": qty, "price_sell": item.p.price_cents / 100})
    ticket = {"ticket_id": str(uuid.uuid4()), "order_number": str(10000 + len(d.tickets)),
              "type": body.get("type", "PICKUP"), "order_source": body.get("order_source", "ECOMMERCE"),
              "order_status": "AWAITING_PROCESSING", "customer_id": body.get("customer_id"),
              "external_order_number": body.get("external_order_number"), "items": lines, "total": round(total, 2),
              "created_at": iso(int(time.time() * 1000), OFFSET_H, zulu=False)}
    d.tickets.append(ticket)
    return {"resultCode": "SUCCESS", "resultReason": None, "resultDetail": None, "data": ticket}


# -- control --------------------------------------------------------------------------
def _fire(d: Dispensary, item: Listing) -> None:
    name = d.spec.dispensary
    body = {"event_type": "PRODUCT", "event_action": "UPDATE", "dispensary": name, "data": render(d, item)}
    WEBHOOKS.deliver(d.webhook, body, "authorization", event="PRODUCT", dispensary=name)


CONTROL = PosControl(control, DISPENSARIES, Dispensary, lambda spec: spec.dispensary, noun="dispensary",
                     limits=LIMITS, defaults=DEFAULT_LIMITS, limiter=WINDOW, webhooks=WEBHOOKS)
CONTROL.account_collection("/dispensaries", DispensarySpec)
CONTROL.limits_route(coerce=True)
CONTROL.product_routes("/dispensaries/{dispensary}/products/{product_id}", CONTROL.in_account(maker=uuid_id),
                       render, notify=_fire, deleted=deletion("product_id", "active"))
CONTROL.account_routes("/dispensaries/{dispensary}", webhook=True, orders=lambda d: d.tickets, expire_tokens=True)
CONTROL.deliveries_route()


def reset() -> None:
    CONTROL.reset(DispensarySpec(dispensary="partnerdemo", client_id="treez-demo-client", apikey="treez-demo-apikey"),
                  DispensarySpec(dispensary="partnerdemo2", client_id="treez-demo-client",
                                 apikey="treez-demo-apikey-2", products=60, customers=20))


reset()
