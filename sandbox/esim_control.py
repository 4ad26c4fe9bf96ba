"""Sandbox-only control routes shared by the ``esimcard``, ``mobimatter`` and ``airalo`` fakes.

``control_router(shop, login_field=..., secret_field=...)`` builds them for one ``EsimShop``; each
fake mounts the result at ``/_sandbox/{NAME}`` (see its docstring for the routes).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, create_model

from sandbox.esim_common import Account, EsimShop, UnknownSim
from sandbox.ratelimit import Limit


class Switch(BaseModel):
    enabled: bool


class StockIn(BaseModel):
    units: int = Field(ge=0)


class UsageIn(BaseModel):
    status: Literal["NOT_ACTIVE", "ACTIVE", "FINISHED", "EXPIRED"] | None = None
    used_mb: int | None = Field(None, ge=0)


def control_router(shop: EsimShop, *, login_field: str, secret_field: str) -> APIRouter:
    """Routes under ``/_sandbox/{NAME}``, the same for the three eSIM fakes.

    GET  /accounts                       accounts with their credentials and switches
    POST /accounts  {login, secret}      create or replace an account (field names per provider)
    PUT  /accounts/{login}/fail_orders   {"enabled": bool}: this account's purchases are refused
                                          (at MobiMatter, completing an order created earlier too)
    PUT  /accounts/{login}/unusable_sims {"enabled": bool}: purchases go through (and are charged)
                                          but deliver an activation code without its matching id
    DELETE /tokens                       forget issued tokens (as if they had expired)
    GET  /stock                          {"out_of_stock", "packages": {package_id: units},
                                          "plan_keys": {package_id: plan key, e.g. "jp-1gb-7d"}}
    PUT  /stock/{package_id}             {"units": n}
    PUT  /out_of_stock                   {"enabled": bool}: every package of the provider is sold out
    GET  /orders                         every order made, oldest first
    PUT  /sims/{iccid}/usage             {"status"?, "used_mb"?}: what the usage endpoint reports
    GET  /limits, PUT /limits            {bucket: {"limit", "window_s"}}
    """
    router = APIRouter()
    account_in = create_model(f"{shop.name.title()}AccountIn", **{login_field: (str, ...), secret_field: (str, ...)})

    def view(a: Account) -> dict:
        return {login_field: a.login, secret_field: a.secret, "fail_orders": a.fail_orders,
                "unusable_sims": a.unusable_sims}

    @router.get("/accounts")
    def list_accounts() -> dict:
        with shop.lock:
            return {"accounts": [view(a) for a in shop.accounts.values()]}

    def create_account(body: BaseModel) -> dict:
        data = body.model_dump()
        with shop.lock:
            account = shop.accounts[data[login_field]] = Account(data[login_field], data[secret_field])
        return view(account)

    # The body model is built above at run time. Under ``from __future__ import annotations`` a
    # ``body: account_in`` annotation stays the string "account_in", which FastAPI cannot resolve
    # (it is local): it took the body for a query parameter and /openapi.json failed to build.
    create_account.__annotations__["body"] = account_in
    router.post("/accounts", status_code=201)(create_account)

    def account_switch(name: str):
        def switch(login: str, body: Switch) -> dict:
            with shop.lock:
                if login not in shop.accounts:
                    raise HTTPException(404, f"no account {login}")
                setattr(shop.accounts[login], name, body.enabled)
                return view(shop.accounts[login])

        switch.__name__ = name
        router.put(f"/accounts/{{login}}/{name}")(switch)

    account_switch("fail_orders")
    account_switch("unusable_sims")

    @router.delete("/tokens")
    def revoke_tokens() -> dict:
        with shop.lock:
            count = len(shop.tokens)
            shop.tokens.clear()
        return {"revoked": count}

    @router.get("/stock")
    def get_stock() -> dict:
        with shop.lock:
            return {"out_of_stock": shop.out_of_stock, "packages": dict(shop.stock),
                    "plan_keys": {pid: plan.key for pid, plan in shop.packages.items()}}

    @router.put("/stock/{package_id}")
    def set_stock(package_id: str, body: StockIn) -> dict:
        with shop.lock:
            if package_id not in shop.stock:
                raise HTTPException(404, f"no package {package_id}")
            shop.stock[package_id] = body.units
        return {"package_id": package_id, "units": body.units}

    @router.put("/out_of_stock")
    def set_out_of_stock(body: Switch) -> dict:
        shop.out_of_stock = body.enabled
        return {"out_of_stock": body.enabled}

    @router.get("/orders")
    def list_orders() -> dict:
        with shop.lock:
            return {"orders": [o.view() for o in shop.orders]}

    @router.put("/sims/{iccid}/usage")
    def set_usage(iccid: str, body: UsageIn) -> dict:
        try:
            sim = shop.set_usage(iccid, body.status, body.used_mb)
        except UnknownSim:
            raise HTTPException(404, f"no sim {iccid}") from None
        return {"iccid": sim.iccid, "status": sim.status, "used_mb": sim.used_mb}

    @router.get("/limits")
    def get_limits() -> dict:
        return {k: v.model_dump() for k, v in shop.limiter.limits.items()}

    @router.put("/limits")
    def set_limits(body: dict[str, Limit]) -> dict:
        unknown = set(body) - set(shop.limiter.defaults)
        if unknown:
            raise HTTPException(404, f"no rate-limit bucket {sorted(unknown)}")
        for bucket, limit in body.items():
            shop.limiter.configure(bucket, limit)
        return get_limits()

    return router
