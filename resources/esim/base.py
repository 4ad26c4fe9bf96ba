"""What the three eSIM provider clients share: the normalised models and identifier checks.

Shared models are the contract the catalog assets and the provisioning service code against:
``ProviderPackage`` (one sellable plan), ``ProvisionedEsim`` (what a purchase delivers, validated:
ICCID 18–22 digits, activation code ``LPA:1$<SM-DP+ FQDN>$<MatchingID>[$<OID>[$<flag>]]`` per
SGP.22 §4.1), ``ProviderOrderStatus`` and ``AccountEsim``. Errors are the ``resources.http`` classes plus
``OutOfStock``, ``MalformedEsim`` and ``CompletionRefused``; none carries a credential. The
request plumbing every client shares lives in ``resources.esim.client``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from resources.provider import Wire

from resources.http import ProviderError, RequestInvalid

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OID = r"[0-9]+(?:\.[0-9]+)*"
LPA_PATTERN = re.compile(
    rf"^LPA:1\$(?P<host>(?:{_LABEL}\.)+{_LABEL})\$(?P<matching_id>[A-Za-z0-9-]+)"
    rf"(?:\$(?:{_OID})?\$[01]|\$(?:{_OID}))?$"  # optional OID and confirmation flag, no trailing '$'
)
ICCID_PATTERN = re.compile(r"^[0-9]{18,22}$")  # lenient: Airalo's sandbox ICCIDs fail Luhn


class OutOfStock(RequestInvalid):
    kind = "out_of_stock"


class MalformedEsim(ProviderError):
    """The provider answered a purchase with an ICCID or activation code we cannot hand out.

    The purchase itself went through: ``provider_order_id`` (when the answer named one) is kept
    on the attempt, so the bought eSIM can be looked up and queried or refunded at the provider.
    """

    kind = "malformed_esim"

    def __init__(self, provider: str, message: str, *, provider_order_id: str | None = None, **kw) -> None:
        super().__init__(provider, message, **kw)
        self.provider_order_id = provider_order_id


class CompletionRefused(RequestInvalid):
    """The provider created our order but refused to complete it (MobiMatter's second step).

    Nothing was sold. The client has tried to cancel the order so it holds no stock; the message
    says whether that worked, and ``provider_order_id`` keeps the order findable either way.
    """

    kind = "completion_refused"

    def __init__(self, provider: str, message: str, *, provider_order_id: str, **kw) -> None:
        super().__init__(provider, message, **kw)
        self.provider_order_id = provider_order_id


class ProviderPackage(BaseModel):
    """One plan a provider sells, in our units: MB (None when unlimited), days, USD cost."""

    provider: str
    provider_package_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1)
    country_code: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    region: str | None = None
    data_mb: int | None = Field(None, ge=0)
    unlimited: bool
    validity_days: int = Field(gt=0)
    cost: Decimal = Field(gt=0, allow_inf_nan=False)
    currency: str = "USD"


class ProvisionedEsim(BaseModel):
    provider: str
    provider_order_id: str
    iccid: str
    activation_code: str  # "LPA:1$host$MATCHING-ID"
    smdp_host: str
    matching_id: str

    @field_validator("iccid", mode="before")
    @classmethod
    def _iccid(cls, v: Any) -> Any:
        v = str(v).replace(" ", "")
        if not ICCID_PATTERN.match(v):
            raise ValueError("ICCID must be 18-22 digits")
        return v

    @model_validator(mode="after")
    def _lpa(self) -> "ProvisionedEsim":
        m = LPA_PATTERN.match(self.activation_code)
        if m is None:
            raise ValueError("activation code is not LPA:1$<SM-DP+ FQDN>$<matching id>")
        if m["host"].lower() != self.smdp_host.lower() or m["matching_id"] != self.matching_id:
            raise ValueError("activation code disagrees with the SM-DP+ host or matching id")
        return self


class ProviderOrderStatus(BaseModel):
    """``pending`` also stands for "cannot tell": never buy again on it (see ``detail``).

    ``created``: a two-step order exists and waits for us to complete it (``resume``).
    """

    provider: str
    provider_order_id: str | None
    state: Literal["completed", "created", "pending", "failed", "not_found"]
    esim: ProvisionedEsim | None = None
    detail: str | None = None


class AccountEsim(BaseModel):
    """One eSIM the provider account holds, as its list shows it (no activation code): what a
    purchase whose answer was lost is found again by, where the provider keeps no reference of ours."""

    provider: str
    provider_order_id: str
    iccid: str | None = None
    package_name: str | None = None
    bundles: int = 1
    bought_at: datetime


class EsimProviderClient(Protocol):
    name: str
    lists_esims: bool

    def iter_packages(self) -> Iterator[ProviderPackage]: ...
    def purchase(self, provider_package_id: str, reference: str, email: str | None = None,
                 on_created: Callable[[str], None] | None = None) -> ProvisionedEsim: ...
    def order_status(self, reference: str, provider_order_id: str | None = None) -> ProviderOrderStatus: ...
    def resume(self, provider_order_id: str) -> ProvisionedEsim: ...
    def esims_bought_since(self, since: datetime) -> list[AccountEsim] | None: ...
    def close(self) -> None: ...


_Wire = Wire  # the one wire-model base (resources.provider), under its old name here


def json_body(response: httpx.Response) -> Any:
    """The JSON body with every non-integer number as ``Decimal`` (money never passes through float)."""
    return json.loads(response.content, parse_float=Decimal)


def describe(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or 'record'}: {first['msg']}"


def make_esim(provider: str, order_id: Any, iccid: Any, lpa: Any, smdp_host: Any = None,
              matching_id: Any = None) -> ProvisionedEsim:
    """A validated eSIM; host and matching id default to the activation code's own."""
    m = LPA_PATTERN.match(str(lpa or ""))
    try:
        return ProvisionedEsim(
            provider=provider, provider_order_id=str(order_id), iccid=iccid, activation_code=str(lpa or ""),
            smdp_host=str(smdp_host or (m and m["host"]) or ""),
            matching_id=str(matching_id or (m and m["matching_id"]) or ""),
        )
    except ValidationError as exc:
        raise MalformedEsim(provider, f"order {order_id} returned an unusable eSIM ({describe(exc)})",
                            provider_order_id=str(order_id) if order_id else None) from None
