"""What a quote or invoice PDF shows, read from the warehouse into plain values.

The renderer sees only a :class:`DocumentView`: no database, no storage, no clock. So the same
view always gives the same PDF bytes, and a digest of the view (:func:`studio.pdf.render.fingerprint`)
says exactly when a stored PDF is stale: a changed line, payment, business detail, logo or
payment link all change it, whatever bumped (or forgot to bump) the document's ``revision``.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

import sqlalchemy as sa

from resources.storage import ATTACHMENTS, Storage, StorageError
from studio import documents
from warehouse.tables.studio import (studio_business, studio_clients, studio_invoice_items, studio_invoices,
                                     studio_quote_items, studio_quotes)

log = logging.getLogger("storehouse.studio.pdf")

QUOTE, INVOICE = "quote", "invoice"
KINDS = (QUOTE, INVOICE)
TABLES = {QUOTE: (studio_quotes, studio_quote_items, "quote_id"),
          INVOICE: (studio_invoices, studio_invoice_items, "invoice_id")}
# The logo is one of the studio's files: ``studio_business.logo_key`` names it in this bucket, under
# ``resources.storage.logo_key`` (``{tenant}/business/logo.…``).
LOGO_BUCKET = ATTACHMENTS
# An invoice in these states asks for its balance: the PDF prints the payment link and its QR code.
PAYABLE = frozenset({"issued", "partially_paid", "overdue"})
ZERO = Decimal(0)

PaymentUrl = Callable[[str, int], str]  # (tenant_id, invoice_id) -> the link a client pays the balance at


@dataclass(frozen=True)
class Business:
    name: str
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    abn: str | None = None
    bank_name: str | None = None
    bank_bsb: str | None = None
    bank_account: str | None = None
    bank_account_name: str | None = None
    logo_data_uri: str | None = None  # PNG, JPG or SVG, embedded: the renderer fetches nothing


@dataclass(frozen=True)
class Client:
    name: str
    company: str | None = None
    email: str | None = None
    address: str | None = None
    abn: str | None = None


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    tax_rate: Decimal
    line_subtotal: Decimal
    line_discount: Decimal
    line_tax: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class DocumentView:
    kind: str  # quote or invoice
    id: int
    number: str  # as printed, prefix included
    status: str
    currency: str
    business: Business
    client: Client
    lines: tuple[Line, ...]
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal
    revision: int = 1
    issue_date: dt.date | None = None
    notes: str | None = None
    valid_until: dt.date | None = None  # quotes
    due_date: dt.date | None = None  # invoices, and the rest
    amount_paid: Decimal = ZERO
    amount_refunded: Decimal = ZERO
    balance_due: Decimal = ZERO
    payment_url: str | None = None

    @property
    def filename(self) -> str:
        """The seed's name, ``quote-{number}.pdf`` / ``invoice-{number}.pdf``, safe in a header and a path."""
        return f"{self.kind}-{safe_number(self.number)}.pdf"


def safe_number(number: str) -> str:
    """A document number as a file name part: a prefix may hold any character, a file name may not."""
    out = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in number).strip(".")
    return out or "document"


@dataclass(frozen=True)
class StoredPdf:
    """What the document row says about its stored PDF."""

    key: str | None
    revision: int | None
    fingerprint: str | None


def logo_data_uri(data: bytes) -> str | None:
    """A data URI for a PNG, JPG or SVG logo, by its content (never its name); None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime = "image/png"
    elif data.startswith(b"\xff\xd8\xff"):
        mime = "image/jpeg"
    elif b"<svg" in data[:4096].lower():
        mime = "image/svg+xml"
    else:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _logo(storage: Storage | None, tenant_id: str, key: str | None) -> str | None:
    if not key or storage is None:
        return None
    try:
        found = logo_data_uri(storage.get(LOGO_BUCKET, key))
    except StorageError as exc:  # a missing or unreadable logo leaves the document without one
        log.warning("studio %s: logo %s unreadable (%s); printing without it", tenant_id, key, type(exc).__name__)
        return None
    if found is None:
        log.warning("studio %s: logo %s is not PNG, JPG or SVG; printing without it", tenant_id, key)
    return found


def _money(value) -> Decimal:
    return Decimal(value if value is not None else 0)


def load(conn: sa.Connection, storage: Storage | None, tenant_id: str, kind: str, doc_id: int, *,
         payment_url: PaymentUrl | None = None, client_id: int | None = None
         ) -> tuple[DocumentView, StoredPdf] | None:
    """The document as its PDF shows it, and its stored PDF's state; None when the tenant has no
    such document (or, with ``client_id``, the studio client's id, when the portal does not show
    it to that client: ``studio.documents.shown_to_client``)."""
    if kind not in TABLES:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    docs, items, fk = TABLES[kind]
    c = studio_clients.c
    query = (sa.select(docs, c.name.label("client_name"), c.company.label("client_company"),
                       c.email.label("client_email"), c.address.label("client_address"), c.abn.label("client_abn"))
             .join(studio_clients, sa.and_(c.id == docs.c.client_id, c.tenant_id == docs.c.tenant_id))
             .where(docs.c.tenant_id == tenant_id, docs.c.id == doc_id))
    if client_id is not None:
        query = query.where(documents.shown_to_client(documents.KINDS[kind], client_id))
    row = conn.execute(query).mappings().one_or_none()
    if row is None:
        return None
    biz = conn.execute(sa.select(studio_business).where(studio_business.c.tenant_id == tenant_id)).mappings().first()
    lines = conn.execute(sa.select(items).where(items.c.tenant_id == tenant_id, items.c[fk] == doc_id)
                         .order_by(items.c.position, items.c.id)).mappings().all()
    business = Business(
        name=biz["name"], address=biz["address"], phone=biz["phone"], email=biz["email"], abn=biz["abn"],
        bank_name=biz["bank_name"], bank_bsb=biz["bank_bsb"], bank_account=biz["bank_account"],
        bank_account_name=biz["bank_account_name"], logo_data_uri=_logo(storage, tenant_id, biz["logo_key"]),
    ) if biz else Business(name=tenant_id)
    extra: dict = {}
    if kind == QUOTE:
        extra["valid_until"] = row["valid_until"]
    else:
        balance = _money(row["balance_due"])
        extra.update(due_date=row["due_date"], amount_paid=_money(row["amount_paid"]),
                     amount_refunded=_money(row["amount_refunded"]), balance_due=balance)
        if payment_url is not None and balance > 0 and row["status"] in PAYABLE:
            extra["payment_url"] = payment_url(tenant_id, doc_id)
    view = DocumentView(
        kind=kind, id=doc_id, number=row["document_number"], status=row["status"], currency=row["currency"],
        business=business,
        client=Client(name=row["client_name"], company=row["client_company"], email=row["client_email"],
                      address=row["client_address"], abn=row["client_abn"]),
        lines=tuple(Line(description=i["description"], quantity=Decimal(i["quantity"]),
                         unit_price=_money(i["unit_price"]), discount_percent=Decimal(i["discount_percent"]),
                         tax_rate=Decimal(i["tax_rate"]), line_subtotal=_money(i["line_subtotal"]),
                         line_discount=_money(i["line_discount"]), line_tax=_money(i["line_tax"]),
                         line_total=_money(i["line_total"])) for i in lines),
        subtotal=_money(row["subtotal"]), discount_total=_money(row["discount_total"]),
        tax_total=_money(row["tax_total"]), total=_money(row["total"]), revision=row["revision"],
        issue_date=row["issue_date"], notes=row["notes"], **extra,
    )
    return view, StoredPdf(row["pdf_key"], row["pdf_revision"], row["pdf_fingerprint"])
