"""Fresh POS/Portaus accounts on the sandbox, one per call, through each fake's control routes.

Tests and the benchmark use these so no two of them share an account (or its rate limits).
``Account`` carries what a tenant connection needs plus the control path of the account, so a
test can change stock or delete a product the way the store would.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from resources.pos import POS_SYSTEMS
from warehouse.tenants import TenantConnection

BLAZE_PARTNER = "blaze-demo-partner"  # the sandbox's one partner key


@dataclass
class Account:
    system: str
    sandbox: str
    base_url: str
    credentials: dict[str, Any] = field(repr=False)
    options: dict[str, Any]
    control: str  # control path of this account, e.g. /_sandbox/treez/dispensaries/x

    def connection(self, tenant_id: str = "t", **options: Any) -> TenantConnection:
        return TenantConnection(tenant_id, self.system, self.base_url, self.credentials, {**self.options, **options})

    def set_stock(self, native_id: str, quantity: int) -> None:
        httpx.post(f"{self.sandbox}{self.control}/products/{native_id}/stock", json={"quantity": quantity},
                   timeout=10).raise_for_status()

    def delete(self, native_id: str, hard: bool = True) -> None:
        httpx.delete(f"{self.sandbox}{self.control}/products/{native_id}", params={"hard": str(hard).lower()},
                     timeout=10).raise_for_status()


def _post(url: str, body: dict) -> None:
    httpx.post(url, json=body, timeout=30).raise_for_status()


def new_account(sandbox: str, system: str, products: int = 200, customers: int = 40, **spec: Any) -> Account:
    """A new account of ``system`` with ``products`` products (COVA/Flowhub: at one location);
    ``spec`` adds settings of the fake's account (Dutchie: ``roles``, ``variety``)."""
    tag = uuid.uuid4().hex[:10]
    ctl = f"{sandbox}/_sandbox/{system}"
    if system == "treez":
        _post(f"{ctl}/dispensaries", {"dispensary": f"d{tag}", "client_id": f"c{tag}", "apikey": f"k{tag}",
                                      "products": products, "customers": customers})
        return Account(system, sandbox, f"{sandbox}/treez", {"dispensary": f"d{tag}", "client_id": f"c{tag}",
                       "apikey": f"k{tag}"}, {}, f"/_sandbox/treez/dispensaries/d{tag}")
    if system == "dutchie":
        location = random.randrange(2000, 20_000)
        _post(f"{ctl}/locations", {"api_key": f"k{tag}", "location_id": location, "products": products,
                                   "customers": customers, **spec})
        return Account(system, sandbox, f"{sandbox}/dutchie", {"api_key": f"k{tag}", "consumer_key": f"ck{tag}"}, {},
                       f"/_sandbox/dutchie/locations/{location}")
    if system == "blaze":
        shop = uuid.uuid4().hex[:24]
        _post(f"{ctl}/shops", {"developer_key": f"dev{tag}", "shop_id": shop, "products": products, "customers": customers})
        return Account(system, sandbox, f"{sandbox}/blaze", {"partner_key": BLAZE_PARTNER, "developer_key": f"dev{tag}"},
                       {}, f"/_sandbox/blaze/shops/{shop}")
    if system == "flowhub":
        location = str(uuid.uuid4())
        _post(f"{ctl}/clients", {"client_id": f"c{tag}", "key": f"k{tag}", "customers": customers,
                                 "locations": [{"location_id": location, "products": products}]})
        return Account(system, sandbox, f"{sandbox}/flowhub", {"client_id": f"c{tag}", "key": f"k{tag}"}, {},
                       f"/_sandbox/flowhub/locations/{location}")
    if system == "cova":
        company, location = random.randrange(10**6, 10**9), random.randrange(10**6, 10**9)
        creds = {"company_id": company, "client_id": f"c{tag}", "client_secret": f"s{tag}", "username": f"u{tag}",
                 "password": f"p{tag}"}
        _post(f"{ctl}/companies", {**creds, "customers": customers, "locations": [{"location_id": location, "products": products}]})
        return Account(system, sandbox, f"{sandbox}/cova", creds, {"location_ids": [location]},
                       f"/_sandbox/cova/locations/{location}")
    if system == "shopify":
        _post(f"{ctl}/shops", {"shop": f"s{tag}", "access_token": f"shpat_{tag}", "api_secret": f"shpss_{tag}",
                               "products": products, "customers": customers})
        return Account(system, sandbox, f"{sandbox}/shopify/s{tag}", {"access_token": f"shpat_{tag}"}, {},
                       f"/_sandbox/shopify/shops/s{tag}")
    if system == "portaus":
        secret = f"jwt-secret-{tag}-{uuid.uuid4().hex}"  # >= 32 bytes, as HS256 wants
        _post(f"{ctl}/tenants", {"api_key": f"k{tag}", "jwt_secret": secret, "products": products, "customers": customers})
        return Account(system, sandbox, f"{sandbox}/portaus", {"api_key": f"k{tag}", "jwt_secret": secret}, {},
                       f"/_sandbox/portaus/tenants/k{tag}")
    raise ValueError(f"unknown system {system}; one of {POS_SYSTEMS}")


def native_id(row: dict[str, Any]) -> str:
    """The id the fake's control routes take for a loaded product row (Shopify: the product, not the variant)."""
    attrs = row.get("attributes") or {}
    return str(attrs.get("shopify_product_id") or row["product_id"])
