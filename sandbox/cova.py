"""COVA fake (`/cova/...`), after api.covasoft.net (field names of responses are modelled).

* ``POST /cova/v1/oauth2/token`` form ``grant_type=password, username, password, client_id,
  client_secret`` -> ``{"access_token", "token_type": "bearer", "expires_in": 43200, ...}``
  (12 h); OAuth errors are 400 ``{"error": "invalid_grant" | "invalid_client" | ...}``. Then
  ``Authorization: Bearer <token>``; the token only opens its own company.
* ``POST /cova/dataplatform/v1/companies/{companyId}/DetailedProductData`` with
  ``{LocationId, IncludeAvailability, IncludePackageDetails, IncludePricing,
  IncludeProductSpecifications, InStockOnly, SellingRoomOnly, Skip, Top}`` -> ``{"Products":
  [...]}``; page with Skip/Top until fewer than Top come back (no total; Top <= 500).
  ``.../DetailedProductData/UpdatedAsOf/{utc}`` is the incremental feed (changed after ``utc``,
  deleted products included with ``IsDeleted: true``); ``.../DetailedProductData/ByProductIdList``
  adds ``ProductIds``.
* Products: ``Name`` "Cresco - Blue Dream (3.5g)", ``ClassificationName`` "Dried Flower";
  ``Specifications[{Name, Fields[{DisplayName, Value, Unit}]}]`` carry values as strings, with
  THC/CBD of smokables in ``mg/g`` (22.5 % -> "225") and of edibles etc. in ``mg``;
  ``Availability[{LocationId, InStockQuantity, SellingRoomQuantity}]``, ``Prices[{LocationId,
  RegularPrice}]``, ``Packages[{PackageId, LotNumber, ExpiryDate, Quantity}]``.
* ``GET /cova/customers/v1/Companies({companyId})/CustomerFull?$skip=&$top=`` -> array.
* ``PUT /cova/covaorderintake/v1/TIPCovaOrder({orderId})`` (or ``TEPCovaOrder``) with
  ``IntegratorId`` required; re-sending an orderId replaces it.
* Per-service 60 s windows (token, dataplatform, customers, orderintake; 100 calls modelled) with
  ``COVA-APIM-RateLimit-Limit`` on every response; over it 429 ``{"statusCode": 429,
  "message": "Rate limit is exceeded. Try again in N seconds."}`` + ``Retry-After``.
* Webhooks (modelled, unsigned): stock changes POST ``{"EventType": "ProductUpdated",
  "CompanyId", "LocationId", "Product"}``; a registered ``secret`` goes in ``Authorization``.

Control (``/_sandbox/cova``): ``POST /companies`` {company_id, client_id, client_secret, username,
password, customers, locations: [{location_id, name, products}]}; ``GET /companies``; ``PUT
/limits`` {calls, window_s, token_ttl_s, max_top}; ``POST
/locations/{location_id}/products/{product_id}/stock`` {quantity}; ``DELETE
/locations/{location_id}/products/{product_id}?hard=false``; ``PUT /companies/{company_id}/webhook``
{url, secret}; ``GET /companies/{company_id}/orders``; ``POST /companies/{company_id}/expire-tokens``;
``GET /webhooks``.

Demo after reset: company 12345, client ``cova-demo-client``/``cova-demo-secret``, user
``demo@storehouse.test``/``cova-demo-password``; locations 201 (200 products) and 202 (60
products); 40 customers.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from sandbox.pos_catalog import Listing, Store, batch_quantities, index_of, iso, parse_ms, uuid_id
from sandbox.pos_control import PosControl
from sandbox.pos_http import Reject, RejectRoute, WebhookLog, Window

NAME = "cova"
CLASSIFICATION = {"flower": "Dried Flower", "preroll": "Pre-Rolls", "vape": "Vapes", "concentrate": "Extracts",
                  "edible": "Edibles", "tincture": "Oils", "topical": "Topicals", "beverage": "Beverages",
                  "accessory": "Accessories"}
STRAIN = {"indica": "Indica", "sativa": "Sativa", "hybrid": "Hybrid", "cbd": "CBD"}
DEFAULT_LIMITS = {"calls": 100, "window_s": 60, "token_ttl_s": 43200, "max_top": 500}
DATA = "/dataplatform/v1/companies/{company_id}/DetailedProductData"

router = APIRouter(route_class=RejectRoute)
control = APIRouter()
LIMITS = dict(DEFAULT_LIMITS)
WINDOW = Window()
WEBHOOKS = WebhookLog()
COMPANIES: dict[int, "Company"] = {}


class LocationSpec(BaseModel):
    location_id: int
    name: str = "Sandbox Store"
    products: int = Field(200, ge=1, le=100_000)


class CompanySpec(BaseModel):
    company_id: int
    client_id: str
    client_secret: str
    username: str
    password: str
    customers: int = Field(40, ge=0, le=1_000_000)
    locations: list[LocationSpec]


class Company:
    def __init__(self, spec: CompanySpec) -> None:
        self.spec = spec
        self.stores = {loc.location_id: Store(f"cova:{loc.location_id}", loc.products, 0) for loc in spec.locations}
        self.people = Store(f"cova:{spec.company_id}", 1, spec.customers)
        self.tokens: dict[str, float] = {}
        self.orders: dict[str, dict] = {}
        self.webhook: dict | None = None


def _limit(key: str, response: Response | None = None) -> None:
    limit = int(LIMITS["calls"])
    wait = WINDOW.hit(key, limit, float(LIMITS["window_s"]))
    if wait:
        seconds = str(math.ceil(wait))
        body = {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {seconds} seconds."}
        raise Reject(JSONResponse(body, 429, headers={"Retry-After": seconds, "COVA-APIM-RateLimit-Limit": str(limit)}))
    if response is not None:
        response.headers["COVA-APIM-RateLimit-Limit"] = str(limit)


def _auth(request: Request, response: Response, company_id: int, service: str) -> Company:
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else ""
    owner = next((c for c in COMPANIES.values() if token in c.tokens), None)
    if owner is None or owner.tokens[token] < time.time():
        body = {"statusCode": 401, "message": "Access denied due to invalid or expired token."}
        raise Reject(JSONResponse(body, 401))
    if owner.spec.company_id != company_id:
        raise Reject(JSONResponse({"statusCode": 403, "message": "Token is not valid for this company."}, 403))
    _limit(f"{company_id}:{service}", response)
    return owner


def _oauth_error(code: str, description: str) -> Reject:
    return Reject(JSONResponse({"error": code, "error_description": description}, 400))


@router.post("/v1/oauth2/token")
async def token(request: Request, response: Response) -> dict:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    company = next((c for c in COMPANIES.values() if c.spec.client_id == form.get("client_id")), None)
    _limit(f"token:{form.get('client_id')}", response)
    if company is None or form.get("client_secret") != company.spec.client_secret:
        raise _oauth_error("invalid_client", "The client credentials are invalid.")
    if form.get("grant_type") != "password":
        raise _oauth_error("unsupported_grant_type", "grant_type must be password.")
    if form.get("username") != company.spec.username or form.get("password") != company.spec.password:
        raise _oauth_error("invalid_grant", "The user name or password is incorrect.")
    access = secrets.token_urlsafe(32)
    company.tokens[access] = time.time() + LIMITS["token_ttl_s"]
    return {"access_token": access, "token_type": "bearer", "expires_in": int(LIMITS["token_ttl_s"]),
            "refresh_token": secrets.token_urlsafe(24)}


def _num(x: float) -> str:
    return f"{round(x, 3):g}"


def render(company: Company, location_id: int, item: Listing, body: dict) -> dict:
    p, store = item.p, company.stores[location_id]
    out = {"ProductId": uuid_id(store.seed, p.index), "CatalogItemId": uuid_id(store.seed + ":catalog", p.index),
           "Name": f"{p.brand} - {p.name} ({p.size})", "Sku": p.sku, "Brand": p.brand,
           "ClassificationId": list(CLASSIFICATION).index(p.category) + 1,
           "ClassificationName": CLASSIFICATION[p.category],
           "LongDescription": p.description, "IsCannabis": p.category != "accessory", "IsActive": item.active,
           "IsDeleted": item.deleted, "UpdatedDateUtc": iso(item.updated_ms, millis=False)}
    per_g = p.potency_unit == "%"
    if body.get("IncludeProductSpecifications"):
        fields = [("Strain", p.name, None), ("Net Weight", _num(p.weight), p.weight_unit),
                  ("Effects", ", ".join(p.effects), None), ("Flavours", ", ".join(p.flavors), None)]
        if p.strain_type:
            lean = f"{p.strain_lean.title()} Dominant Hybrid" if p.strain_lean else STRAIN[p.strain_type]
            fields.append(("Strain Type", lean, None))
        for name, rng in (("THC", p.thc), ("CBD", p.cbd)):
            if rng is not None:
                unit = "mg/g" if per_g else "mg"
                fields += [(f"{name} Min", _num(rng[0] * 10 if per_g else rng[0]), unit),
                           (f"{name} Max", _num(rng[1] * 10 if per_g else rng[1]), unit)]
        out["Specifications"] = [{"Name": "Cannabis",
                                  "Fields": [{"DisplayName": n, "Value": v, "Unit": u} for n, v, u in fields]}]
    if body.get("IncludeAvailability"):
        out["Availability"] = [{"LocationId": location_id, "InStockQuantity": item.quantity,
                                "SellingRoomQuantity": item.quantity, "OnOrderQuantity": 0}]
    if body.get("IncludePricing"):
        out["Prices"] = [{"LocationId": location_id, "RegularPrice": p.price_cents / 100, "AtTierPrice": None}]
    if body.get("IncludePackageDetails"):
        out["Packages"] = [{"PackageId": b.compliance_id, "LotNumber": b.lot,
                            "ExpiryDate": f"{b.expires.isoformat()}T00:00:00",
                            "PackagedDate": f"{b.packaged.isoformat()}T00:00:00", "Quantity": q}
                           for b, q in zip(p.batches, batch_quantities(p, item.quantity))]
    return out


async def _query(request: Request, response: Response, company_id: int) -> tuple[Company, int, dict, int, int]:
    company = _auth(request, response, company_id, "dataplatform")
    try:
        body = json.loads(await request.body())
        location_id = int(body["LocationId"])
        skip, top = int(body.get("Skip", 0)), int(body.get("Top", 100))
    except (ValueError, KeyError, TypeError):
        raise Reject(JSONResponse({"Message": "LocationId is required; Skip and Top must be integers."}, 400))
    if location_id not in company.stores:
        raise Reject(JSONResponse({"Message": f"Location {location_id} not found for company {company_id}."}, 404))
    if skip < 0 or not 1 <= top <= LIMITS["max_top"]:
        message = f"Skip must be >= 0 and Top between 1 and {int(LIMITS['max_top'])}."
        raise Reject(JSONResponse({"Message": message}, 400))
    return company, location_id, body, skip, top


def _products(company: Company, location_id: int, body: dict, indices: list[int], skip: int, top: int) -> dict:
    store = company.stores[location_id]
    items = (store.listing(i) for i in indices)
    if body.get("InStockOnly") or body.get("SellingRoomOnly"):
        items = (item for item in items if item.quantity > 0)
    chosen = list(items)[skip:skip + top]
    return {"Products": [render(company, location_id, item, body) for item in chosen]}


@router.post(DATA)
async def detailed_product_data(company_id: int, request: Request, response: Response) -> dict:
    company, location_id, body, skip, top = await _query(request, response, company_id)
    return _products(company, location_id, body, company.stores[location_id].indices(), skip, top)


@router.post(DATA + "/UpdatedAsOf/{updated_as_of}")
async def updated_as_of(company_id: int, updated_as_of: str, request: Request, response: Response) -> dict:
    company, location_id, body, skip, top = await _query(request, response, company_id)
    since = parse_ms(updated_as_of)
    if since is None:
        raise Reject(JSONResponse({"Message": f"'{updated_as_of}' is not a valid UTC date."}, 400))
    changed = company.stores[location_id].updated_since(since, include_deleted=True)
    return _products(company, location_id, body, changed, skip, top)


@router.post(DATA + "/ByProductIdList")
async def by_product_ids(company_id: int, request: Request, response: Response) -> dict:
    company, location_id, body, skip, top = await _query(request, response, company_id)
    store = company.stores[location_id]
    wanted = [index_of(str(pid), store.seed, uuid_id) for pid in body.get("ProductIds") or []]
    return _products(company, location_id, body, [i for i in wanted if i is not None and store.exists(i)], skip, top)


@router.get("/customers/v1/Companies({company_id})/CustomerFull")
def customers(company_id: int, request: Request, response: Response) -> list[dict]:
    company = _auth(request, response, company_id, "customers")
    try:
        skip, top = int(request.query_params.get("$skip", 0)), int(request.query_params.get("$top", 100))
    except ValueError:
        raise Reject(JSONResponse({"Message": "$skip and $top must be integers."}, 400))
    people = company.people.customers()[max(0, skip):max(0, skip) + max(1, min(top, 1000))]
    return [{"Id": uuid_id(company.people.seed, c.index), "FirstName": c.first_name, "LastName": c.last_name,
             "PrimaryName": f"{c.first_name} {c.last_name}", "Email": c.email, "Phone": c.phone,
             "DateOfBirth": f"{c.birth_date.isoformat()}T00:00:00", "Gender": c.gender, "MedicalId": c.medical_id,
             "Addresses": [{"AddressLine1": c.street, "City": c.city, "StateCode": c.state, "Zip": c.postal_code,
                            "CountryCode": "US"}],
             "CreatedDateUtc": iso(c.created_ms, millis=False), "LastModifiedDateUtc": iso(c.updated_ms, millis=False)}
            for c in people]


async def _intake(kind: str, order_id: str, request: Request, response: Response) -> dict:
    try:
        body = json.loads(await request.body())
        company_id = int(body["CompanyId"])
    except (ValueError, KeyError, TypeError):
        raise Reject(JSONResponse({"Message": "CompanyId is required."}, 400))
    company = _auth(request, response, company_id, "orderintake")
    if not body.get("IntegratorId"):
        raise Reject(JSONResponse({"Message": "IntegratorId is required."}, 400))
    company.orders[order_id] = {"OrderId": order_id, "Type": kind, "ReceivedUtc": iso(int(time.time() * 1000)),
                                "Order": body}
    return {"OrderId": order_id, "Status": "Received"}


@router.put("/covaorderintake/v1/TIPCovaOrder({order_id})")
async def tip_order(order_id: str, request: Request, response: Response) -> dict:
    return await _intake("TIP", order_id, request, response)


@router.put("/covaorderintake/v1/TEPCovaOrder({order_id})")
async def tep_order(order_id: str, request: Request, response: Response) -> dict:
    return await _intake("TEP", order_id, request, response)


# -- control --------------------------------------------------------------------------
FULL = dict.fromkeys(("IncludeAvailability", "IncludePricing", "IncludePackageDetails", "IncludeProductSpecifications"),
                     True)


def _product(at: tuple[Company, int], item: Listing) -> dict:
    return render(*at, item, FULL)


def _fire(at: tuple[Company, int], item: Listing) -> None:
    company, location_id = at
    body = {"EventType": "ProductUpdated", "CompanyId": company.spec.company_id, "LocationId": location_id,
            "Product": _product(at, item)}
    WEBHOOKS.deliver(company.webhook, body, "Authorization", event="ProductUpdated", location_id=location_id)


CONTROL = PosControl(control, COMPANIES, Company, lambda spec: spec.company_id, noun="company",
                     types={"location_id": int, "company_id": int}, limits=LIMITS, defaults=DEFAULT_LIMITS,
                     limiter=WINDOW, webhooks=WEBHOOKS)
CONTROL.account_collection("/companies", CompanySpec)
CONTROL.limits_route()
CONTROL.product_routes("/locations/{location_id}/products/{product_id}", CONTROL.in_location(uuid_id), _product,
                       notify=_fire)
CONTROL.account_routes("/companies/{company_id}", webhook=True, orders=lambda company: list(company.orders.values()),
                       expire_tokens=True)
CONTROL.deliveries_route()


def reset() -> None:
    locations = [LocationSpec(location_id=201, name="Storehouse Demo Vancouver"),
                 LocationSpec(location_id=202, name="Storehouse Demo Victoria", products=60)]
    CONTROL.reset(CompanySpec(company_id=12345, client_id="cova-demo-client", client_secret="cova-demo-secret",
                              username="demo@storehouse.test", password="cova-demo-password", locations=locations))


reset()
