"""Request and response models of the shop API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, field_validator

Email = Annotated[str, StringConstraints(
    strip_whitespace=True, max_length=254,
    pattern=r"^[^@\s<>()\[\],;:\"\x00-\x1f\x7f]+@[^@\s<>()\[\],;:\"\x00-\x1f\x7f]+\.[A-Za-z]{2,}$")]
CONTROL = frozenset(chr(c) for c in [*range(0x20), 0x7F] if chr(c) not in "\t\n\r")


class Input(BaseModel):
    """A request body: unknown fields refused, and no control characters but tab and newlines in
    any text (a NUL, for one, is nothing a customer types and something PostgreSQL cannot store)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: object) -> object:
        if isinstance(value, str) and not CONTROL.isdisjoint(value):
            raise ValueError("control characters are not allowed")
        return value


# Money leaves as a string with two decimals ("3.99"): exact, and what a customer expects to read.
Amount = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json")]


class CatalogItem(BaseModel):
    package_id: str = Field(description="pass this to checkout")
    name: str
    country_code: str | None
    region: str | None
    data_mb: int | None = Field(description="null when unlimited")
    unlimited: bool
    validity_days: int
    price: Amount
    currency: str
    low_stock: bool


class Catalog(BaseModel):
    tenant: str
    items: list[CatalogItem]


# The demo shop's Japan 1 GB / 7 days plan from eSIM Card (its id is stable: see sandbox/esimcard.py).
DEMO_PACKAGE = "esimcard:cf7a582e-de40-5ba9-91d7-cce778a7eaa4"


class CheckoutRequest(Input):
    model_config = ConfigDict(extra="forbid", str_max_length=320, json_schema_extra={"examples": [
        {"package_id": DEMO_PACKAGE, "quantity": 1, "email": "traveller@example.com"}]})

    package_id: str = Field(min_length=3, max_length=200, examples=[DEMO_PACKAGE],
                            description="a `package_id` from the shop's catalog")
    quantity: int = Field(1, ge=1, le=100, description="eSIMs to buy (the shop's own limit applies too)")
    email: Email = Field(description="where the eSIM is sent")


class CheckoutResponse(BaseModel):
    order_id: str
    status: str
    checkout_url: str | None = Field(description="send the customer here to pay")
    order_url: str = Field(description="the customer's link to the order (carries its token)")
    token: str = Field(description="the order's access token")
    amount_total: Amount
    currency: str
    replayed: bool = Field(description="true when an Idempotency-Key returned an earlier checkout")


class EsimView(BaseModel):
    unit: int
    iccid: str
    activation_code: str
    qr_png_url: str
    qr_png_base64: str


class OrderView(BaseModel):
    order_id: str
    status: str
    package_name: str
    quantity: int
    amount_total: Amount
    amount_refunded: Amount
    currency: str
    created_at: dt.datetime
    paid_at: dt.datetime | None
    failure_reason: str | None
    esims: list[EsimView]


class WebhookAck(BaseModel):
    received: bool = True
    outcome: str
