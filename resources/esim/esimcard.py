"""eSIM Card reseller API: login → bearer token, paged packages, one-step purchase.

Wire format under ``{base_url}/api/developer/reseller`` (PHP SDK and the sandbox fake):
``POST login {email, password}`` → ``{status, access_token}`` (no lifetime given);
``GET packages?page=&per_page=`` → ``{data[], meta{total, perPage, currentPage, lastPage}}``;
``POST package/purchase {package_type_id}`` → ``{status, data{sim{id, iccid, qr_code_text,
smdp_address, matching_id}, order_id}}``, where refusals (out of stock, empty balance) come as
200 ``{status: false, message}``; ``GET my-esims/{id}``; ``GET my-esims?page=`` →
``{data[{id, iccid, created_at "Y-m-d H:M:S", last_bundle, total_bundles, status}], meta}``.

eSIM Card has no order lookup and no field for our reference: the purchased sim's id is our
``provider_order_id`` (``my-esims/{id}`` answers for it), and a purchase whose answer was lost
cannot be found again by our reference. What can be read is the account's eSIM list
(``esims_bought_since``): the provisioning service matches a lost purchase against it
(``commerce.reconcile``). ``created_at`` carries no zone; it is read as UTC [u].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator

from resources.connection import ConnectionSpec, Credentials
from resources.esim.base import (
    AccountEsim, MalformedEsim, OutOfStock, ProviderOrderStatus, ProviderPackage, ProvisionedEsim, _Wire, make_esim,
)
from resources.esim.client import ESIM_POLICY, BearerClient, EsimOptions
from resources.http import CallPolicy, ProviderError, RequestInvalid
from resources.provider import Provider
from warehouse.tenants import TenantConnection

SYSTEM = "esimcard"
API_PATH = "/api/developer/reseller"
TOKEN_TTL_S = 3600.0  # assumed; a 401 renews it sooner
MB_PER_UNIT = {"MB": 1, "GB": 1024, "TB": 1024 * 1024}
DAYS_PER_UNIT = {"DAY": 1, "DAYS": 1, "WEEK": 7, "WEEKS": 7, "MONTH": 30, "MONTHS": 30}


class Coverage(_Wire):
    code: str
    country_name: str | None = None


class EsimCardPackage(_Wire):
    id: str
    name: str
    price: Decimal
    data_quantity: Decimal = Decimal(0)
    data_unit: str = "GB"
    package_validity: int
    package_validity_unit: str = "Day"
    unlimited: bool = False
    coverage: list[Coverage] = Field(default_factory=list)

    def normalise(self) -> ProviderPackage:
        days = DAYS_PER_UNIT.get(self.package_validity_unit.upper())
        mb = MB_PER_UNIT.get(self.data_unit.upper())
        if days is None or (mb is None and not self.unlimited):
            raise ValueError(f"unknown unit {self.package_validity_unit!r} or {self.data_unit!r}")
        single = self.coverage[0].code.upper() if len(self.coverage) == 1 else None
        # The name ends with the area, "eSIM Data For 1GB in 7 Days, Europe": the only region label sent.
        region = None if single else (self.name.rpartition(", ")[2] or f"{len(self.coverage)} countries")
        return ProviderPackage(
            provider=SYSTEM, provider_package_id=self.id, name=self.name, country_code=single, region=region,
            data_mb=None if self.unlimited else int(self.data_quantity * mb), unlimited=self.unlimited,
            validity_days=self.package_validity * days, cost=self.price,
        )


class Meta(_Wire):
    total: int
    last_page: int = Field(alias="lastPage")


class EsimCardSim(_Wire):
    id: str
    iccid: str
    qr_code_text: str
    smdp_address: str | None = None
    matching_id: str | None = None

    def esim(self) -> ProvisionedEsim:
        return make_esim(SYSTEM, self.id, self.iccid, self.qr_code_text, self.smdp_address, self.matching_id)


class ListedSim(_Wire):
    """A row of ``my-esims``: no activation code (``my-esims/{id}`` has it)."""

    id: str
    iccid: str | None = None
    created_at: datetime
    last_bundle: str | None = None
    total_bundles: int = 1

    @field_validator("created_at", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if isinstance(value, str):
            return datetime.strptime(value.strip()[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        return value

    def listed(self) -> AccountEsim:
        return AccountEsim(provider=SYSTEM, provider_order_id=self.id, iccid=self.iccid, package_name=self.last_bundle,
                           bundles=self.total_bundles, bought_at=self.created_at)


class EsimCardClient(BearerClient):
    """One eSIM Card reseller account (credentials ``email``, ``password``)."""

    name = SYSTEM
    api_path = API_PATH
    lists_esims = True

    def __init__(self, connection: TenantConnection, *, policy: CallPolicy) -> None:
        self._email = self.credential(connection, "email")
        self._password = self.credential(connection, "password")
        super().__init__(connection, self._email, self._password, policy=policy)
        self._sandbox_orders = bool(connection.options.get("sandbox_orders", False))

    def _fetch_token(self) -> tuple[str, float]:
        body = self.http.request("POST", "/login", json={"email": self._email, "password": self._password}).json()
        if not body.get("status") or not body.get("access_token"):
            raise ProviderError(self.name, "login answered without a token")
        return str(body["access_token"]), TOKEN_TTL_S

    def iter_packages(self) -> Iterator[ProviderPackage]:
        """Every package, page by page until ``meta.lastPage``."""
        page = 1
        while True:
            body = self.get_json("/packages", params={"page": page, "per_page": self.page_size})
            rows = body.get("data") or []
            for raw in rows:
                package = self._accept(lambda: EsimCardPackage.model_validate(raw).normalise(), raw)
                if package:
                    yield package
            last = self._expect(Meta, body.get("meta"), f"packages page {page}").last_page
            if page >= last or not rows:
                return
            page += 1

    def _buy(self, provider_package_id: str, reference: str, email: str | None,
             on_created: Callable[[str], None] | None) -> ProvisionedEsim:
        payload: dict[str, Any] = {"package_type_id": provider_package_id}
        if self._sandbox_orders:
            payload["sandbox"] = True
        body = self.request("POST", "/package/purchase", once=True, json=payload).json()
        if not body.get("status"):
            message = str(body.get("message") or "purchase refused")
            refusal = OutOfStock if "out of stock" in message.lower() else RequestInvalid
            raise refusal(self.name, f"purchase of {provider_package_id} refused: {message}")
        sim = (body.get("data") or {}).get("sim")
        if not isinstance(sim, dict):
            raise MalformedEsim(self.name, f"purchase of {provider_package_id} answered without a sim")
        try:
            return EsimCardSim.model_validate(sim).esim()
        except ValueError:  # bought, but not something we can hand out: keep its id to look it up
            sim_id = sim.get("id")
            raise MalformedEsim(self.name, f"purchase of {provider_package_id} answered an incomplete sim",
                                provider_order_id=str(sim_id) if sim_id else None) from None

    def esims_bought_since(self, since: datetime) -> list[AccountEsim]:
        """Every eSIM of the account created at or after ``since``: all pages are read, since the
        list's order is not documented."""
        found, page = [], 1
        while True:
            body = self.get_json("/my-esims", params={"page": page})
            rows = body.get("data") or []
            for raw in rows:
                sim = self._expect(ListedSim, raw, f"my-esims page {page}").listed()
                if sim.bought_at >= since:
                    found.append(sim)
            last = self._expect(Meta, body.get("meta"), f"my-esims page {page}").last_page
            if page >= last or not rows:
                return found
            page += 1

    def _lookup(self, provider_order_id: str) -> ProviderOrderStatus:
        body = self.get_json(f"/my-esims/{provider_order_id}")
        sim = self._expect(EsimCardSim, (body.get("data") or {}).get("sim"), f"sim {provider_order_id}")
        return ProviderOrderStatus(provider=self.name, provider_order_id=sim.id, state="completed", esim=sim.esim())


class EsimCardCredentials(Credentials):
    email: str
    password: str


class EsimCardOptions(EsimOptions):
    sandbox_orders: bool | None = None


CONNECTION = ConnectionSpec(SYSTEM, EsimCardCredentials, EsimCardOptions)

PROVIDER = Provider(
    system=SYSTEM, kind="esim", connection=CONNECTION, client=EsimCardClient, policy=ESIM_POLICY,
    wire=(EsimCardPackage, EsimCardSim, ListedSim), sandbox=SYSTEM, priority=1,  # default failover order: lower first
    rate_limit_scope=("none published; a connection may set rate_limit_per_s, held per process (one client per run)"),
)
