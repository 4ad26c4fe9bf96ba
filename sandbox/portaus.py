"""Portaus fake (`/portaus/...`): SAQ (Québec) alcohol catalog, customers, branches, payments.

* Auth: every call sends header ``apikey: <JWT>``, an HS256 JWT signed with the tenant's JWT
  secret whose payload is ``{"API_KEY": "<key>"}`` (``iat``/``exp`` optional, ``exp`` enforced).
  ``Authorization: Bearer <JWT>`` is accepted too. Anything else: 401 ``{"message": ...}``.
* ``GET /API/latest/admin/inventories/{inventoryId}/products?limit=50&page=1&orderBy=age|name|
  updatedAt|createdAt&direction=ASC|DESC&active=&available=`` -> ``{"list", "count", "pages",
  "page"}`` (pages from 1, limit <= 100). SAQ fields: ``sku`` = SAQ code, ``name``, ``category``
  /``specificCategory`` {id, code, name}, ``volume`` (ml) + ``format`` 1 (ml) + ``lblFormat``
  "750 ml", alcohol % as a *string* in ``item.extraInfo.alcohol``, ``pricing.price`` (CAD,
  dollars), ``originCountry``, ``quantity`` {total, packaged, onHand}, ``uvc`` (bottles/case),
  ``updatedAt``. Incremental reads: ``orderBy=updatedAt&direction=DESC`` until older than the
  bookmark (there is no updated-since filter).
* ``GET /API/v1/admin/customers?limit=&page=&orderBy=createdAt&direction=DESC`` -> same envelope.
* ``GET /api/v1/saq-branches`` (also ``/API/latest/admin/saq-branches``) -> array of branches.
* ``POST /api/v1/payments/intents`` {amount (cents) or total (dollars), currency, customer,
  reference} -> 201 ``{"id", "status": "requires_payment_method", "amount", "currency",
  "reference", "clientSecret", "redirectUrl"}``; the same reference again answers 200 with the
  same intent, or 409 if amount/currency differ.
* No rate limit is documented; the shared fault switches give 429/5xx/outages.
* Golden SAQ product (index 0): code 00369405 "Mouton Cadet Bordeaux 2021", Vin rouge, 750 ml,
  13.5 %, 17.95 CAD, France/Bordeaux, 36 bottles, 12 per case.

Control (``/_sandbox/portaus``): ``POST /tenants`` {api_key, jwt_secret, name, products,
customers}; ``GET /tenants``; ``POST /tenants/{api_key}/token`` (mint a valid JWT); ``POST
/tenants/{api_key}/products/{puid}/stock`` {quantity}; ``DELETE
/tenants/{api_key}/products/{puid}?hard=false``; ``GET /tenants/{api_key}/payment-intents``;
``POST /payment-intents/{id}/status`` {status}.

Demo tenant after reset: API key ``portaus-demo-key``, JWT secret ``portaus-demo-jwt-secret-0000000000``
(150 products, 40 customers); second tenant ``portaus-demo-key-2`` / ``portaus-demo-jwt-secret-2-000000000``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

import jwt
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from sandbox.pos_catalog import BASE_MS, Listing, Store, iso, uuid_id
from sandbox.pos_control import PosControl
from sandbox.pos_http import Reject, RejectRoute

NAME = "portaus"
KINDS = [  # category code, name, specific, volumes, alcohol range, price range (cents)
    ("VR", "Vin rouge", "Vin rouge sec", [750], (12.0, 15.0), (1295, 8900)),
    ("VB", "Vin blanc", "Vin blanc sec", [750], (11.0, 14.0), (1295, 6500)),
    ("VO", "Vin rosé", "Vin rosé", [750], (11.5, 13.5), (1395, 3500)),
    ("MO", "Vin mousseux", "Champagne", [750], (11.5, 12.5), (1795, 12000)),
    ("BI", "Bière", "Bière blonde", [473, 355], (4.5, 8.0), (299, 599)),
    ("SP", "Spiritueux", "Whisky écossais", [750, 1140], (40.0, 46.0), (3200, 15000)),
]
COUNTRIES = [("France", "FR", "Bordeaux"), ("Italie", "IT", "Toscane"), ("Espagne", "ES", "Rioja"),
             ("Canada", "CA", "Québec"), ("Portugal", "PT", "Douro"), ("Chili", "CL", "Valle Central")]
WORDS = ["Château", "Domaine", "Clos", "Cuvée", "Réserve", "Terre", "Vallée", "Cave", "Maison", "Collection"]
NAMES = ["des Pins", "du Lac", "Saint-Jean", "Belle Rive", "Les Collines", "Montagne", "du Soleil", "Vieilles Vignes"]
BRANCHES = [("23012", "SAQ Sélection Laurier", "Québec", "2600 boul. Laurier", "418 651-3700"),
            ("23033", "SAQ Signature Montréal", "Montréal", "677 rue Sainte-Catherine O.", "514 282-9445"),
            ("23140", "SAQ Express Mont-Royal", "Montréal", "1047 av. du Mont-Royal E.", "514 521-6351"),
            ("23325", "SAQ Sélection Sherbrooke", "Sherbrooke", "3950 rue King O.", "819 563-3350"),
            ("23420", "SAQ Dépôt Gatineau", "Gatineau", "1100 boul. Maloney O.", "819 246-4747")]


@dataclass(frozen=True, slots=True)
class SaqProduct:
    index: int
    code: str
    name: str
    kind: tuple
    volume_ml: int
    alcohol: float
    price_cents: int
    country: tuple[str, str, str]
    vintage: str | None
    quantity: int
    uvc: int


@lru_cache(maxsize=8192)
def make_saq(seed: str, i: int) -> SaqProduct:
    if i == 0:
        return SaqProduct(0, "00369405", "Mouton Cadet Bordeaux 2021", KINDS[0], 750, 13.5, 1795, COUNTRIES[0], "2021",
                          36, 12)
    r = random.Random(f"{seed}:saq:{i}")
    kind = r.choices(KINDS, [30, 20, 8, 8, 14, 20])[0]
    vintage = str(r.randrange(2015, 2024)) if kind[0] in ("VR", "VB", "VO") else None
    name = f"{r.choice(WORDS)} {r.choice(NAMES)}" + (f" {vintage}" if vintage else "")
    return SaqProduct(i, f"{int(hashlib.sha1(f'{seed}:{i}'.encode()).hexdigest()[:7], 16) % 10**8:08d}", name, kind,
                      r.choice(kind[3]), round(r.uniform(*kind[4]), 1), r.randrange(kind[5][0], kind[5][1], 5),
                      r.choice(COUNTRIES), vintage, r.randrange(0, 240), r.choice([6, 12, 24]))


class TenantSpec(BaseModel):
    api_key: str
    jwt_secret: str
    name: str = "Importation privée"
    products: int = Field(150, ge=1, le=1_000_000)
    customers: int = Field(40, ge=0, le=1_000_000)


class Tenant:
    def __init__(self, spec: TenantSpec) -> None:
        self.spec = spec
        self.store = Store(f"portaus:{spec.api_key}", spec.products, spec.customers, factory=make_saq)
        self.intents: dict[str, dict] = {}


router = APIRouter(route_class=RejectRoute)
control = APIRouter()
TENANTS: dict[str, Tenant] = {}


def _unauthorized(message: str) -> Reject:
    return Reject(JSONResponse({"message": message, "error": "Unauthorized"}, 401))


def _auth(request: Request) -> Tenant:
    token = request.headers.get("apikey") or ""
    if not token and request.headers.get("authorization", "").lower().startswith("bearer "):
        token = request.headers["authorization"][7:]
    if not token:
        raise _unauthorized("Missing apikey header")
    try:
        claimed = jwt.decode(token, options={"verify_signature": False}).get("API_KEY")
        tenant = TENANTS.get(str(claimed).strip())
        if tenant is None:
            raise _unauthorized("Unknown API key")
        jwt.decode(token, tenant.spec.jwt_secret, algorithms=["HS256"])
    except jwt.PyJWTError as e:
        raise _unauthorized(f"Invalid apikey token: {e}")
    return tenant


def _paging(request: Request) -> tuple[int, int]:
    try:
        page, limit = int(request.query_params.get("page", 1)), int(request.query_params.get("limit", 50))
    except ValueError:
        raise Reject(JSONResponse({"message": "page and limit must be integers"}, 400))
    return max(1, page), max(1, min(limit, 100))


def _envelope(rows: list, page: int, limit: int, render) -> dict:
    return {"list": [render(r) for r in rows[(page - 1) * limit: page * limit]], "count": len(rows),
            "pages": math.ceil(len(rows) / limit), "page": page}


def render(t: Tenant, item: Listing) -> dict:
    p: SaqProduct = item.p
    code, cat, specific = p.kind[0], p.kind[1], p.kind[2]
    price = p.price_cents / 100
    quantity = {"total": item.quantity, "packaged": item.quantity, "onHand": item.quantity}
    return {
        "rank": str(p.index), "puid": uuid_id(t.store.seed, p.index), "puidPublished": True, "id": 1000 + p.index,
        "inventory": {"id": 1, "name": t.spec.name, "code": "IP", "portausCompanyId": 1, "default": True},
        "quantity": quantity, "externalId": None, "sku": p.code, "name": p.name, "type": 0, "shortDescription": None,
        "description": f"{cat} — {p.country[0]}", "returnable": False, "unit": 0, "uvc": p.uvc, "volume": p.volume_ml,
        "format": 1, "lblFormat": f"{p.volume_ml} ml", "cmsName": p.name, "published": True, "slug": f"saq-{p.code}",
        "active": item.active, "available": item.active and item.quantity > 0, "taxable": True,
        "purchaseUnitPrice": round(price * 0.6, 2), "sellingUnitPrice": price, "marginRate": 0.4,
        "tags": [{"id": 1, "code": code}], "category": {"id": ord(code[0]), "code": code, "name": cat},
        "specificCategory": {"id": ord(code[1]), "code": code + "S", "name": specific},
        "origins": [{"id": 1, "country": {"id": 1, "code": p.country[1], "name": p.country[0]},
                     "region": {"id": 1, "name": p.country[2]}}],
        "item": {"id": 50_000 + p.index, "qty": item.quantity, "price": price, "priceTaxIn": round(price * 1.14975, 2),
                 "puid": uuid_id(t.store.seed + ":item", p.index), "active": item.active, "quantity": quantity,
                 "extraInfo": {"alcohol": f"{p.alcohol:g}", "vintage": p.vintage, "color": None}},
        "pricing": {"price": price, "agencyFee": 0, "priceTaxIn": round(price * 1.14975, 2), "agencyFeeWTaxes": 0,
                    "sellingUnitPrice": price},
        "extendedName": f"{p.name} {p.volume_ml} ml", "currentVintage": p.vintage or "",
        "originCountry": p.country[0], "originRegion": p.country[2], "originCity": None,
        "createdAt": iso(BASE_MS - 86_400_000 * 30 + p.index * 60_000), "updatedAt": iso(item.updated_ms),
    }


@router.get("/API/latest/admin/inventories/{inventory_id}/products")
def products(inventory_id: int, request: Request) -> dict:
    t = _auth(request)
    page, limit = _paging(request)
    q = request.query_params
    rows = [t.store.listing(i) for i in t.store.indices()] if inventory_id == 1 else []
    if "active" in q:
        rows = [r for r in rows if r.active == (q["active"] == "true")]
    if "available" in q:
        rows = [r for r in rows if (r.active and r.quantity > 0) == (q["available"] == "true")]
    keys = {"name": lambda r: r.p.name.lower(), "updatedAt": lambda r: r.updated_ms}
    descending = q.get("direction", "ASC").upper() == "DESC"
    rows.sort(key=keys.get(q.get("orderBy", "age"), lambda r: r.p.index), reverse=descending)
    return _envelope(rows, page, limit, lambda r: render(t, r))


def _customer(t: Tenant, c) -> dict:
    addresses = [{"id": c.index * 2 + k, "type": {"code": code}, "street": c.street, "city": c.city,
                  "state": {"isoCode": c.state}, "country": {"isoCode": "US"}, "postalCode": c.postal_code}
                 for k, code in enumerate(("BILLING", "PRINCIPAL"))]
    return {"id": 3000 + c.index, "type": 0, "active": True, "number": f"C{3000 + c.index}",
            "contact": {"firstName": c.first_name, "lastName": c.last_name, "email": c.email, "phone": c.phone,
                        "addresses": addresses},
            "createdAt": iso(c.created_ms), "updatedAt": iso(c.updated_ms)}


@router.get("/API/v1/admin/customers")
def customers(request: Request) -> dict:
    t = _auth(request)
    page, limit = _paging(request)
    people = t.store.customers()
    if request.query_params.get("orderBy", "createdAt") in ("createdAt", "updatedAt"):
        field = "created_ms" if request.query_params.get("orderBy", "createdAt") == "createdAt" else "updated_ms"
        descending = request.query_params.get("direction", "DESC").upper() == "DESC"
        people.sort(key=lambda c: getattr(c, field), reverse=descending)
    return _envelope(people, page, limit, lambda c: _customer(t, c))


@router.get("/api/v1/saq-branches")
@router.get("/API/latest/admin/saq-branches")
def saq_branches(request: Request) -> list[dict]:
    _auth(request)
    return [{"number": n, "name": name, "city": city, "address": address, "phone": phone}
            for n, name, city, address, phone in BRANCHES]


@router.post("/api/v1/payments/intents")
@router.post("/api/v1/payments/intents/")
async def payment_intent(request: Request):
    t = _auth(request)
    try:
        body = json.loads(await request.body())
        amount = int(body["amount"]) if "amount" in body else round(float(body["total"]) * 100)
        reference = str(body["reference"])
    except (ValueError, KeyError, TypeError):
        raise Reject(JSONResponse({"message": "reference and amount (or total) are required"}, 400))
    currency = str(body.get("currency", "cad")).lower()
    if amount <= 0:
        raise Reject(JSONResponse({"message": "amount must be positive"}, 400))
    existing = t.intents.get(reference)
    if existing is not None:
        if (existing["amount"], existing["currency"]) != (amount, currency):
            message = f"reference {reference} was already used with other parameters"
            raise Reject(JSONResponse({"message": message}, 409))
        return existing
    pid = "pi_" + hashlib.sha1(f"{t.spec.api_key}:{reference}".encode()).hexdigest()[:24]
    intent = {"id": pid, "status": "requires_payment_method", "amount": amount, "currency": currency,
              "reference": reference, "customer": body.get("customer"), "branch": body.get("branch"),
              "clientSecret": f"{pid}_secret_{secrets.token_hex(8)}",
              "redirectUrl": f"{request.base_url}portaus/pay/{pid}",
              "createdAt": iso(int(time.time() * 1000))}
    t.intents[reference] = intent
    return JSONResponse(intent, 201)


# -- control --------------------------------------------------------------------------
class Status(BaseModel):
    status: str


CONTROL = PosControl(control, TENANTS, Tenant, lambda spec: spec.api_key, noun="tenant")
CONTROL.account_collection("/tenants", TenantSpec)


@control.post("/tenants/{api_key}/token")
def mint_token(api_key: str) -> dict:
    return {"token": jwt.encode({"API_KEY": api_key}, CONTROL.account(api_key).spec.jwt_secret, algorithm="HS256")}


CONTROL.product_routes("/tenants/{api_key}/products/{puid}", CONTROL.in_account(maker=uuid_id), render)


@control.get("/tenants/{api_key}/payment-intents")
def intents(api_key: str) -> list[dict]:
    return list(CONTROL.account(api_key).intents.values())


@control.post("/payment-intents/{intent_id}/status")
def set_status(intent_id: str, status: Status) -> dict:
    for t in TENANTS.values():
        for intent in t.intents.values():
            if intent["id"] == intent_id:
                intent["status"] = status.status
                return intent
    raise HTTPException(404, f"no payment intent {intent_id}")


def reset() -> None:
    CONTROL.reset(TenantSpec(api_key="portaus-demo-key", jwt_secret="portaus-demo-jwt-secret-0000000000"),
                  TenantSpec(api_key="portaus-demo-key-2", jwt_secret="portaus-demo-jwt-secret-2-000000000",
                             products=40, customers=10))


reset()
