"""What every POS client shares: the normalised records, the client protocol, token-carrying calls.

Each client (``resources/pos/<system>.py``) validates its own wire format with pydantic models
and translates it into the records below. These records keep the *meaning* of the source but
not yet our conventions: names, labels and units arrive as the POS sends them ("BLUE DREAM
3.5G", "Sativa Dominant", ``mg/g``, ``EIGHTH``, cents already turned into ``Decimal`` dollars).
``syncing.pos_normalise`` turns them into warehouse rows; keeping that step out of the clients
lets the golden test feed all six dialects through one set of rules.

A record that does not validate is yielded as ``warehouse.syncs.Rejected`` in its place, so
the sync quarantines it and carries on.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import httpx

from pydantic import BaseModel, Field, ValidationError

from resources.connection import Credentials, Options, page_size_field
from resources.http import AuthFailed, CallPolicy, HttpSession
from resources.provider import TOKENS, TokenCache, Wire  # noqa: F401  (TokenCache, Wire: the POS modules' names)
from warehouse.syncs import Rejected
from warehouse.types import to_utc

PRODUCTS, INVENTORY, CUSTOMERS = "products", "inventory", "customers"
# What every POS states unless its module says otherwise: 20 s per call, 5 attempts, 0.25 s backoff
# base, 8 connections per account, and per run at most 30 retries + 1 per 5 calls.
POS_POLICY = CallPolicy(timeout_s=20.0, attempts=5, backoff_base_s=0.25, max_connections=8,
                        run_retry_minimum=30, run_retry_ratio=0.2)


class PosCredentials(Credentials):
    """What every POS/Portaus account may hold besides its API keys."""

    webhook_secret: str | None = None  # the shared secret its webhook deliveries carry
    orders_api_key: str | None = None  # signs the shop's calls to the POS orders API


class PosOptions(Options):
    """What every POS/Portaus account may set: paging, sync policy, normalisation, order rules."""

    page_size: int | None = page_size_field()  # each POS caps it at what its API takes
    full_refresh_hours: float | None = Field(None, ge=0)  # 0: every read a full one
    batch_size: int | None = Field(None, ge=1)
    max_delete_fraction: float | None = Field(None, ge=0, le=1)
    category_overrides: dict[str, Any] = {}
    currency: str | None = None
    low_stock_threshold: float | None = Field(None, ge=0)
    weight_min_g: float | None = Field(None, gt=0)
    weight_increment_g: float | None = Field(None, gt=0)
    order_rules: dict[str, Any] = {}


class Potency(BaseModel):
    """One cannabinoid as the source states it: a range (low == high when single-valued)."""

    name: str
    low: Decimal | None = None
    high: Decimal | None = None
    unit: str | None = None  # "%", "PERCENTAGE", "mg", "MILLIGRAMS", "mg/g", ...


class PosProduct(BaseModel):
    source: str
    source_id: str
    sku: str | None = None
    name: str
    brand: str | None = None
    category_labels: list[str] = Field(default_factory=list, description="primary first")
    strain_labels: list[str] = Field(default_factory=list)
    effects: list[str] = Field(default_factory=list)
    flavors: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="unclassified labels")
    potency: list[Potency] = Field(default_factory=list)
    size: str | None = None
    net_amount: Decimal | None = None
    net_unit: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    alcohol_pct: Decimal | None = None
    active: bool = True
    deleted: bool = False
    updated_at: dt.datetime | None = None
    stock_ref: str | None = Field(None, description="id the POS's stock records use, when not source_id")
    attributes: dict[str, Any] = Field(default_factory=dict)


class PosInventoryItem(BaseModel):
    source: str
    product_id: str = Field(description="source_id of the product (or its stock_ref when by_stock_ref)")
    by_stock_ref: bool = False
    location_id: str = ""
    lot_id: str = ""
    sku: str | None = None
    quantity: Decimal
    quantity_unit: str | None = None  # "each", "units", "ea", "g", "GRAMS", ...
    capped_at: Decimal | None = Field(None, description="the source never reports more than this")
    compliance_id: str | None = None
    expires_on: dt.date | None = None
    packaged_on: dt.date | None = None
    active: bool = True
    deleted: bool = False
    updated_at: dt.datetime | None = None


class PosCustomer(BaseModel):
    source: str
    source_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    birth_date: dt.date | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    gender: str | None = None
    medical_id: str | None = None
    medical_id_expires_on: dt.date | None = None
    customer_type: str | None = None
    loyalty_points: Decimal | None = None
    marketing_opt_in: bool | None = None
    status: str | None = None
    deleted: bool = False
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class SaqBranch(BaseModel):
    number: str
    name: str
    city: str | None = None
    address: str | None = None
    phone: str | None = None


class PosClient(Protocol):
    """One tenant's account on one POS. Generators hide paging; ``None`` means a full read."""

    system: str
    session: HttpSession
    supports_incremental: frozenset[str]

    @property
    def calls(self) -> int: ...
    def call_stats(self) -> dict[str, int]: ...
    def iter_products(self, updated_since: dt.datetime | None = None) -> Iterator[PosProduct | Rejected]: ...
    def iter_inventory(self, updated_since: dt.datetime | None = None) -> Iterator[PosInventoryItem | Rejected]: ...
    def iter_customers(self, updated_since: dt.datetime | None = None) -> Iterator[PosCustomer | Rejected]: ...
    def still_listed(self, product_ids: list[str]) -> set[str] | None: ...
    def close(self) -> None: ...


W = TypeVar("W", bound=BaseModel)


def parse(model: type[W], raw: Any, id_field: str | None = None) -> W | Rejected:
    """``model`` validated from ``raw``, or a ``Rejected`` naming the first bad field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        source_id = raw.get(id_field) if id_field and isinstance(raw, dict) else None
        return Rejected(raw, f"{where}: {first['msg']}", None if source_id is None else str(source_id))


def translate(raw: Any, model: type[W], id_field: str, to_record: Callable[[W], Any]) -> Any:
    """Validate one raw record and translate it; a translation error is a rejection too."""
    wire = parse(model, raw, id_field)
    if isinstance(wire, Rejected):
        return wire
    try:
        return to_record(wire)
    except (ValueError, ArithmeticError, ValidationError) as exc:
        return Rejected(raw, f"translation: {exc}"[:300], str(raw.get(id_field)) if isinstance(raw, dict) else None)


class NotConfigured(ValueError):
    """The connection lacks a setting this provider needs before an order may be sent."""


def numeric(value: str, what: str) -> int:
    """An id some POS systems take only as a number (order formats)."""
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{what} must be numeric for this POS, got {value!r}") from None


def money(value: Any) -> Decimal | None:
    """A JSON number or string as an exact Decimal (via ``str`` so 45.1 stays 45.1)."""
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else to_utc(value)


def from_epoch_ms(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)


def iso_z(value: dt.datetime) -> str:
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"




class BasePosClient:
    """The parts every client has: its session, call count and close."""

    system = "pos"
    supports_incremental: frozenset[str] = frozenset()

    def __init__(self, session: HttpSession, options: dict[str, Any] | None = None) -> None:
        self.session = session
        self.options = options or {}

    @property
    def calls(self) -> int:
        return self.session.stats.calls

    def call_stats(self) -> dict[str, int]:
        """This run's calls, retries and retry budget, for run metadata."""
        return self.session.call_stats()

    def close(self) -> None:
        self.session.close()

    def still_listed(self, product_ids: list[str]) -> set[str] | None:
        """Of products a full read did not return, those the POS still lists when asked by id: a
        product deleted while we paged shifts the rest, and a live one can slip between pages.
        None where the POS cannot be asked by id (its absence then has to be believed)."""
        return None



class TokenClient(BasePosClient, abc.ABC):
    """A client whose calls carry an access token from ``TOKENS``; a refused token is renewed once."""

    def __init__(self, session: HttpSession, token_key: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(session, options)
        self._token_key = token_key

    @abc.abstractmethod
    def fetch_token(self) -> tuple[str, float]:
        """(token, lifetime in seconds): one exchange with the provider."""

    @abc.abstractmethod
    def auth_headers(self, token: str) -> dict[str, str]:
        """The headers that carry ``token`` on a call."""

    def authed(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in (1, 2):
            token = TOKENS.get(self._token_key, self.fetch_token)
            try:
                return self.session.request(method, path, headers=self.auth_headers(token), **kwargs)
            except AuthFailed:
                TOKENS.invalidate(self._token_key, token)  # expired or revoked early: exchange again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")
