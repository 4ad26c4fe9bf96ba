"""MobiMatter merchant API v2: ``api-key`` + ``merchantId`` headers, one unpaged product list,
two-step orders (create → complete).

Wire format under ``{base_url}/api/v2`` (MobiMatter's swagger and plugin notes; the sandbox fake):
``GET products`` → ``{statusCode, result[]}`` with ``wholesalePrice``, ``countries``, ``regions``
and ``productDetails`` name/value pairs (``PLAN_DATA_LIMIT`` "Unlimited" or a number with
``PLAN_DATA_UNIT``, ``PLAN_VALIDITY`` in **hours**); ``POST order {productId, productCategory,
label}`` → ``result.orderId`` (state Created, stock reserved), ``PUT order/complete {orderId}`` →
the order with ``lineItemDetails`` (``LOCAL_PROFILE_ASSISTANT``, ``ICCID``, ``SMDP_ADDRESS``,
``ACTIVATION_CODE`` = matching id); ``PUT order/cancel {orderId, reason}`` releases a created
order; ``GET order/{id}``. A 429 **without** ``Retry-After`` on create means out of stock, not a
throttle. Our reference goes in ``label``.

MobiMatter has no idempotency key and no lookup by reference, so the ``orderId`` is the only way
back to an order: it is handed to ``on_created`` before completing, and ``resume`` completes an
order a dead worker left created (completing is idempotent there). A completion refused for
good cancels the order, so it holds no stock, and so does ``release`` when provisioning gives
up on an order whose completion it could never confirm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from decimal import Decimal

from pydantic import Field

from resources.connection import ConnectionSpec, Credentials
from resources.esim.base import (
    CompletionRefused, OutOfStock, ProviderOrderStatus, ProviderPackage, ProvisionedEsim, _Wire, make_esim,
)
from resources.esim.client import ESIM_POLICY, EsimClientBase, EsimOptions
from resources.http import CallPolicy, AuthFailed, ProviderError, RateLimited, RequestInvalid
from resources.provider import Provider
from warehouse.tenants import TenantConnection

SYSTEM = "mobimatter"
API_PATH = "/api/v2"
CATEGORY = "esim_realtime"
MB_PER_UNIT = {"MB": 1, "GB": 1024, "TB": 1024 * 1024}
STATES = {"completed": "completed", "created": "created", "pending": "pending", "processing": "pending",
          "cancelled": "failed", "canceled": "failed", "expired": "failed", "failed": "failed"}


class Detail(_Wire):
    name: str
    value: str | None = None


def details(items: list[Detail]) -> dict[str, str]:
    return {d.name: d.value for d in items if d.value is not None}


class MobiProduct(_Wire):
    product_id: str = Field(alias="productId")
    wholesale_price: Decimal = Field(alias="wholesalePrice")
    currency: str = Field("USD", alias="currencyCode")
    family: str | None = Field(None, alias="productFamilyName")
    countries: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    product_details: list[Detail] = Field(default_factory=list, alias="productDetails")

    def normalise(self) -> ProviderPackage:
        d = details(self.product_details)
        limit, unit = d.get("PLAN_DATA_LIMIT", ""), d.get("PLAN_DATA_UNIT", "").upper()
        unlimited = limit.strip().lower() == "unlimited"
        if not unlimited and unit not in MB_PER_UNIT:
            raise ValueError(f"PLAN_DATA_UNIT {unit!r} is not MB/GB/TB")
        hours = int(d["PLAN_VALIDITY"])
        single = self.countries[0].upper() if len(self.countries) == 1 else None
        return ProviderPackage(
            provider=SYSTEM, provider_package_id=self.product_id,
            name=d.get("PLAN_TITLE") or self.family or self.product_id,
            country_code=single, region=None if single else (self.regions[0] if self.regions else None),
            data_mb=None if unlimited else int(Decimal(limit) * MB_PER_UNIT[unit]), unlimited=unlimited,
            validity_days=math.ceil(hours / 24), cost=self.wholesale_price, currency=self.currency,
        )


class LineItem(_Wire):
    line_item_details: list[Detail] = Field(default_factory=list, alias="lineItemDetails")


class MobiOrder(_Wire):
    order_id: str = Field(alias="orderId")
    state: str = Field(alias="orderState")
    line: LineItem | None = Field(None, alias="orderLineItem")

    def esim(self) -> ProvisionedEsim:
        d = details(self.line.line_item_details if self.line else [])
        return make_esim(SYSTEM, self.order_id, d.get("ICCID"), d.get("LOCAL_PROFILE_ASSISTANT"),
                         d.get("SMDP_ADDRESS"), d.get("ACTIVATION_CODE"))


class MobiMatterClient(EsimClientBase):
    """One MobiMatter merchant (credentials ``merchant_id``, ``api_key``)."""

    name = SYSTEM
    api_path = API_PATH

    def __init__(self, connection: TenantConnection, *, policy: CallPolicy) -> None:
        merchant, key = self.credential(connection, "merchant_id"), self.credential(connection, "api_key")
        super().__init__(connection, merchant, key, policy=policy,
                         headers={"merchantId": merchant, "api-key": key})

    def iter_packages(self) -> Iterator[ProviderPackage]:
        """Every product assigned to the merchant (MobiMatter does not page this list)."""
        body = self.get_json("/products")
        for raw in body.get("result") or []:
            package = self._accept(lambda: MobiProduct.model_validate(raw).normalise(), raw, "productId")
            if package:
                yield package

    def _buy(self, provider_package_id: str, reference: str, email: str | None,
             on_created: Callable[[str], None] | None) -> ProvisionedEsim:
        order_id = self._create(provider_package_id, reference)
        if on_created is not None:
            on_created(order_id)
        return self.resume(order_id)

    def _create(self, provider_package_id: str, reference: str) -> str:
        """Create the order (stock is held from now on) and return its ``orderId``."""
        try:
            created = self.request("POST", "/order", once=True, json={
                "productId": provider_package_id, "productCategory": CATEGORY, "label": reference,
            }).json()
        except RateLimited as exc:
            if exc.retry_after is None:
                raise OutOfStock(self.name, f"product {provider_package_id} is out of stock", status=429) from None
            raise
        order_id = str((created.get("result") or {}).get("orderId") or "")
        if not order_id:
            raise ProviderError(self.name, f"order for {provider_package_id} answered without an orderId")
        return order_id

    def resume(self, provider_order_id: str) -> ProvisionedEsim:
        """Complete a created order; a completed one comes back unchanged, so this may be repeated.

        A refusal (4xx: the wallet cannot pay, the order expired) will not change on a retry: the
        order is cancelled so it holds no stock, and ``CompletionRefused`` says what happened.
        """
        try:
            done = self.request("PUT", "/order/complete", json={"orderId": provider_order_id}).json()
        except (RequestInvalid, AuthFailed) as exc:
            raise self._cancel(provider_order_id, exc) from exc
        return self._expect(MobiOrder, done.get("result"), f"order {provider_order_id}").esim()

    def release(self, provider_order_id: str, reason: str) -> bool:
        """``PUT order/cancel``: a created order gives its stock back (a completed one cannot)."""
        self.request("PUT", "/order/cancel", json={"orderId": provider_order_id, "reason": reason})
        return True

    def _cancel(self, order_id: str, refusal: ProviderError) -> CompletionRefused:
        why = str(refusal).removeprefix(f"{self.name}: ")
        try:
            self.release(order_id, "completion refused")
        except ProviderError as exc:
            failed = str(exc).removeprefix(f"{self.name}: ")
            return CompletionRefused(self.name, f"order {order_id} was not completed ({why}) and could not be "
                                     f"cancelled ({failed}): it may still hold stock", provider_order_id=order_id,
                                     status=refusal.status)
        return CompletionRefused(self.name, f"order {order_id} was not completed ({why}); cancelled",
                                 provider_order_id=order_id, status=refusal.status)

    def _lookup(self, provider_order_id: str) -> ProviderOrderStatus:
        body = self.get_json(f"/order/{provider_order_id}")
        order = self._expect(MobiOrder, body.get("result"), f"order {provider_order_id}")
        state = STATES.get(order.state.lower(), "pending")
        return ProviderOrderStatus(
            provider=self.name, provider_order_id=order.order_id, state=state,
            esim=order.esim() if state == "completed" else None,
            detail=None if order.state.lower() in STATES else f"unknown order state {order.state!r}",
        )


class MobiMatterCredentials(Credentials):
    merchant_id: str
    api_key: str


CONNECTION = ConnectionSpec(SYSTEM, MobiMatterCredentials, EsimOptions)

PROVIDER = Provider(
    system=SYSTEM, kind="esim", connection=CONNECTION, client=MobiMatterClient, policy=ESIM_POLICY,
    wire=(MobiProduct, MobiOrder), sandbox=SYSTEM, priority=2,  # default failover order: lower first
    rate_limit_scope=("none published; a connection may set rate_limit_per_s, held per process (one client per run)"),
)
