"""Flowhub fake (`/flowhub/...`), after the shapes third-party Flowhub clients agree on.

* Headers ``clientId`` and ``key`` (one pair per integrator/organisation); bad pair: 401 text
  ``Unauthorized``. Envelope ``{"status": 200, "data": [...]}``.
* ``GET /v0/clientsLocations`` -> the organisation's locations (``locationId``, ``importId``...).
* ``GET /v0/locations/{locationId}/inventory`` (all rows, zero stock included),
  ``/v0/locations/{locationId}/inventoryNonZero``, ``/v0/inventory`` and ``/v0/inventoryNonZero``
  (every location): one row per product batch, no paging, no updated-since filter (sync by
  snapshot; ``productUpdatedAt`` is on each row). Fields: ``productId, variantId, productName``
  (``"FLOWER - Blue Dream 3.5g [CRESCO]"``), ``parentProductName, brand, category, speciesName``
  (``"Sativa-dom"``), ``strainName, quantity, inventoryUnitOfMeasure, productWeight,
  productUnitOfMeasure, priceInMinorUnits`` (cents), ``preTaxPriceInPennies, currencyCode,
  cannabinoidInformation[{name, lowerRange, upperRange, unitOfMeasure: "%" | "mg"}],
  expirationDate`` (date), ``packageId, batchId, sku``.
* ``GET /v1/customers/?created_after=&created_before=&page=1&page_size=100`` -> ``data`` of the
  page, ``[]`` past the end (no totals).
* ``POST /order-ahead/v0/create`` {locationId, customerId, items: [{productId, quantity}]} and
  ``GET /order-ahead/v0/orderStatus/{orderId}``.
* Limit (undocumented; modelled): 300 calls per 60 s per clientId -> 429
  ``{"status": 429, "message": "Too Many Requests"}`` + ``Retry-After``.
* Webhooks (modelled, unsigned): stock changes POST ``{"event": "inventory.updated", "clientId",
  "locationId", "data": [rows]}``; a registered ``secret`` goes in the ``key`` header.

Control (``/_sandbox/flowhub``): ``POST /clients`` {client_id, key, name, locations: [{location_id,
name, products, customers}]}; ``GET /clients``; ``PUT /limits`` {calls, window_s}; ``POST
/locations/{location_id}/products/{product_id}/stock`` {quantity}; ``DELETE
/locations/{location_id}/products/{product_id}?hard=false``; ``PUT /clients/{client_id}/webhook``
{url, secret}; ``GET /clients/{client_id}/orders``; ``GET /webhooks``.

Demo after reset: clientId ``flowhub-demo-client``, key ``flowhub-demo-key``; locations
``b9d2a82b-9c98-4f18-95f3-000000000001`` (importId 101, 200 products) and ``...000000000002``
(importId 102, 60 products); 40 customers.
"""

from __future__ import annotations

import json
import math
import time
import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, PlainTextResponse

from sandbox.pos_catalog import Listing, Store, batch_quantities, index_of, iso, parse_ms, uuid_id
from sandbox.pos_control import PosControl, deletion
from sandbox.pos_http import Reject, RejectRoute, WebhookLog, Window

NAME = "flowhub"
CATEGORY = {"flower": "Flower", "preroll": "PreRoll", "vape": "Vape", "concentrate": "Concentrate", "edible": "Edible",
            "tincture": "Tincture", "topical": "Topical", "beverage": "Beverage", "accessory": "Accessory"}
SPECIES = {"indica": "Indica", "sativa": "Sativa", "hybrid": "Hybrid", "cbd": "CBD"}
DEFAULT_LIMITS = {"calls": 300, "window_s": 60}

router = APIRouter(route_class=RejectRoute)
control = APIRouter()
LIMITS = dict(DEFAULT_LIMITS)
WINDOW = Window()
WEBHOOKS = WebhookLog()
CLIENTS: dict[str, "Client"] = {}


class LocationSpec(BaseModel):
    location_id: str
    name: str = "Sandbox Location"
    products: int = Field(200, ge=1, le=100_000)


class ClientSpec(BaseModel):
    client_id: str
    key: str
    name: str = "Sandbox Cannabis Co"
    customers: int = Field(40, ge=0, le=1_000_000)
    locations: list[LocationSpec]


class Client:
    def __init__(self, spec: ClientSpec) -> None:
        self.spec = spec
        self.stores = {loc.location_id: Store(f"flowhub:{loc.location_id}", loc.products, 0) for loc in spec.locations}
        self.people = Store(f"flowhub:{spec.client_id}", 1, spec.customers)
        self.orders: list[dict] = []
        self.webhook: dict | None = None


def _auth(request: Request) -> Client:
    client = CLIENTS.get(request.headers.get("clientId", ""))
    if client is None or request.headers.get("key") != client.spec.key:
        raise Reject(PlainTextResponse("Unauthorized", 401))
    wait = WINDOW.hit(client.spec.client_id, int(LIMITS["calls"]), float(LIMITS["window_s"]))
    if wait:
        raise Reject(JSONResponse({"status": 429, "message": "Too Many Requests"}, 429,
                                  headers={"Retry-After": str(math.ceil(wait))}))
    return client


def _store(client: Client, location_id: str) -> Store:
    if location_id not in client.stores:
        raise Reject(JSONResponse({"status": 404, "message": f"Location {location_id} not found"}, 404))
    return client.stores[location_id]


def _location(client: Client, location_id: str) -> tuple[int, LocationSpec]:
    for n, loc in enumerate(client.spec.locations):
        if loc.location_id == location_id:
            return 101 + n, loc
    raise KeyError(location_id)


def rows(client: Client, location_id: str, item: Listing) -> list[dict]:
    p, store = item.p, client.stores[location_id]
    import_id, loc = _location(client, location_id)
    species = SPECIES.get(p.strain_type or "")
    if p.strain_lean:
        species = f"{p.strain_lean.title()}-dom"
    cannabinoids = [{"name": name, "lowerRange": rng[0], "upperRange": rng[1], "unitOfMeasure": p.potency_unit}
                    for name, rng in (("thc", p.thc), ("cbd", p.cbd)) if rng is not None]
    out = []
    for b, qty in zip(p.batches, batch_quantities(p, item.quantity)):
        out.append({
            "productId": uuid_id(store.seed, p.index), "variantId": uuid_id(store.seed + ":variant", p.index),
            "productName": f"{CATEGORY[p.category].upper()} - {p.name} {p.size} [{p.brand.upper()}]",
            "parentProductName": p.name, "brand": p.brand, "category": CATEGORY[p.category], "speciesName": species,
            "strainName": p.name if p.category in ("flower", "preroll", "vape", "concentrate") else None,
            "supplierName": f"{p.brand} Distribution", "sku": p.sku, "quantity": qty, "inventoryUnitOfMeasure": "units",
            "inventoryUnitOfMeasureToGramsMultiplier": p.weight if p.weight_unit == "g" else None,
            "productWeight": p.weight, "productUnitOfMeasure": p.weight_unit,
            "priceInMinorUnits": p.price_cents, "preTaxPriceInPennies": p.price_cents, "currencyCode": "USD",
            "cannabinoidInformation": cannabinoids, "expirationDate": b.expires.isoformat(),
            "packageId": b.compliance_id, "batchId": b.lot, "effects": list(p.effects), "flavors": list(p.flavors),
            "locationId": location_id, "importId": str(import_id), "locationName": loc.name,
            "clientId": client.spec.client_id, "productUpdatedAt": iso(item.updated_ms), "isActive": item.active,
        })
    return out


def _inventory(client: Client, location_ids: list[str], nonzero: bool) -> dict:
    data = []
    for location_id in location_ids:
        store = _store(client, location_id)
        for i in store.indices():
            item = store.listing(i)
            data.extend(r for r in rows(client, location_id, item) if not nonzero or r["quantity"] > 0)
    return {"status": 200, "data": data}


@router.get("/v0/clientsLocations")
def clients_locations(request: Request) -> dict:
    client = _auth(request)
    return {"status": 200, "data": [
        {"clientId": client.spec.client_id, "clientName": client.spec.name, "locationId": loc.location_id,
         "importId": str(101 + n), "locationName": loc.name, "licenseType": "adult-use",
         "timeZone": "America/Los_Angeles"}
        for n, loc in enumerate(client.spec.locations)]}


@router.get("/v0/locations/{location_id}/inventory")
def location_inventory(location_id: str, request: Request) -> dict:
    return _inventory(_auth(request), [location_id], nonzero=False)


@router.get("/v0/locations/{location_id}/inventoryNonZero")
def location_inventory_nonzero(location_id: str, request: Request) -> dict:
    return _inventory(_auth(request), [location_id], nonzero=True)


@router.get("/v0/inventory")
def all_inventory(request: Request) -> dict:
    client = _auth(request)
    return _inventory(client, list(client.stores), nonzero=False)


@router.get("/v0/inventoryNonZero")
def all_inventory_nonzero(request: Request) -> dict:
    client = _auth(request)
    return _inventory(client, list(client.stores), nonzero=True)


@router.get("/v1/customers/")
def customers(request: Request) -> dict:
    client = _auth(request)
    q = request.query_params
    try:
        page, size = int(q.get("page", 1)), int(q.get("page_size", 100))
    except ValueError:
        raise Reject(JSONResponse({"status": 400, "message": "page and page_size must be integers"}, 400))
    lo, hi = (parse_ms(q[k]) if k in q else None for k in ("created_after", "created_before"))
    hits = [c for c in client.people.customers()
            if (lo is None or c.created_ms > lo) and (hi is None or c.created_ms < hi)]
    if q.get("order_by", "asc") == "desc":
        hits.reverse()
    return {"status": 200, "data": [
        {"id": uuid_id(client.people.seed, c.index), "name": f"{c.first_name} {c.last_name}", "firstName": c.first_name,
         "lastName": c.last_name, "email": c.email, "phone": c.phone, "birthDate": c.birth_date.isoformat(),
         "gender": c.gender, "isMedical": c.medical_id is not None, "medicalId": c.medical_id,
         "loyaltyPoints": c.loyalty_points, "createdAt": iso(c.created_ms), "updatedAt": iso(c.updated_ms),
         "address": {"street1": c.street, "city": c.city, "state": c.state, "zip": c.postal_code}}
        for c in hits[(page - 1) * size: page * size]]}


@router.post("/order-ahead/v0/create")
async def create_order(request: Request) -> dict:
    client = _auth(request)
    try:
        body = json.loads(await request.body())
        store = _store(client, body["locationId"])
        items = list(body["items"])
    except (ValueError, KeyError, TypeError):
        raise Reject(JSONResponse({"status": 400, "message": "locationId and items are required"}, 400))
    for line in items:
        i = index_of(str(line.get("productId", "")), store.seed, uuid_id)
        if i is None or not store.exists(i) or not store.listing(i).active:
            raise Reject(JSONResponse({"status": 400, "message": f"Unknown productId {line.get('productId')}"}, 400))
    order = {"orderId": str(uuid.uuid4()), "status": "pending", "locationId": body["locationId"],
             "customerId": body.get("customerId"), "items": items, "createdAt": iso(int(time.time() * 1000))}
    client.orders.append(order)
    return {"status": 200, "data": {"orderId": order["orderId"], "status": "pending"}}


@router.get("/order-ahead/v0/orderStatus/{order_id}")
def order_status(order_id: str, request: Request) -> dict:
    client = _auth(request)
    for order in client.orders:
        if order["orderId"] == order_id:
            return {"status": 200, "data": {"orderId": order_id, "status": order["status"]}}
    raise Reject(JSONResponse({"status": 404, "message": "Order not found"}, 404))


# -- control --------------------------------------------------------------------------
def _rows(at: tuple[Client, str], item: Listing) -> list[dict]:
    return rows(*at, item)


def _fire(at: tuple[Client, str], item: Listing) -> None:
    client, location_id = at
    body = {"event": "inventory.updated", "clientId": client.spec.client_id, "locationId": location_id,
            "data": rows(client, location_id, item)}
    WEBHOOKS.deliver(client.webhook, body, "key", event="inventory.updated", location_id=location_id)


CONTROL = PosControl(control, CLIENTS, Client, lambda spec: spec.client_id, noun="client", limits=LIMITS,
                     defaults=DEFAULT_LIMITS, limiter=WINDOW, webhooks=WEBHOOKS)
CONTROL.account_collection("/clients", ClientSpec)
CONTROL.limits_route()
CONTROL.product_routes("/locations/{location_id}/products/{product_id}", CONTROL.in_location(uuid_id), _rows,
                       notify=_fire, deleted=deletion("productId", "isActive"), reply_type=list[dict])
CONTROL.account_routes("/clients/{client_id}", webhook=True, orders=lambda client: client.orders)
CONTROL.deliveries_route()


def reset() -> None:
    locations = [LocationSpec(location_id="b9d2a82b-9c98-4f18-95f3-000000000001", name="Storehouse Demo Portland"),
                 LocationSpec(location_id="b9d2a82b-9c98-4f18-95f3-000000000002", name="Storehouse Demo Eugene",
                              products=60)]
    CONTROL.reset(ClientSpec(client_id="flowhub-demo-client", key="flowhub-demo-key", name="Storehouse Demo Co",
                             locations=locations))


reset()
