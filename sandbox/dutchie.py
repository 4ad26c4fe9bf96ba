"""Dutchie POS fake (`/dutchie/...`), field names exactly as in `dutchie-pos-openapi.json`.

* HTTP Basic, username = the location's API key, password empty (ignored); anything else is 401
  ``{"message": "Authorization has been denied for this request."}`` + ``WWW-Authenticate``.
* ``GET /whoami`` -> ``LocationIdentity``.
* ``GET /products?fromLastModifiedDateUTC=&isActive=`` -> ``ProductDetail[]`` (no paging; the
  filter is strict "modified after"). Deactivated products stay with ``isActive: false``; hard
  deleted ones simply vanish. ``productName`` is ``"Blue Dream | 3.5g"``, brand in ``brandName``.
* ``GET /inventory?includeLabResults=&includeRoomQuantities=`` -> ``InventoryItem[]``, one per
  batch with stock (``batchId, batchName, packageId, expirationDate, labResults``); zero-stock and
  inactive items are left out. Note ``lastModifiedDateUtc`` here vs ``lastModifiedDateUTC`` on
  products, as in the document. Timestamps are naive UTC (``2024-01-01T00:00:00.000``).
* ``GET /customer/customers-paginated?PageNumber=0&PageSize=1000&fromLastModifiedDateUTC=`` ->
  ``Customer[]``; keep incrementing ``PageNumber`` until ``[]``; ``PageSize`` > 10000 is a 400
  ``BadRequestResponse``.
* ``POST /preorder/submit`` (``CreatePreOrderRequest``) -> the new order id (an integer); the
  same ``ConsumerKey`` header + ``idempotencyKey`` returns the first order's id again. Either
  one alone deduplicates nothing (as the document says): each submit is a new order.
* Per-endpoint, per-key limits per minute (products 100, inventory 100, customers 100, preorder
  240; whoami unlimited; the document only says 100-1500/min). Over the limit: 429 text
  ``API calls quota exceeded! maximum admitted N per 1m.`` + ``Retry-After`` seconds.
* Webhooks (modelled, unsigned): stock changes POST ``{"eventType": "product.updated",
  "locationId", "data": <ProductDetail>}``; a registered ``secret`` is sent as ``Authorization``.

Control (``/_sandbox/dutchie``): ``POST /locations`` {api_key, location_id, location_name,
products, customers, roles, variety}; ``GET /locations``; ``PUT /limits`` {products, inventory,
customers, preorder}; ``POST /locations/{location_id}/products/{product_id}/stock`` {quantity};
``DELETE /locations/{location_id}/products/{product_id}?hard=false``; ``PUT
/locations/{location_id}/webhook`` {url, secret}; ``GET /locations/{location_id}/orders``;
``PUT /locations/{location_id}/preorder`` {answer: id|object, delay_ms}; ``GET /webhooks``.

``roles`` (default: all) limits what the key may call: a missing role is 403 on its endpoints.
``variety`` serves what the document allows beyond the plain case: batches split into two
packages (each its own ``packageId`` and state tag ``externalPackageId``), some held back
(``packageStatus`` Quarantine/Testing, ``labTestStatus`` Failed/Pending), medical-only products
(``isMedicalOnly``/``medicalOnly``), flower equivalents for concentrates, vapes and edibles,
weight-tiered prices (``pricingTierData``, ``price`` null), a null ``productName``, expired
medical ids (``mmjidExpirationDate``), anonymous walk-ins (``isAnonymous``; left out with
``includeAnonymous=false``) and merged-away customers (``mergedIntoCustomerId``).

Demo locations after reset: API key ``dutchie-demo-key`` (location 1001 "Storehouse Demo -
Denver", 200 products, 40 customers) and ``dutchie-demo-key-2`` (location 1002, 60 products).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
import uuid
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, PlainTextResponse

from sandbox.pos_catalog import Listing, Store, batch_quantities, iso, parse_ms
from sandbox.pos_control import PosControl, deletion
from sandbox.pos_http import Reject, RejectRoute, WebhookLog, Window

NAME = "dutchie"
PRODUCT_BASE, INVENTORY_BASE, BATCH_BASE, CUSTOMER_BASE = 100_000, 500_000, 900_000, 200_000
CATEGORY = {"flower": "Flower", "preroll": "Pre-Rolls", "vape": "Vaporizers", "concentrate": "Concentrates",
            "edible": "Edibles", "tincture": "Tinctures", "topical": "Topicals", "beverage": "Beverages",
            "accessory": "Accessories"}
STRAIN = {"indica": "Indica", "sativa": "Sativa", "hybrid": "Hybrid", "cbd": "CBD", None: None}
UNIT_ID = {"%": 1, "mg": 2}
DEFAULT_LIMITS = {"products": 100, "inventory": 100, "customers": 100, "preorder": 240}
ROLES = {"products": "Product", "inventory": "Inventory", "customers": "Customer", "preorder": "PreOrder"}

router = APIRouter(route_class=RejectRoute)
control = APIRouter()
LIMITS = dict(DEFAULT_LIMITS)
WINDOW = Window()
WEBHOOKS = WebhookLog()
LOCATIONS: dict[str, "Location"] = {}


class LocationSpec(BaseModel):
    api_key: str
    location_id: int = Field(ge=1, le=20_000)
    location_name: str = "Sandbox Dispensary"
    products: int = Field(200, ge=1, le=100_000)
    customers: int = Field(40, ge=0, le=1_000_000)
    roles: list[str] | None = Field(None, description="the key's roles (Product, Inventory, Customer, "
                                    "PreOrder); None: all. A missing one is 403 on its endpoints")
    variety: bool = Field(False, description="serve what the document allows beyond the plain case: "
                          "several packages per batch, quarantined and failed packages, medical-only and "
                          "tier-priced products, null productName, expired medical ids, anonymous and "
                          "merged customers")


class PreorderBehaviour(BaseModel):
    answer: Literal["id", "object"] = Field("id", description="a bare order id (the schema) or "
                                            "{orderId, transactionId} (the description)")
    delay_ms: int = Field(0, ge=0, le=30_000, description="the order is taken at once; the answer comes this late")


class Location:
    def __init__(self, spec: LocationSpec) -> None:
        self.spec = spec
        self.store = Store(f"dutchie:{spec.location_id}", spec.products, spec.customers)
        self.orders: list[dict] = []
        self.idempotent: dict[tuple[str, str], int] = {}
        self.webhook: dict | None = None
        self.preorder = PreorderBehaviour()


def _ts(ms: int) -> str:
    return iso(ms, zulu=False)[:23]


def _auth(request: Request, endpoint: str | None) -> Location:
    header = request.headers.get("authorization", "")
    try:
        basic = header.lower().startswith("basic ")
        key = base64.b64decode(header.split(" ", 1)[1]).decode().split(":", 1)[0] if basic else ""
    except (ValueError, IndexError):
        key = ""
    loc = LOCATIONS.get(key)
    if loc is None:
        raise Reject(JSONResponse({"message": "Authorization has been denied for this request."}, 401,
                                  headers={"WWW-Authenticate": 'Basic realm="api.pos.dutchie.com"'}))
    if endpoint and loc.spec.roles is not None and ROLES[endpoint] not in loc.spec.roles:
        raise Reject(JSONResponse({"message": f"The API key does not have the {ROLES[endpoint]} role."}, 403))
    if endpoint:
        wait = WINDOW.hit(f"{key}:{endpoint}", LIMITS[endpoint], 60.0)
        if wait:
            text = f"API calls quota exceeded! maximum admitted {LIMITS[endpoint]} per 1m."
            raise Reject(PlainTextResponse(text, 429, headers={"Retry-After": str(math.ceil(wait))}))
    return loc


def _bad(message: str, prop: str | None = None) -> Reject:
    errors = [{"propertyName": prop, "propertyError": message}] if prop else None
    return Reject(JSONResponse({"message": message, "propertyErrors": errors}, 400))


def _since(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    ms = parse_ms(value)
    if ms is None:
        raise _bad(f"The value '{value}' is not valid for {name}.", name)
    return ms


def medical_only(loc: Location, index: int) -> bool:
    return loc.spec.variety and index % 7 == 3


def flower_equivalents(loc: Location, p) -> tuple[float | None, float | None]:
    """(flowerEquivalent, recFlowerEquivalent) in grams per unit: flower its weight; with variety,
    concentrates and vapes count 5x their weight (4x for adult use), edibles and tinctures 1 g."""
    if p.category == "flower":
        return p.weight, None
    if not loc.spec.variety or p.weight_unit == "each" and p.category not in ("edible", "tincture"):
        return None, None
    if p.category in ("concentrate", "vape"):
        return round(p.weight * 5, 3), round(p.weight * 4, 3)
    if p.category in ("edible", "tincture"):
        return 1.0, None
    return None, None


def product_detail(loc: Location, item: Listing) -> dict:
    p, pid = item.p, PRODUCT_BASE + item.p.index
    unit = p.potency_unit
    detail = _product_detail(loc, item, p, pid, unit)
    if loc.spec.variety:
        detail["flowerEquivalent"], detail["recFlowerEquivalent"] = flower_equivalents(loc, p)
        if p.index % 11 == 5:  # priced by weight tiers: no single price
            cents = p.price_cents
            detail.update(price=None, recPrice=None, medPrice=None, pricingTierData=[
                {"startWeight": 0.0, "endWeight": 3.5, "price": cents / 100, "medicalPrice": round(cents * 0.9) / 100},
                {"startWeight": 3.5, "endWeight": None, "price": round(cents * 0.85) / 100,
                 "medicalPrice": round(cents * 0.8) / 100}])
        if p.index % 13 == 6:
            detail["productName"] = None
    return detail


def _product_detail(loc: Location, item: Listing, p, pid: int, unit: str) -> dict:
    return {
        "productId": pid, "sku": p.sku, "internalName": f"{p.brand} {p.name} {p.size}",
        "productName": f"{p.name} | {p.size}", "description": p.description, "masterCategory": CATEGORY[p.category],
        "categoryId": list(CATEGORY).index(p.category) + 1,
        "category": CATEGORY[p.category], "imageUrl": None, "imageUrls": [], "strainId": None,
        "strain": p.name if p.category in ("flower", "preroll", "vape", "concentrate") else None,
        "strainType": STRAIN[p.strain_type], "size": p.size,
        "netWeight": p.weight if p.weight_unit != "each" else None,
        "netWeightUnit": p.weight_unit if p.weight_unit != "each" else None,
        "brandId": sum(map(ord, p.brand)), "brandName": p.brand, "vendorId": None,
        "vendorName": f"{p.brand} Distribution",
        "isCannabis": p.category != "accessory", "isActive": item.active, "isCoupon": False,
        "thcContent": p.thc[1] if p.thc else None, "thcContentUnit": unit if p.thc else None,
        "cbdContent": p.cbd[1] if p.cbd else None, "cbdContentUnit": unit if p.cbd else None,
        "productGrams": p.weight if p.weight_unit == "g" else None,
        "flowerEquivalent": p.weight if p.category == "flower" else None,
        "price": p.price_cents / 100, "medPrice": round(p.price_cents * 0.9) / 100, "recPrice": p.price_cents / 100,
        "unitCost": round(p.price_cents * 0.45) / 100, "unitType": "qty", "defaultUnit": "qty",
        "onlineTitle": f"{p.brand} {p.name} {p.size}", "onlineDescription": p.description, "onlineProduct": True,
        "posProducts": True, "onlineAvailable": True, "flavor": ", ".join(p.flavors) or None,
        "tags": [{"tagId": 10 + k, "tagName": e, "productId": pid} for k, e in enumerate(p.effects)],
        "unitTHCContentDose": None, "unitCBDContentDose": None, "isMedicalOnly": medical_only(loc, p.index),
        "createdDate": _ts(item.updated_ms - 86_400_000), "lastModifiedDateUTC": _ts(item.updated_ms),
        "upc": None, "regulatoryCategory": CATEGORY[p.category], "externalId": p.sku, "expirationDays": 365,
    }


def packages(loc: Location, p, k: int, qty: int) -> list[tuple[int, int, str, str, str | None]]:
    """(inventory id, quantity, package status, lab test status, state tag suffix) of each package of
    batch ``k``: one, or with variety two packages of the batch, the second of some products held
    back (quarantined, failed or pending its lab test)."""
    base = INVENTORY_BASE + p.index * 10 + k
    if not loc.spec.variety or qty < 2:
        return [(base, qty, "Active", "Passed", None)]
    held = {1: ("Quarantine", "Passed"), 2: ("Active", "Failed"), 4: ("Testing", "Pending")}.get(p.index % 6,
                                                                                               ("Active", "Passed"))
    return [(base, qty // 2, "Active", "Passed", "P1"), (base + 5_000_000, qty - qty // 2, *held, "P2")]


def inventory_items(loc: Location, item: Listing, labs: bool, rooms: bool) -> list[dict]:
    p, out = item.p, []
    fe, rec_fe = flower_equivalents(loc, p)
    held = [(k, b, pkg) for k, (b, batch_qty) in enumerate(zip(p.batches, batch_quantities(p, item.quantity)))
            if batch_qty > 0 for pkg in packages(loc, p, k, batch_qty)]
    for k, b, (inventory_id, qty, package_status, lab_status, suffix) in held:
        tag = f"{b.compliance_id}-{suffix}" if suffix else b.compliance_id
        results = [{"labTest": name, "value": v, "labResultUnitId": UNIT_ID[p.potency_unit],
                    "labResultUnit": p.potency_unit} for name, v in (("THC", b.thc), ("CBD", b.cbd)) if v is not None]
        out.append({
            "inventoryId": inventory_id, "productId": PRODUCT_BASE + p.index, "sku": p.sku,
            "productName": f"{p.name} | {p.size}", "description": p.description, "category": CATEGORY[p.category],
            "masterCategory": CATEGORY[p.category], "quantityAvailable": float(qty), "quantityUnits": "ea",
            "unitWeight": p.weight if p.weight_unit == "g" else 0.0, "unitWeightUnit": "g",
            "flowerEquivalent": fe or 0.0, "recFlowerEquivalent": rec_fe, "flowerEquivalentUnits": "g",
            "batchId": BATCH_BASE + p.index * 10 + k, "batchName": b.lot,
            "packageId": f"PKG-{inventory_id}" if loc.spec.variety else tag,
            "externalPackageId": tag, "packageStatus": package_status, "unitPrice": p.price_cents / 100,
            "recUnitPrice": p.price_cents / 100, "medUnitPrice": round(p.price_cents * 0.9) / 100,
            "strain": p.name, "strainType": STRAIN[p.strain_type], "size": p.size, "brandName": p.brand,
            "vendor": f"{p.brand} Distribution", "producer": p.brand, "medicalOnly": medical_only(loc, p.index),
            "isCannabis": p.category != "accessory",
            "labResults": results if labs else None, "labTestStatus": lab_status,
            "testedDate": f"{b.tested.isoformat()}T00:00:00", "packagedDate": f"{b.packaged.isoformat()}T00:00:00",
            "expirationDate": f"{b.expires.isoformat()}T00:00:00", "lastModifiedDateUtc": _ts(item.updated_ms),
            "effectivePotencyMg": (b.thc or 0) * (p.weight * 10 if p.potency_unit == "%" else 1),
            "roomQuantities": [{"roomId": 1, "room": "Sales Floor", "quantityAvailable": float(qty)}]
            if rooms else None,
        })
    return out


def _bool(value: str | None) -> bool | None:
    return None if value is None else value.lower() == "true"


@router.get("/whoami")
def whoami(request: Request) -> dict:
    loc = _auth(request, None)
    s = loc.spec
    return {"locationId": s.location_id, "lspId": 77, "locationName": s.location_name,
            "lspName": "Storehouse Sandbox LSP",
            "address": "1 Main St", "address2": None, "city": "Denver", "state": "CO", "postalCode": "80202",
            "licenseNumber": f"402R-{s.location_id:05d}", "doingBusinessAs": s.location_name,
            "shareCustomerProfiles": False,
            "locationGlobalId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dutchie:{s.location_id}")),
            "lspGlobalId": str(uuid.uuid5(uuid.NAMESPACE_URL, "dutchie:lsp:77")), "region": "us-central"}


@router.get("/products")
def products(request: Request) -> list[dict]:
    loc = _auth(request, "products")
    since = _since(request.query_params.get("fromLastModifiedDateUTC"), "fromLastModifiedDateUTC")
    active = _bool(request.query_params.get("isActive"))
    indices = loc.store.indices() if since is None else loc.store.updated_since(since)
    rows = (loc.store.listing(i) for i in indices)
    return [product_detail(loc, r) for r in rows if active is None or r.active == active]


@router.get("/inventory")
def inventory(request: Request) -> list[dict]:
    loc = _auth(request, "inventory")
    labs = bool(_bool(request.query_params.get("includeLabResults")))
    rooms = bool(_bool(request.query_params.get("includeRoomQuantities")))
    out = []
    for i in loc.store.indices():
        item = loc.store.listing(i)
        if item.active:
            out.extend(inventory_items(loc, item, labs, rooms))
    return out


@router.get("/customer/customers-paginated")
def customers_paginated(request: Request) -> list[dict]:
    loc = _auth(request, "customers")
    q = request.query_params
    try:
        page, size = int(q.get("PageNumber", 0)), int(q.get("PageSize", 1000))
    except ValueError:
        raise _bad("PageNumber and PageSize must be integers.", "PageNumber")
    if page < 0 or not 1 <= size <= 10_000:
        raise _bad("PageSize must be between 1 and 10000.", "PageSize")
    lo = _since(q.get("fromLastModifiedDateUTC"), "fromLastModifiedDateUTC")
    hi = _since(q.get("toLastModifiedDateUTC"), "toLastModifiedDateUTC")
    anonymous = _bool(q.get("includeAnonymous"))
    hits = [c for c in loc.store.customers()
            if (lo is None or c.updated_ms > lo) and (hi is None or c.updated_ms <= hi)]
    shown = [_customer(loc, c) for c in hits]
    if anonymous is False:
        shown = [c for c in shown if not c["isAnonymous"]]
    return shown[page * size:(page + 1) * size]


def _customer(loc: Location, c) -> dict:
    out = _customer_record(c)
    if loc.spec.variety:
        if c.index % 10 == 7:  # a walk-in: no name, no contact, no id
            out.update(isAnonymous=True, firstName=None, lastName=None, name="Anonymous", emailAddress=None,
                       phone=None, cellPhone=None, mmjidNumber=None, mmjidExpirationDate=None,
                       customerType="Recreational")
        elif c.index % 10 == 8 and c.index > 0:  # merged into the customer before it
            out.update(mergedIntoCustomerId=CUSTOMER_BASE + c.index - 1, status="Inactive")
        elif c.medical_id and c.index % 2 == 0:
            out["mmjidExpirationDate"] = "2024-01-31T00:00:00"
    return out


def _customer_record(c) -> dict:
    return {
        "customerId": CUSTOMER_BASE + c.index, "uniqueId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"dutchie:{c.email}")),
        "name": f"{c.first_name} {c.last_name}", "firstName": c.first_name, "lastName": c.last_name, "middleName": None,
        "address1": c.street, "address2": None, "city": c.city, "state": c.state, "postalCode": c.postal_code,
        "phone": c.phone, "cellPhone": c.phone, "emailAddress": c.email, "status": "Active",
        "mmjidNumber": c.medical_id, "mmjidExpirationDate": "2030-12-31T00:00:00" if c.medical_id else None,
        "lastModifiedDateUTC": _ts(c.updated_ms), "creationDate": _ts(c.created_ms),
        "customerType": "Medical" if c.medical_id else "Recreational", "gender": c.gender,
        "dateOfBirth": f"{c.birth_date.isoformat()}T00:00:00", "isAnonymous": False, "mergedIntoCustomerId": None,
        "springBigMemberId": 0,
        "discountGroups": [], "isLoyaltyMember": c.loyalty_points > 0, "optedIntoMarketing": c.index % 2 == 0,
        "loyaltyTier": "Gold" if c.loyalty_points > 1500 else None,
    }


@router.post("/preorder/submit")
async def submit_preorder(request: Request):
    loc = _auth(request, "preorder")
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise _bad("A non-empty request body is required.")
    key = (request.headers.get("ConsumerKey", ""), body.get("idempotencyKey") or "")
    deduplicated = all(key)  # the document: only the ConsumerKey header *and* idempotencyKey together
    if deduplicated and key in loc.idempotent:
        return await _preorder_answer(loc, loc.idempotent[key])
    cid = body.get("customerId")
    if not isinstance(cid, int) or not 0 <= cid - CUSTOMER_BASE < loc.store.n_customers:
        raise _bad("Customer not found.", "customerId")
    for line in body.get("items") or []:
        i = (line.get("productId") or 0) - PRODUCT_BASE
        if not loc.store.exists(i) or not loc.store.listing(i).active:
            raise _bad(f"Product {line.get('productId')} is not available.", "items")
    if not body.get("items"):
        raise _bad("At least one item is required.", "items")
    order_id = 700_000 + len(loc.orders)
    loc.orders.append({"orderId": order_id, "receivedAt": _ts(int(time.time() * 1000)),
                       "consumerKey": key[0] or None, "request": body})
    if deduplicated:
        loc.idempotent[key] = order_id
    return await _preorder_answer(loc, order_id)


async def _preorder_answer(loc: Location, order_id: int):
    if loc.preorder.delay_ms:  # taken; the answer is slow (and may find the caller gone)
        await asyncio.sleep(loc.preorder.delay_ms / 1000)
    if loc.preorder.answer == "object":
        return {"orderId": order_id, "transactionId": 3_000_000 + order_id}
    return order_id


# -- control --------------------------------------------------------------------------
def _fire(loc: Location, item: Listing) -> None:
    body = {"eventType": "product.updated", "locationId": loc.spec.location_id, "data": product_detail(loc, item)}
    WEBHOOKS.deliver(loc.webhook, body, "Authorization", event="product.updated", location_id=loc.spec.location_id)


CONTROL = PosControl(control, LOCATIONS, Location, lambda spec: spec.api_key, noun="location",
                     ident=lambda spec: spec.location_id, types={"location_id": int, "product_id": int},
                     limits=LIMITS, defaults=DEFAULT_LIMITS, limiter=WINDOW, webhooks=WEBHOOKS)
CONTROL.account_collection("/locations", LocationSpec)
CONTROL.limits_route(value=int)
CONTROL.product_routes("/locations/{location_id}/products/{product_id}",
                       CONTROL.in_account(offset=lambda loc: PRODUCT_BASE), product_detail, notify=_fire,
                       deleted=deletion("productId", "isActive"))
CONTROL.account_routes("/locations/{location_id}", webhook=True, orders=lambda loc: loc.orders)
CONTROL.deliveries_route()


@control.put("/locations/{location_id}/preorder")
def set_preorder(location_id: int, behaviour: PreorderBehaviour) -> dict:
    """How ``/preorder/submit`` answers from now on at this location."""
    loc = next((x for x in LOCATIONS.values() if x.spec.location_id == location_id), None)
    if loc is None:
        raise HTTPException(404, f"no location {location_id}")
    loc.preorder = behaviour
    return behaviour.model_dump()


def reset() -> None:
    CONTROL.reset(LocationSpec(api_key="dutchie-demo-key", location_id=1001, location_name="Storehouse Demo - Denver"),
                  LocationSpec(api_key="dutchie-demo-key-2", location_id=1002,
                               location_name="Storehouse Demo - Boulder", products=60, customers=20))


reset()
