"""Airalo Partner API v2: client-credentials token (cached until expiry), paged nested catalog,
orders returning ``sims[]``.

Wire format under ``{base_url}/v2`` (Airalo's SDK and partner docs; provider-apis.md §1):
``POST token`` (form ``client_id, client_secret, grant_type=client_credentials``) →
``data{access_token, expires_in}``, limited to 3 calls a minute, so the token lives in
``TOKENS`` until shortly before it expires and is fetched again only then or after a 401.
``GET packages?limit=&page=`` → ``data[]`` (country or region: ``country_code``, ``title``) →
``operators[]`` → ``packages[]`` (``id``, ``net_price`` = what we pay, ``amount`` MB, ``day``,
``is_unlimited``), paged until ``meta.last_page``. ``POST orders {package_id, quantity, type,
description}`` → ``data{id, sims[{iccid, lpa (SM-DP+ host), matching_id, qrcode (LPA)}]}``;
out of stock is 422 ``{code: 33 | 34}``. Our reference goes in ``description``.

Airalo has no idempotency key either, but its order list can be searched by description:
``GET orders?filter[description]=&include=sims`` is a LIKE ``'%…%'`` search, paged as packages
are ("Get order list", developers.partners.airalo.com/get-order-list-11883022e0, as assembled
in api-evangelist/airalo ``openapi/airalo-rest-api-endpoints-manage-orders-api-openapi.yml``).
So a purchase whose answer was lost is found again by our reference (``_find``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from pydantic import Field

from resources.connection import ConnectionSpec, Credentials
from resources.esim.base import (
    MalformedEsim, OutOfStock, ProviderOrderStatus, ProviderPackage, ProvisionedEsim, _Wire, json_body, make_esim,
)
from resources.esim.client import ESIM_POLICY, BearerClient, EsimOptions
from resources.http import CallPolicy, ProviderError, RequestInvalid
from resources.provider import Provider
from warehouse.tenants import TenantConnection

SYSTEM = "airalo"
API_PATH = "/v2"
OUT_OF_STOCK_CODES = {"33", "34"}  # "insufficient stock", "package invalid or out of stock"


class AiraloPackage(_Wire):
    id: str
    type: str = "sim"
    title: str
    net_price: Decimal | None = None
    amount: int = 0
    day: int
    is_unlimited: bool = False


class AiraloEntry(_Wire):
    """A country or region with its operators; packages are validated one by one."""

    slug: str
    country_code: str | None = None
    title: str
    operators: list[dict[str, Any]] = Field(default_factory=list)

    def normalise(self, raw: dict[str, Any]) -> ProviderPackage:
        package = AiraloPackage.model_validate(raw)
        if package.net_price is None:
            raise ValueError("net_price (our cost) is missing")
        code = (self.country_code or "").upper() or None
        return ProviderPackage(
            provider=SYSTEM, provider_package_id=package.id, name=f"{self.title} {package.title}",
            country_code=code, region=None if code else self.title,
            data_mb=None if package.is_unlimited else package.amount, unlimited=package.is_unlimited,
            validity_days=package.day, cost=package.net_price,
        )


class PageMeta(_Wire):
    current_page: int
    last_page: int


class AiraloSim(_Wire):
    iccid: str
    lpa: str | None = None
    matching_id: str | None = None
    qrcode: str | None = None


class AiraloOrder(_Wire):
    id: int | str
    description: str | None = None
    sims: list[AiraloSim] = Field(default_factory=list)

    def esim(self) -> ProvisionedEsim:
        if not self.sims:
            raise MalformedEsim(SYSTEM, f"order {self.id} has no sims", provider_order_id=str(self.id))
        sim = self.sims[0]
        return make_esim(SYSTEM, self.id, sim.iccid, sim.qrcode, sim.lpa, sim.matching_id)


class AiraloClient(BearerClient):
    """One Airalo partner account (credentials ``client_id``, ``client_secret``)."""

    name = SYSTEM
    api_path = API_PATH
    default_page_size = 25

    def __init__(self, connection: TenantConnection, *, policy: CallPolicy) -> None:
        self._client_id = self.credential(connection, "client_id")
        self._client_secret = self.credential(connection, "client_secret")
        super().__init__(connection, self._client_id, self._client_secret, policy=policy)

    def _fetch_token(self) -> tuple[str, float]:
        body = self.http.request("POST", "/token", data={
            "client_id": self._client_id, "client_secret": self._client_secret, "grant_type": "client_credentials",
        }).json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("access_token"):
            raise ProviderError(self.name, "token endpoint answered without a token")
        return str(data["access_token"]), float(data.get("expires_in") or 3600)

    def iter_packages(self) -> Iterator[ProviderPackage]:
        """Every SIM package of every country and region, page by page until ``meta.last_page``."""
        page = 1
        while True:
            body = self.get_json("/packages", params={"limit": self.page_size, "page": page})
            for raw in body.get("data") or []:
                # a country whose record cannot be read: which packages it lists is unknown (no id)
                entry = self._accept(lambda: AiraloEntry.model_validate(raw), raw, None)
                for operator in entry.operators if entry else []:
                    for item in operator.get("packages") or []:
                        if isinstance(item, dict) and item.get("type", "sim") != "sim":
                            continue  # top-ups are sold onto an existing eSIM, not as a plan
                        package = self._accept(lambda: entry.normalise(item), item)
                        if package:
                            yield package
            meta = self._expect(PageMeta, body.get("meta"), f"packages page {page}")
            if page >= meta.last_page or not body.get("data"):
                return
            page += 1

    def _buy(self, provider_package_id: str, reference: str, email: str | None,
             on_created: Callable[[str], None] | None) -> ProvisionedEsim:
        # No ``to_email``: Storehouse emails the customer itself, with its own QR code.
        try:
            body = json_body(self.request("POST", "/orders", once=True, json={
                "package_id": provider_package_id, "quantity": 1, "type": "sim", "description": reference,
            }))
        except RequestInvalid as exc:
            if exc.status == 422 and exc.error_code in OUT_OF_STOCK_CODES:
                raise OutOfStock(self.name, f"package {provider_package_id} is out of stock", status=422) from None
            raise
        return self._expect(AiraloOrder, body.get("data"), f"order for {provider_package_id}").esim()

    def _lookup(self, provider_order_id: str) -> ProviderOrderStatus:
        order = self._expect(AiraloOrder, self.get_json(f"/orders/{provider_order_id}").get("data"),
                             f"order {provider_order_id}")
        return self._status(order)

    def _find(self, reference: str) -> ProviderOrderStatus:
        """The order whose description is exactly ``reference`` (the filter also matches longer
        descriptions: "ord-1" finds "ord-12"), page by page until ``meta.last_page``."""
        page = 1
        while True:
            body = self.get_json("/orders", params={"filter[description]": reference, "include": "sims",
                                                    "limit": self.page_size, "page": page})
            for raw in body.get("data") or []:
                order = self._expect(AiraloOrder, raw, f"orders page {page}")
                if order.description == reference:
                    return self._status(order)
            meta = self._expect(PageMeta, body.get("meta"), f"orders page {page}")
            if page >= meta.last_page or not body.get("data"):
                return ProviderOrderStatus(provider=self.name, provider_order_id=None, state="not_found",
                                           detail="no order carries our reference")
            page += 1

    def _status(self, order: AiraloOrder) -> ProviderOrderStatus:
        if not order.sims:
            return ProviderOrderStatus(provider=self.name, provider_order_id=str(order.id), state="pending",
                                       detail="order has no sims yet")
        return ProviderOrderStatus(provider=self.name, provider_order_id=str(order.id), state="completed",
                                   esim=order.esim())


class AiraloCredentials(Credentials):
    client_id: str
    client_secret: str


CONNECTION = ConnectionSpec(SYSTEM, AiraloCredentials, EsimOptions)

PROVIDER = Provider(
    system=SYSTEM, kind="esim", connection=CONNECTION, client=AiraloClient, policy=ESIM_POLICY,
    wire=(AiraloEntry, AiraloOrder), sandbox=SYSTEM, priority=3,  # default failover order: lower first
    rate_limit_scope=("the token endpoint allows 3 calls a minute per account: TOKENS holds one token per account per process "
                      "for its lifetime, so even one exchange per process per token lifetime stays far below it"),
)
