"""Fake eSIMCard reseller API, mounted at ``/esimcard`` (real: ``https://portal.esimcard.com``).

Wire format under ``/esimcard/api/developer/reseller/`` (shapes from the PHP SDK and
third-party clients, [v3]; field details [u]):

* ``POST login`` JSON ``{email, password}`` → ``{status: true, access_token, token_type}``.
  Inferred: the public SDK takes a ready token; clients in the wild log in like this.
  Bad credentials → 401 ``{status: false, message}``.
* Every other call: ``Authorization: Bearer <token>``, else 401 ``{"message": "Unauthenticated."}``.
* ``GET packages?page=&per_page=&package_type=`` → ``{status, data[], meta{total, perPage,
  currentPage, lastPage}}``; 20 per page by default, ``per_page`` capped at 100.
* ``POST package/purchase {package_type_id, iccid?, sandbox?}`` → ``{status: true, data:
  {sim_applied, sim{id, iccid, qr_code_text (LPA), qr_code_url, ...}, order_id}}``. With
  ``iccid`` the package is added to that eSIM (top-up). ``sandbox`` is echoed and recorded only:
  this whole server is a sandbox. There is no idempotency key: a retry buys again.
  Business refusals (out of stock, empty balance) arrive as **200** ``{status: false, message}``,
  as the real API does for its refusals; validation errors are Laravel 422s.
* ``GET my-esims?page=``, ``GET my-esims/{id}``, ``GET my-sim/{id}/usage`` (sim id or ICCID).
* No documented rate limit: use the generic fault switches for 429s.

The QR image behind ``qr_code_url`` is served at ``GET /esimcard/qr/{sim id}.png``.

Demo accounts after reset (email / password): ``demo@esimcard.test`` / ``demo-password``,
``shop2@esimcard.test`` / ``shop2-password``. Control routes: ``sandbox.esim_control.control_router``
with body fields ``email`` and ``password``.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from fastapi import APIRouter, Body, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from sandbox.esim_common import (
    COUNTRY_NAMES, Account, AccountRefused, EsimShop, OutOfStock, Plan, Respond, RespondRoute, Sim,
    UnknownPackage, qr_png)
from sandbox.esim_control import control_router

NAME = "esimcard"
BASE = "/api/developer/reseller"
DEFAULT_PER_PAGE, MAX_PER_PAGE = 20, 100
DEMO_ACCOUNTS = {"demo@esimcard.test": "demo-password", "shop2@esimcard.test": "shop2-password"}
STATUS_LABELS = {"NOT_ACTIVE": "Not Active", "ACTIVE": "Active", "FINISHED": "Depleted", "EXPIRED": "Expired"}


def _package_id(plan: Plan) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"esimcard:{plan.key}"))


shop = EsimShop(NAME, package_id=_package_id, order_id=lambda seq: str(700000 + seq), margin="1.05",
                smdp_host="smdp.esimcard.test", iccid_prefix="8985220", iccid_length=20,
                demo_accounts=DEMO_ACCOUNTS, seed=11)
router = APIRouter(route_class=RespondRoute)
control = control_router(shop, login_field="email", secret_field="password")


def reset() -> None:
    shop.reset()


def _invalid(field: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "errors": {field: [message]}}, status_code=422)


def _refused(message: str) -> JSONResponse:
    return JSONResponse({"status": False, "message": message})


def current_account(authorization: str | None = Header(None)) -> Account:
    account = shop.account_for_token(authorization)
    if account is None:
        raise Respond(JSONResponse({"message": "Unauthenticated."}, status_code=401))
    return account


def _page(items: list, page: int, per_page: int | None) -> tuple[list, dict]:
    per_page = min(max(per_page or DEFAULT_PER_PAGE, 1), MAX_PER_PAGE)
    page = max(page, 1)
    meta = {"total": len(items), "perPage": per_page, "currentPage": page,
            "lastPage": max(1, math.ceil(len(items) / per_page))}
    return items[(page - 1) * per_page: page * per_page], meta


def _quantity(plan: Plan) -> tuple[int, str]:
    if plan.data_mb is None:
        return 0, "GB"
    return (plan.data_mb // 1024, "GB") if plan.data_mb % 1024 == 0 else (plan.data_mb, "MB")


def _name(plan: Plan) -> str:
    quantity, unit = _quantity(plan)
    amount = "Unlimited Data" if plan.data_mb is None else f"Data For {quantity}{unit}"
    return f"eSIM {amount} in {plan.validity_days} Days, {plan.title}"


def _package(package_id: str, plan: Plan) -> dict:
    unlimited = plan.data_mb is None
    quantity, unit = _quantity(plan)
    return {"id": package_id, "name": _name(plan),
            "price": str(shop.price(plan)), "data_quantity": quantity, "data_unit": unit,
            "voice_quantity": 0, "voice_unit": "Min", "sms_quantity": 0,
            "package_validity": plan.validity_days, "package_validity_unit": "Day",
            "package_type": "DATA-ONLY", "unlimited": unlimited,
            "coverage": [{"code": c, "country_name": COUNTRY_NAMES[c]} for c in plan.countries]}


def _universal_link(sim: Sim) -> str:
    return f"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={sim.lpa}"


def _stamp(moment: datetime | None) -> str | None:
    return moment and moment.strftime("%Y-%m-%d %H:%M:%S")


def _sim(request: Request, sim: Sim) -> dict:
    return {"id": sim.id, "iccid": sim.iccid, "status": STATUS_LABELS[sim.status],
            "smdp_address": sim.smdp_host, "matching_id": sim.matching_id, "qr_code_text": sim.lpa,
            "qr_code_url": f"{request.base_url}{NAME}/qr/{sim.id}.png",
            "universal_link": _universal_link(sim), "created_at": _stamp(sim.created_at),
            "total_bundles": len(sim.bundles)}


@router.post(BASE + "/login")
def login(body: dict = Body(...)) -> JSONResponse:
    for field in ("email", "password"):
        if not body.get(field):
            return _invalid(field, f"The {field} field is required.")
    account = shop.authenticate(body["email"], body["password"])
    if account is None:
        return JSONResponse({"status": False, "message": "Invalid credentials"}, status_code=401)
    return JSONResponse({"status": True, "message": "Login successfully",
                         "access_token": shop.issue_token(account), "token_type": "Bearer"})


@router.get(BASE + "/packages")
def packages(page: int = 1, per_page: int | None = None, package_type: str | None = None,
             _: Account = Depends(current_account)) -> dict:
    rows = [] if package_type and package_type.upper() != "DATA-ONLY" else list(shop.packages.items())
    data, meta = _page(rows, page, per_page)
    return {"status": True, "data": [_package(pid, plan) for pid, plan in data], "meta": meta}


@router.post(BASE + "/package/purchase")
def purchase(request: Request, body: dict = Body(...), account: Account = Depends(current_account)) -> JSONResponse:
    package_id = str(body.get("package_type_id") or "")
    if not package_id:
        return _invalid("package_type_id", "The package type id field is required.")
    onto = None
    if body.get("iccid"):
        onto = shop.find_sim(account, str(body["iccid"]))
        if onto is None:
            return _invalid("iccid", "The selected iccid is invalid.")
    try:
        order = shop.purchase(account, package_id, onto=onto, extra={"sandbox": bool(body.get("sandbox"))})
    except UnknownPackage:
        return _invalid("package_type_id", "The selected package type id is invalid.")
    except OutOfStock:
        return _refused("This package is currently out of stock.")
    except AccountRefused:
        return _refused("Insufficient balance. Please recharge your account.")
    return JSONResponse({"status": True, "message": "Package purchased successfully",
                         "data": {"sim_applied": True, "sim": _sim(request, order.sims[0]),
                                  "order_id": int(order.id)}})


def _my_sims(account: Account) -> list[Sim]:
    with shop.lock:
        return [s for s in shop.sims.values() if s.account == account.login]


@router.get(BASE + "/my-esims")
def my_esims(page: int = 1, per_page: int | None = None,
             account: Account = Depends(current_account)) -> dict:
    data, meta = _page(_my_sims(account), page, per_page)
    rows = [{"id": s.id, "iccid": s.iccid, "created_at": _stamp(s.created_at), "last_bundle": _name(s.plan),
             "status": STATUS_LABELS[s.status], "total_bundles": len(s.bundles), "universal_link": _universal_link(s)}
            for s in data]
    return {"status": True, "data": rows, "meta": meta}


def _not_found() -> JSONResponse:
    return JSONResponse({"status": False, "message": "Sim not found"}, status_code=404)


@router.get(BASE + "/my-esims/{sim_id}")
def my_esim(request: Request, sim_id: str, account: Account = Depends(current_account)) -> JSONResponse:
    sim = shop.find_sim(account, sim_id)
    if sim is None:
        return _not_found()
    bundles = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sim.id}:{i}")), "package": _name(plan),
                "status": "Active" if i == len(sim.bundles) - 1 else "Finished"} for i, plan in enumerate(sim.bundles)]
    return JSONResponse({"status": True, "data": {"sim": _sim(request, sim), "in_use_packages": bundles}})


@router.get(BASE + "/my-sim/{sim_id}/usage")
def usage(sim_id: str, account: Account = Depends(current_account)) -> JSONResponse:
    sim = shop.find_sim(account, sim_id)
    if sim is None:
        return _not_found()
    total, left = sim.plan.data_mb, sim.remaining_mb
    data = {"initial_data_quantity": "Unlimited" if total is None else total, "initial_data_unit": "MB",
            "rem_data_quantity": "Unlimited" if left is None else left, "rem_data_unit": "MB",
            "status": STATUS_LABELS[sim.status],
            "date_activated": _stamp(sim.activated_at), "date_expiry": _stamp(sim.expires_at)}
    return JSONResponse({"status": True, "data": data})


@router.get("/qr/{sim_id}.png", include_in_schema=False)
def qr_image(sim_id: str) -> Response:
    with shop.lock:
        sim = next((s for s in shop.sims.values() if s.id == sim_id), None)
    if sim is None:
        return Response(status_code=404)
    return Response(qr_png(sim.lpa), media_type="image/png")
