"""Fake Airalo Partner API v2, mounted at ``/airalo`` (real: ``https://partners-api.airalo.com``).

Wire format (Airalo's SDK and partner docs, [v]; error bodies other than 404/429 are [u]):

* ``POST /v2/token``, form-urlencoded (JSON accepted) ``client_id, client_secret,
  grant_type=client_credentials`` → ``{data: {token_type, expires_in, access_token}, meta}``.
  Limited to 3 requests a minute per client: cache the token (it lives 24 h).
* Other calls: ``Authorization: Bearer <token>``; otherwise 401 ``{data: [], meta: {message}}``.
* ``GET /v2/packages?filter[type]=local|global&filter[country]=JP&limit=&page=`` → ``data[]``
  (country or region) → ``operators[]`` → ``packages[]`` (``id`` slug, ``amount`` MB, ``day``,
  ``is_unlimited``, ``price``, ``net_price``…) plus ``links`` and ``meta{current_page, from,
  last_page, path, per_page, to, total}``; pages count ``data[]`` entries, ``limit`` defaults to
  10 ([u]). 80 requests a minute per token.
* ``POST /v2/orders`` (JSON or form) ``{package_id, quantity 1–50, type: "sim", description}`` →
  ``data{id, code, package_id, quantity, price, sims[{id, iccid, lpa, matching_id, qrcode
  ("LPA:1$…"), qrcode_url, …}]}``. Validation errors: 422 ``{data: {field: msg}, meta}``;
  business errors: 422 ``{code, reason}`` with code 33 = out of stock, 11 = insufficient credit.
* ``GET /v2/orders?filter[description]=&filter[code]=&filter[iccid]=&include=sims,status&limit=&page=``
  → the account's orders, newest first, paged as packages are; each text filter is a LIKE
  ``'%value%'`` search, and ``sims``/``status`` appear only when included ("Get order list",
  developers.partners.airalo.com/get-order-list-11883022e0, [v]).
* ``GET /v2/orders/{id}``; ``GET /v2/sims/{iccid}/usage`` → ``data{remaining, total (MB),
  expired_at, is_unlimited, status ∈ NOT_ACTIVE|ACTIVE|FINISHED|EXPIRED, …}`` (10 a minute per
  ICCID); unknown → 404 ``{"data": [], "meta": {"message": "messages.resource_not_found"}}``.
* Over a limit: 429 ``{"message": "Too Many Attempts."}`` with ``Retry-After`` and
  ``X-RateLimit-Limit/Remaining/Reset``. Limits (buckets ``token``, ``packages``, ``usage``) are
  changed with ``PUT /_sandbox/airalo/limits``.

Idempotency, as at the real API: none. An order repeating an earlier ``description`` buys again;
the description is only what the order list can be searched by.

QR images behind ``qrcode_url`` are served at ``GET /airalo/qr/{sim id}.png``; other asset URLs
point at the unserved ``*.airalo.test``. Demo accounts after reset (client_id / client_secret):
``airalo-demo-client`` / ``airalo-demo-secret``, ``airalo-shop2-client`` / ``airalo-shop2-secret``.
Control routes: ``sandbox.esim_control.control_router`` with fields ``client_id``, ``client_secret``.
"""

from __future__ import annotations

import json
import math
import random
import time
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from sandbox.esim_common import (
    COUNTRY_NAMES, Account, AccountRefused, EsimShop, Order, OutOfStock, Plan, Respond, RespondRoute, Sim,
    UnknownPackage, catalog, qr_png)
from sandbox.esim_control import control_router
from sandbox.ratelimit import Limit

NAME = "airalo"
TOKEN_TTL_S = 86400
DEFAULT_LIMIT = 10
DEMO_ACCOUNTS = {"airalo-demo-client": "airalo-demo-secret", "airalo-shop2-client": "airalo-shop2-secret"}
LIMITS = {"token": Limit(limit=3, window_s=60), "packages": Limit(limit=80, window_s=60),
          "usage": Limit(limit=10, window_s=60)}
INVALID = "the parameter is invalid"


def _brands() -> dict[str, str]:
    """One operator brand per country or region, e.g. "Kallur Digital"; unique, so ids are too."""
    rng, first = random.Random(7), ["Kallur", "Moshi", "Sora", "Eurolink", "Discover", "Hello", "Nova", "Atlas",
                                    "Coral", "Tern", "Maple", "Orbit", "Lumen", "Zephyr", "Kite", "Aurora"]
    second, brands = ["Digital", "Mobile", "Connect", "Telecom", "Link", "Net", "Wave", "Air"], {}
    for code in dict.fromkeys(p.code for p in catalog()):
        name = f"{rng.choice(first)} {rng.choice(second)}"
        while name in brands.values():
            name = f"{rng.choice(first)} {rng.choice(second)}"
        brands[code] = name
    return brands


BRANDS = _brands()


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-")


def _package_id(plan: Plan) -> str:
    size = "unlimited" if plan.data_mb is None else plan.data_label.replace(" ", "").lower()
    return f"{_slug(BRANDS[plan.code])}-{plan.validity_days}days-{size}"


shop = EsimShop(NAME, package_id=_package_id, order_id=lambda seq: str(9000 + seq), margin="1.0",
                smdp_host="lpa.airalo.com", iccid_prefix="8910300", iccid_length=20,
                demo_accounts=DEMO_ACCOUNTS, limits=LIMITS, token_ttl_s=TOKEN_TTL_S, seed=37)
router = APIRouter(route_class=RespondRoute)
control = control_router(shop, login_field="client_id", secret_field="client_secret")


def reset() -> None:
    shop.reset()


def _envelope(data, message: str = "success", status: int = 200) -> JSONResponse:
    return JSONResponse({"data": data, "meta": {"message": message}}, status_code=status)


def _throttle(bucket: str, key: str, response: Response | None = None) -> None:
    """Count a request against ``bucket``; answer 429 as Laravel's throttle middleware does."""
    decision = shop.limiter.hit(bucket, key)
    headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
    if not decision.allowed:
        headers.update({"Retry-After": str(decision.retry_after),
                        "X-RateLimit-Reset": str(int(time.time()) + decision.retry_after)})
        raise Respond(JSONResponse({"message": "Too Many Attempts."}, status_code=429, headers=headers))
    if response is not None:
        response.headers.update(headers)


async def _fields(request: Request) -> dict:
    """The body as a dict, from JSON or a urlencoded form (the sandbox has no multipart parser)."""
    raw = await request.body()
    if "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise Respond(_envelope({"body": "The body must be valid JSON."}, INVALID, 422)) from None
        return body if isinstance(body, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace")))


def current_account(authorization: str | None = Header(None)) -> Account:
    account = shop.account_for_token(authorization)
    if account is None:
        raise Respond(_envelope([], "Unauthenticated.", 401))
    return account


@router.post("/v2/token")
async def token(request: Request) -> JSONResponse:
    fields = await _fields(request)
    _throttle("token", fields.get("client_id") or (request.client.host if request.client else "?"))
    missing = {f: f"The {f.replace('_', ' ')} field is required."
               for f in ("client_id", "client_secret", "grant_type") if not fields.get(f)}
    if missing:
        return _envelope(missing, INVALID, 422)
    if fields["grant_type"] != "client_credentials":
        return _envelope({"grant_type": "The selected grant type is invalid."}, INVALID, 422)
    account = shop.authenticate(fields["client_id"], fields["client_secret"])
    if account is None:
        return _envelope([], "Invalid client credentials.", 401)
    return _envelope({"token_type": "Bearer", "expires_in": TOKEN_TTL_S, "access_token": shop.issue_token(account)})


def _image(slug: str) -> dict:
    return {"width": 132, "height": 99, "url": f"https://cdn.airalo.test/images/{slug}.png"}


def _package(package_id: str, plan: Plan) -> dict:
    net = shop.price(plan)
    retail = (net * 13 / 10).quantize(net)
    return {"id": package_id, "type": "sim", "price": float(retail), "amount": plan.data_mb or 0,
            "day": plan.validity_days, "is_unlimited": plan.data_mb is None,
            "title": f"{plan.data_label} - {plan.validity_days} Days", "short_info": None,
            "qr_installation": "<p>Scan the QR code from Settings › Mobile Data › Add eSIM.</p>",
            "manual_installation": "<p>Enter the SM-DP+ address and activation code by hand.</p>",
            "is_fair_usage_policy": plan.data_mb is None, "fair_usage_policy": None,
            "data": plan.data_label, "voice": None, "text": None, "net_price": float(net),
            "prices": {"net_price": {"USD": float(net)}, "recommended_retail_price": {"USD": float(retail)}}}


def _entries() -> list[tuple[tuple[str, ...], dict]]:
    """(countries covered, entry): the catalog as Airalo nests it, one operator per entry."""
    by_code: dict[str, list[tuple[str, Plan]]] = {}
    for pid, plan in shop.packages.items():
        by_code.setdefault(plan.code, []).append((pid, plan))
    entries = []
    for code, rows in by_code.items():
        plan, local = rows[0][1], rows[0][1].scope == "local"
        slug, brand = _slug(plan.title), BRANDS[code]
        entries.append((plan.countries, {
            "slug": slug, "country_code": code if local else "", "title": plan.title, "image": _image(slug),
            "operators": [{
                "id": 1000 + len(entries), "style": "light", "gradient_start": "#0f1b3f", "gradient_end": "#2a4c8b",
                "type": "local" if local else "global", "is_prepaid": False, "title": brand, "esim_type": "Prepaid",
                "warning": None, "apn_type": "automatic", "apn_value": None, "is_roaming": not local,
                "info": ["LTE Data-only eSIM.", "Rechargeable online with Airalo app."], "image": _image(_slug(brand)),
                "plan_type": "data", "activation_policy": "first-usage", "is_kyc_verify": False,
                "rechargeability": True, "other_info": None,
                "coverages": [{"name": c, "code": c, "networks": [{"name": f"{brand} {c}", "types": ["4G"]}]}
                              for c in plan.countries],
                "countries": [{"country_code": c, "title": COUNTRY_NAMES[c], "image": _image(_slug(COUNTRY_NAMES[c]))}
                              for c in plan.countries],
                "packages": [_package(pid, p) for pid, p in rows]}]}))
    return entries


@router.get("/v2/packages")
def packages(request: Request, response: Response, page: int = 1, limit: int | None = None,
             type_: str | None = Query(None, alias="filter[type]"),
             country: str | None = Query(None, alias="filter[country]"),
             account: Account = Depends(current_account), authorization: str = Header("")):
    _throttle("packages", authorization.partition(" ")[2], response)
    if type_ not in (None, "", "local", "global"):
        return _envelope({"filter.type": "The selected filter.type is invalid."}, INVALID, 422)
    if limit is not None and limit < 1:
        return _envelope({"limit": "The limit must be at least 1."}, INVALID, 422)
    rows = [entry for covers, entry in _entries()
            if (not type_ or entry["operators"][0]["type"] == type_) and (not country or country.upper() in covers)]
    return _paged(request, rows, page, limit)


def _paged(request: Request, rows: list, page: int, limit: int | None) -> dict:
    """One page of ``rows`` with Laravel's ``links`` and ``meta``, as every Airalo list answers."""
    per_page, page = limit or DEFAULT_LIMIT, max(page, 1)
    last = max(1, math.ceil(len(rows) / per_page))
    chunk = rows[(page - 1) * per_page: page * per_page]
    path = str(request.url.remove_query_params(list(request.query_params)))
    query = {k: v for k, v in request.query_params.items() if k != "page"}

    def link(n: int | None) -> str | None:
        return None if n is None else f"{path}?{urlencode({**query, 'page': n})}"

    first = (page - 1) * per_page + 1 if chunk else None
    return {"data": chunk,
            "links": {"first": link(1), "last": link(last), "prev": link(page - 1 if page > 1 else None),
                      "next": link(page + 1 if page < last else None)},
            "meta": {"message": "success", "current_page": page, "from": first, "last_page": last, "path": path,
                     "per_page": per_page, "to": first and first + len(chunk) - 1, "total": len(rows)}}


def _sim(request: Request, sim: Sim) -> dict:
    return {"id": sim.seq, "created_at": sim.created_at.strftime("%Y-%m-%d %H:%M:%S"), "iccid": sim.iccid,
            "lpa": sim.smdp_host, "imsis": None, "matching_id": sim.matching_id, "qrcode": sim.lpa,
            "qrcode_url": f"{request.base_url}{NAME}/qr/{sim.seq}.png",
            "direct_apple_installation_url": f"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={sim.lpa}",
            "airalo_code": None, "apn_type": "automatic", "apn_value": None,
            "is_roaming": sim.plan.scope != "local", "confirmation_code": None}


def _code(order: Order) -> str:
    return f"{order.created_at:%Y%m%d}-{order.seq:06d}"


def _order(request: Request, order: Order) -> dict:
    plan, net = order.plan, shop.price(order.plan)
    return {"id": int(order.id), "code": _code(order), "currency": "USD",
            "package_id": order.package_id, "quantity": order.quantity, "type": "sim",
            "description": order.reference, "esim_type": "Prepaid", "validity": plan.validity_days,
            "package": f"{BRANDS[plan.code]}-{plan.data_label} - {plan.validity_days} Days", "data": plan.data_label,
            "price": float(order.price), "net_price": float(net), "text": None, "voice": None,
            "created_at": order.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "manual_installation": _package(order.package_id, plan)["manual_installation"],
            "qrcode_installation": _package(order.package_id, plan)["qr_installation"],
            "installation_guides": {"en": "https://www.airalo.test/installation-guide"},
            "brand_settings_name": None, "sims": [_sim(request, s) for s in order.sims]}


@router.post("/v2/orders")
async def create_order(request: Request, account: Account = Depends(current_account)) -> JSONResponse:
    fields = await _fields(request)
    errors = {}
    if not fields.get("package_id"):
        errors["package_id"] = "The package id field is required."
    try:
        quantity = int(fields.get("quantity", ""))
        if not 1 <= quantity <= 50:
            errors["quantity"] = "The quantity must be between 1 and 50."
    except ValueError:
        errors["quantity"] = "The quantity field is required."
    if fields.get("type", "sim") != "sim":
        errors["type"] = "The selected type is invalid."
    description = fields.get("description") or None
    if errors:
        return _envelope(errors, INVALID, 422)
    try:
        order = shop.purchase(account, str(fields["package_id"]), quantity, reference=description)
    except UnknownPackage:
        return _envelope({"package_id": "The selected package id is invalid."}, INVALID, 422)
    except OutOfStock as exc:
        return JSONResponse({"code": 33, "reason": f"Insufficient stock of eSIMs remaining: {exc.available}. "
                             "Please try again later."}, status_code=422)
    except AccountRefused:
        return JSONResponse({"code": 11, "reason": "Insufficient Airalo Credit: top up your balance."},
                            status_code=422)
    return _envelope(_order(request, order))


def _not_found() -> JSONResponse:
    return _envelope([], "messages.resource_not_found", 404)


def _like(value: str | None, text: str | None) -> bool:
    """SQL ``LIKE '%value%'``, as Airalo filters its order list (case-insensitive, as MySQL's
    usually is: [u])."""
    return not value or value.lower() in (text or "").lower()


@router.get("/v2/orders")
def list_orders(request: Request, page: int = 1, limit: int | None = None, include: str = "",
                description: str | None = Query(None, alias="filter[description]"),
                code: str | None = Query(None, alias="filter[code]"),
                iccid: str | None = Query(None, alias="filter[iccid]"),
                account: Account = Depends(current_account)):
    if limit is not None and limit < 1:
        return _envelope({"limit": "The limit must be at least 1."}, INVALID, 422)
    included = {part.strip() for part in include.split(",")}
    with shop.lock:
        found = [o for o in reversed(shop.orders) if o.account == account.login and _like(description, o.reference)
                 and _like(code, _code(o)) and (not iccid or any(_like(iccid, s.iccid) for s in o.sims))]
    rows = []
    for order in found:
        view = _order(request, order)
        if "sims" not in included:
            del view["sims"]
        if "status" in included:
            view["status"] = {"name": "Completed", "slug": "completed"}
        rows.append(view)
    return _paged(request, rows, page, limit)


@router.get("/v2/orders/{order_id}")
def get_order(request: Request, order_id: str, account: Account = Depends(current_account)) -> JSONResponse:
    order = shop.find_order(account, order_id)
    return _not_found() if order is None else _envelope(_order(request, order))


@router.get("/v2/sims/{iccid}/usage")
def usage(iccid: str, response: Response, account: Account = Depends(current_account)):
    _throttle("usage", iccid, response)
    sim = shop.find_sim(account, iccid)
    if sim is None or sim.iccid != iccid:
        return _not_found()
    total, left = sim.plan.data_mb, sim.remaining_mb
    return {"data": {"remaining": left or 0, "total": total or 0, "is_unlimited": total is None,
                     "expired_at": sim.expires_at and sim.expires_at.strftime("%Y-%m-%d %H:%M:%S"),
                     "status": sim.status, "remaining_voice": 0, "remaining_text": 0,
                     "total_voice": 0, "total_text": 0}, "meta": {"message": "success"}}


@router.get("/qr/{sim_seq}.png", include_in_schema=False)
def qr_image(sim_seq: int) -> Response:
    with shop.lock:
        sim = next((s for s in shop.sims.values() if s.seq == sim_seq), None)
    return Response(status_code=404) if sim is None else Response(qr_png(sim.lpa), media_type="image/png")
