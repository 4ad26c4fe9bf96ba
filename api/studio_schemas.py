"""Request and response models of the studio's routes (staff and client portal)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer

from api.deps import Day
from api.schemas import Amount, Email, Input

# Exact decimals leave as strings ("3.000", "12.3450"): a unit price may have 4 places, a quantity 3.
Exact = Annotated[Decimal, PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json")]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
QuoteStatus = Literal["draft", "sent", "accepted", "declined", "expired"]
InvoiceStatus = Literal["draft", "issued", "partially_paid", "paid", "overdue", "void"]
Text = Annotated[str, Field(max_length=5000)]

EXAMPLE_ITEMS = [{"description": "PLA print, 0.2 mm layers, 15 % infill", "quantity": "2", "unit_price": "24.50"},
                 {"description": "Support removal and sanding", "quantity": "1", "unit_price": "15.00",
                  "discount_percent": "10"}]


# -- clients -------------------------------------------------------------------------------

class ClientIn(Input):
    name: str = Field(min_length=1, max_length=200)
    company: str | None = Field(None, max_length=200)
    email: Email | None = None
    phone: str | None = Field(None, max_length=50)
    address: str | None = Field(None, max_length=2000)
    abn: str | None = Field(None, max_length=20)


class ClientPatch(Input):
    name: Annotated[str, Field(min_length=1, max_length=200)] = None  # type: ignore[assignment]
    company: str | None = Field(None, max_length=200)
    email: Email | None = None
    phone: str | None = Field(None, max_length=50)
    address: str | None = Field(None, max_length=2000)
    abn: str | None = Field(None, max_length=20)


class ClientView(BaseModel):
    id: int
    name: str
    company: str | None
    email: str | None
    phone: str | None
    address: str | None
    abn: str | None
    user_id: str | None = Field(description="the client's own sign-in (role customer), if any")
    archived_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ClientPage(BaseModel):
    items: list[ClientView]
    next_after: int | None = Field(description="pass as `after` for the next page (null: no more)")


# -- documents -----------------------------------------------------------------------------

class ItemIn(Input):
    description: str = Field(min_length=1, max_length=2000)
    quantity: Decimal = Field(gt=0, le=1_000_000, decimal_places=3)
    unit_price: Decimal = Field(ge=0, le=1_000_000, decimal_places=4, description="before discount and tax")
    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100, decimal_places=2)
    tax_rate: Decimal | None = Field(None, ge=0, le=1, decimal_places=4,
                                     description="0.1 is 10 %; null: the studio's GST rate")


Items = Annotated[list[ItemIn], Field(max_length=200)]


class QuoteIn(Input):
    model_config = {"json_schema_extra": {"examples": [{"client_id": 1, "items": EXAMPLE_ITEMS}]}}
    client_id: RowId
    items: Items = Field(default_factory=list)
    notes: Text | None = None
    valid_until: Day | None = Field(None, description="null: the studio's quote validity from the day it is sent")


class QuotePatch(Input):
    client_id: RowId = None  # type: ignore[assignment]
    items: Items | None = Field(None, description="replaces every line")
    notes: Text | None = None
    valid_until: Day | None = None


class InvoiceIn(Input):
    model_config = {"json_schema_extra": {"examples": [{"client_id": 1, "items": EXAMPLE_ITEMS}]}}
    client_id: RowId
    items: Items = Field(default_factory=list)
    notes: Text | None = None
    due_date: Day | None = Field(None, description="null: the studio's payment terms from the day it is issued")


class InvoicePatch(Input):
    client_id: RowId = None  # type: ignore[assignment]
    items: Items | None = Field(None, description="replaces every line")
    notes: Text | None = None
    due_date: Day | None = None


class ItemView(BaseModel):
    id: int = Field(description="the line's id (a print job names it as `invoice_item_id`)")
    position: int
    description: str
    quantity: Exact
    unit_price: Exact
    discount_percent: Exact
    tax_rate: Exact
    line_subtotal: Amount = Field(description="quantity × unit price, rounded half up to cents")
    line_discount: Amount = Field(description="subtotal × discount %, rounded")
    line_tax: Amount = Field(description="(subtotal − discount) × tax rate, rounded")
    line_total: Amount


class DocumentSummary(BaseModel):
    id: int
    client_id: int
    number: int
    document_number: str = Field(description="prefix and number, as printed")
    stored_status: str = Field(description="the last transition made")
    issue_date: dt.date | None
    currency: str
    subtotal: Amount
    discount_total: Amount
    tax_total: Amount
    total: Amount = Field(description="the sum of the lines' totals")
    revision: int = Field(description="bumped by every change (a PDF of another revision is stale)")
    sent_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class QuoteSummary(DocumentSummary):
    status: QuoteStatus = Field(description="as shown: a sent quote past valid_until is expired")
    valid_until: dt.date | None
    accepted_at: dt.datetime | None
    declined_at: dt.datetime | None
    invoice_id: int | None = Field(description="the invoice it was converted to")


class InvoiceSummary(DocumentSummary):
    status: InvoiceStatus = Field(description="as shown: issued or partially paid past due_date is overdue")
    quote_id: int | None = Field(description="the quote it was converted from")
    due_date: dt.date | None
    amount_paid: Amount
    amount_refunded: Amount
    balance_due: Amount = Field(description="total − amount paid + amount refunded")
    issued_at: dt.datetime | None
    paid_at: dt.datetime | None
    voided_at: dt.datetime | None


class QuoteView(QuoteSummary):
    notes: str | None
    items: list[ItemView]


class InvoiceView(InvoiceSummary):
    notes: str | None
    items: list[ItemView]


class QuotePage(BaseModel):
    items: list[QuoteSummary]
    next_before: int | None = Field(description="pass as `before` for the next page (null: no more)")


class InvoicePage(BaseModel):
    items: list[InvoiceSummary]
    next_before: int | None = Field(description="pass as `before` for the next page (null: no more)")


class Converted(BaseModel):
    created: bool = Field(description="false: the quote was converted before; this is that invoice")
    invoice: InvoiceView


class VoidIn(Input):
    reason: str | None = Field(None, max_length=500)


# -- messages, activity, business ----------------------------------------------------------

class MessageIn(Input):
    body: str = Field(min_length=1, max_length=10_000)


class MessageView(BaseModel):
    id: int
    author_kind: Literal["staff", "client"]
    author_id: str | None
    body: str
    created_at: dt.datetime


class ActivityView(BaseModel):
    id: int
    action: str
    actor_kind: str
    actor_id: str | None
    detail: dict[str, Any]
    at: dt.datetime


class BusinessIn(Input):
    """The fields to set (the others keep their value); those every document needs cannot be null."""

    name: Annotated[str, Field(min_length=1, max_length=200)] = None  # type: ignore[assignment]
    address: str | None = Field(None, max_length=2000)
    phone: str | None = Field(None, max_length=50)
    email: Email | None = None
    abn: str | None = Field(None, max_length=20)
    bank_name: str | None = Field(None, max_length=100)
    bank_bsb: str | None = Field(None, max_length=10)
    bank_account: str | None = Field(None, max_length=30)
    bank_account_name: str | None = Field(None, max_length=200)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = None  # type: ignore[assignment]
    gst_rate: Annotated[Decimal, Field(ge=0, le=1, decimal_places=4)] = None  # type: ignore[assignment]
    quote_prefix: Annotated[str, Field(max_length=16, pattern=r"^[A-Za-z0-9/#._-]*$")] = None  # type: ignore[assignment]
    invoice_prefix: Annotated[str, Field(max_length=16, pattern=r"^[A-Za-z0-9/#._-]*$")] = None  # type: ignore[assignment]
    payment_terms_days: Annotated[int, Field(ge=0, le=365)] = None  # type: ignore[assignment]
    quote_valid_days: Annotated[int, Field(ge=1, le=365)] = None  # type: ignore[assignment]


class BusinessView(BaseModel):
    name: str
    address: str | None
    phone: str | None
    email: str | None
    abn: str | None
    bank_name: str | None
    bank_bsb: str | None
    bank_account: str | None
    bank_account_name: str | None
    logo_key: str | None
    currency: str
    gst_rate: Exact
    quote_prefix: str
    invoice_prefix: str
    payment_terms_days: int
    quote_valid_days: int
