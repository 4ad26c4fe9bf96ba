"""Fake MobiMatter merchant API v2, mounted at ``/mobimatter`` (real: ``https://api.mobimatter.com/mobimatter``).

Wire format (MobiMatter's published swagger and plugin notes, [v]):

* Every call sends headers ``api-key`` and ``merchantId``; otherwise 401
  ``{"statusCode": 401, "message": "Unauthorized"}``. Errors are always ``{statusCode, message}``.
* ``GET /api/v2/products?productId=&country=&region=&provider=&category=&familyId=`` →
  ``{statusCode, result: [MerchantProductResponeModel]}``: filters, **no paging**, no stock field.
  ``productDetails`` carries ``PLAN_VALIDITY`` in **hours** and ``PLAN_DETAILS``/``TAGS`` as JSON
  strings; unlimited plans say ``PLAN_DATA_LIMIT: "Unlimited"`` ([u]).
* Two-step order: ``POST /api/v2/order {productId, productCategory, label?}`` →
  ``{statusCode, result: {orderId, productCategory}}`` in state ``Created`` (stock reserved), then
  ``PUT /api/v2/order/complete {orderId}`` → ``OrderViewModel`` with ``lineItemDetails``
  (``LOCAL_PROFILE_ASSISTANT`` = LPA, ``ICCID``, ``SMDP_ADDRESS``, ``ACTIVATION_CODE``,
  ``QR_CODE`` as a PNG data URL). ``PUT /api/v2/order/cancel {orderId, reason}`` releases a
  ``Created`` order. ``GET /api/v2/order/{orderId}`` and ``GET /api/v2/order?iccid=`` read orders.
* Refusals at ``POST /order``: **429 = out of stock** (not a rate limit: no Retry-After),
  **402** = wallet could not be authorised (its body says ``"statusCode": 400``, as the real one
  does: trust the HTTP status), 400 = product not assigned. Unknown or foreign order: 404.
  ``PUT /order/complete`` charges the wallet, so it too can answer 402 ([u]); a cancelled order
  cannot be completed (400).
* ``GET /api/v2/provider/usage/{orderId}`` returns ``ProviderOrderQueryModel`` **without** the
  envelope.
* No documented rate limit: use the generic fault switches for throttling and outages.

Idempotency, as at the real API: there is no idempotency key and no lookup by reference. A
repeated ``label`` (or ``merchantOrderId``) creates another order; only completing is safe to
repeat (a completed order is returned unchanged). A client that loses the answer to a create
cannot find that order again: it must keep the ``orderId`` the moment it has it.

Demo accounts after reset (merchantId / api-key): ``mm-demo-merchant`` / ``mm-demo-key``,
``mm-shop2-merchant`` / ``mm-shop2-key``. Control routes: ``sandbox.esim_control.control_router``
with body fields ``merchant_id`` and ``api_key``.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from sandbox.esim_common import (
    Account, AccountRefused, EsimShop, Order, OutOfStock, Plan, Respond, RespondRoute, UnknownPackage, qr_png)
from sandbox.esim_control import control_router

NAME = "mobimatter"
DEMO_ACCOUNTS = {"mm-demo-merchant": "mm-demo-key", "mm-shop2-merchant": "mm-shop2-key"}
UPSTREAMS = ((3, "Ubigi"), (7, "Airhub"), (12, "eSIMGo"), (15, "Orange Holiday"))
CREATED = "2024-01-01T00:00:00Z"
STATUS_LABELS = {"NOT_ACTIVE": "Not Installed", "ACTIVE": "Active", "FINISHED": "Depleted", "EXPIRED": "Expired"}


def _product_id(plan: Plan) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mobimatter:{plan.key}"))


shop = EsimShop(NAME, package_id=_product_id, order_id=lambda seq: f"MM-{100000 + seq}", margin="1.12",
                smdp_host="smdp.mobimatter.test", iccid_prefix="894400", iccid_length=19,
                demo_accounts=DEMO_ACCOUNTS, seed=23)
router = APIRouter(prefix="/api/v2", route_class=RespondRoute)
control = control_router(shop, login_field="merchant_id", secret_field="api_key")


def reset() -> None:
    shop.reset()


def _error(status: int, message: str, body_status: int | None = None) -> JSONResponse:
    return JSONResponse({"statusCode": body_status or status, "message": message}, status_code=status)


def _ok(result) -> dict:
    return {"statusCode": 200, "result": result}


def current_account(request: Request) -> Account:
    account = shop.authenticate(request.headers.get("merchantId"), request.headers.get("api-key"))
    if account is None:
        raise Respond(_error(401, "Unauthorized"))
    return account


def _family(plan: Plan) -> tuple[int, str]:
    codes = sorted({p.code for p in shop.plans})
    return 100 + codes.index(plan.code), f"{plan.title} eSIM"


def _upstream(plan: Plan) -> tuple[int, str]:
    return UPSTREAMS[zlib.crc32(plan.key.encode()) % len(UPSTREAMS)]


def _logo(name: str) -> str:
    return f"https://cdn.mobimatter.test/logos/{name.lower().replace(' ', '-')}.png"


def _retail(wholesale: Decimal) -> float:
    return float((wholesale * 14 / 10).quantize(Decimal("0.01")))


def _product(account: Account, product_id: str, plan: Plan) -> dict:
    family_id, family_name = _family(plan)
    provider_id, provider = _upstream(plan)
    title = f"{plan.title} {plan.data_label}"
    limit, unit = ("Unlimited", "") if plan.data_mb is None else plan.data_label.split(" ")
    details = {"heading": title, "description": f"{plan.data_label} for {plan.validity_days} days",
               "items": [f"Coverage: {', '.join(plan.countries)}", "Data only"]}
    return {
        "merchantId": account.login, "uniqueId": product_id, "productId": product_id,
        "rank": zlib.crc32(product_id.encode()) % 100 + 1, "productCategoryId": 1,
        "productCategory": "esim_realtime", "productFamilyId": family_id, "productFamilyName": family_name,
        "networkListId": family_id * 10 if plan.scope == "local" else None, "providerId": provider_id,
        "providerName": provider, "providerLogo": _logo(provider),
        "retailPrice": _retail(shop.price(plan)), "wholesalePrice": float(shop.price(plan)),
        "currencyCode": "USD", "created": CREATED, "updated": CREATED, "regions": [plan.region],
        "countries": list(plan.countries), "displayAttributes": [],
        "productDetails": [{"name": k, "value": v} for k, v in (
            ("PLAN_TITLE", title), ("PLAN_DATA_LIMIT", limit), ("PLAN_DATA_UNIT", unit),
            ("PLAN_VALIDITY", str(plan.validity_days * 24)), ("PLAN_DETAILS", json.dumps(details)),
            ("TAGS", json.dumps([{"color": "#2E7D32", "item": plan.scope.title()}])))],
    }


@router.get("/products")
def products(productId: str | None = None, country: str | None = None, region: str | None = None,
             provider: str | None = None, category: str | None = None, familyId: int | None = None,
             account: Account = Depends(current_account)) -> dict:
    rows = []
    for pid, plan in shop.packages.items():
        upstream = _upstream(plan)
        if ((productId and pid != productId) or (country and country.upper() not in plan.countries)
                or (region and region.lower() != plan.region.lower())
                or (provider and provider not in (str(upstream[0]), upstream[1]))
                or (category and category != "esim_realtime") or (familyId and familyId != _family(plan)[0])):
            continue
        rows.append(_product(account, pid, plan))
    return _ok(rows)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _order_view(order: Order) -> dict:
    plan, sim = order.plan, order.sims[0]
    family_id, family_name = _family(plan)
    provider_id, provider = _upstream(plan)
    completed = order.state == "completed"
    details = [{"name": k, "value": v} for k, v in (
        ("LOCAL_PROFILE_ASSISTANT", sim.lpa), ("ICCID", sim.iccid), ("SMDP_ADDRESS", sim.smdp_host),
        ("ACTIVATION_CODE", sim.matching_id),
        ("QR_CODE", "data:image/png;base64," + base64.b64encode(qr_png(sim.lpa)).decode()))] if completed else []
    install = f"esim_qrcode_provisioning?carddata={sim.lpa}"
    return {
        "orderId": order.id, "orderState": order.state.capitalize(), "merchantId": order.account,
        "externalId": "", "currencyCode": "USD", "created": _iso(order.created_at),
        "updated": order.extra.get("updated"), "label": order.reference,
        "orderLineItem": {
            "productId": order.package_id, "productCategory": "esim_realtime", "productFamilyName": family_name,
            "productFamilyId": str(family_id), "title": f"{plan.title} {plan.data_label}",
            "provider": str(provider_id), "providerName": provider, "providerLogo": _logo(provider),
            "retailPrice": _retail(order.price), "wholesalePrice": float(order.price),
            "lineItemDetails": details,
            "oneClickInstall": {"ios": f"https://esimsetup.apple.com/{install}",
                                "android": f"https://esimsetup.android.com/{install}"} if completed else None,
        },
    }


def _owned_order(account: Account, order_id: str) -> Order:
    order = shop.find_order(account, order_id)
    if order is None:
        raise Respond(_error(404, "order not found"))
    return order


@router.post("/order")
def create_order(body: dict = Body(...), account: Account = Depends(current_account)) -> dict:
    product_id = body.get("productId")
    if not product_id:
        raise Respond(_error(400, "The ProductId field is required."))
    if body.get("productCategory") not in (None, "", "esim_realtime"):
        raise Respond(_error(400, f"Product category {body['productCategory']} is not available for this product"))
    reference = body.get("label") or body.get("merchantOrderId")
    if reference and len(reference) > 300:
        raise Respond(_error(400, "Label must not exceed 300 characters"))
    try:
        order = shop.purchase(account, product_id, reference=reference, state="created")
    except UnknownPackage:
        raise Respond(_error(400, "Product not found or not assigned to merchant")) from None
    except OutOfStock:
        raise Respond(_error(429, "Product is out of stock")) from None
    except AccountRefused:
        raise Respond(_error(402, "Unable to authorize funds: insufficient wallet balance", 400)) from None
    return _ok({"orderId": order.id, "productCategory": "esim_realtime"})


@router.put("/order/complete")
def complete_order(body: dict = Body(...), account: Account = Depends(current_account)) -> dict:
    order = _owned_order(account, str(body.get("orderId") or ""))
    with shop.lock:
        if order.state == "cancelled":
            raise Respond(_error(400, "Order has been cancelled or expired and cannot be completed"))
        if order.state == "created" and account.fail_orders:
            raise Respond(_error(402, "Unable to authorize funds: insufficient wallet balance", 400))
        if order.state == "created":
            order.state = "completed"
            order.extra.update(updated=_iso(datetime.now(UTC)), notes=body.get("notes"))
    return _ok(_order_view(order))


@router.put("/order/cancel")
def cancel_order(body: dict = Body(...), account: Account = Depends(current_account)) -> dict:
    if not body.get("reason"):
        raise Respond(_error(400, "The Reason field is required."))
    order = _owned_order(account, str(body.get("orderId") or ""))
    with shop.lock:
        if order.state != "created":
            raise Respond(_error(400, f"Order in {order.state.capitalize()} state cannot be cancelled"))
        shop.cancel(order)
        order.extra["updated"] = _iso(datetime.now(UTC))
    return _ok("Order cancelled")


@router.get("/order")
def order_by_iccid(iccid: str, account: Account = Depends(current_account)) -> dict:
    with shop.lock:
        order = next((o for o in shop.orders if o.account == account.login
                      and o.state == "completed" and any(s.iccid == iccid for s in o.sims)), None)
    if order is None:
        raise Respond(_error(404, "order not found"))
    return _ok(_order_view(order))


@router.get("/order/{order_id}")
def get_order(order_id: str, account: Account = Depends(current_account)) -> dict:
    return _ok(_order_view(_owned_order(account, order_id)))


@router.get("/provider/usage/{order_id}")
def usage(order_id: str, account: Account = Depends(current_account)) -> dict:
    order = _owned_order(account, order_id)
    if order.state != "completed":
        raise Respond(_error(400, "Usage is only available for completed orders"))
    sim, plan = order.sims[0], order.plan
    provider = _upstream(plan)[1]
    left = sim.remaining_mb
    return {
        "orderId": order.id, "merchantId": order.account, "planName": f"{plan.title} {plan.data_label}",
        "planData": plan.data_label, "validityDays": str(plan.validity_days), "rechargeable": True,
        "providerInfo": {"providerName": provider, "providerLogo": _logo(provider), "message": None, "data": {
            "activationDate": sim.activated_at and _iso(sim.activated_at),
            "expirationDate": sim.expires_at and _iso(sim.expires_at),
            "status": STATUS_LABELS[sim.status],
            "balance": "Unlimited" if left is None else f"{left} MB", "phone": None}},
    }
