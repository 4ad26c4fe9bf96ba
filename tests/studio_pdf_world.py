"""A studio with a client, an invoice and a quote, written straight to the tables, for the PDF
tests and the PDF bench (the documents' own services compute the same totals the same way:
line amounts rounded to cents, half up; GST on the discounted amount)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import sqlalchemy as sa

from resources.storage.local import LocalStorage
from warehouse.tables.studio import (studio_business, studio_clients, studio_invoice_items, studio_invoices,
                                     studio_quote_items, studio_quotes)
from warehouse.tenants import add_tenant

CENT = Decimal("0.01")
ABN = "51 824 753 556"


class CountingStorage(LocalStorage):
    """The real local backend, counting its writes (how many times a PDF was kept)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, b"studio-pdf-tests", "http://testserver")
        self.puts = 0

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        super().put(bucket, key, data, content_type)
        self.puts += 1


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_values(position: int, description: str, quantity: str, unit_price: str, discount: str = "0",
                tax_rate: str = "0.1") -> dict:
    q, p, d, t = Decimal(quantity), Decimal(unit_price), Decimal(discount), Decimal(tax_rate)
    sub = _round(q * p)
    disc = _round(sub * d / 100)
    tax = _round((sub - disc) * t)
    return dict(position=position, description=description, quantity=q, unit_price=p, discount_percent=d,
                tax_rate=t, line_subtotal=sub, line_discount=disc, line_tax=tax, line_total=sub - disc + tax)


def totals(lines: list[dict]) -> dict:
    sub = sum((li["line_subtotal"] for li in lines), Decimal(0))
    disc = sum((li["line_discount"] for li in lines), Decimal(0))
    tax = sum((li["line_tax"] for li in lines), Decimal(0))
    return dict(subtotal=sub, discount_total=disc, tax_total=tax, total=sub - disc + tax)


DEFAULT_LINES = [("Prototype housing, PETG, 0.2 mm", "2", "145.50", "10"),
                 ("Support removal and sanding", "1.5", "60.00", "0"),
                 ("Express shipping, Sydney metro", "1", "25.00", "0")]


@dataclass
class Studio:
    tenant_id: str
    client_id: int
    invoice_id: int
    quote_id: int
    invoice_number: str
    quote_number: str


def make_studio(engine: sa.Engine, tenant_id: str, *, lines: list[tuple] | None = None, paid: str = "100.00",
                logo_key: str | None = None, status: str = "issued",
                number: int = 42, quote_status: str = "sent") -> Studio:
    lines = lines or DEFAULT_LINES
    items = [line_values(i, *spec) for i, spec in enumerate(lines, 1)]
    sums = totals(items)
    paid_d = Decimal(paid)
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "3D Print Sydney")
        has_business = conn.execute(sa.select(studio_business.c.tenant_id)
                                    .where(studio_business.c.tenant_id == tenant_id)).first()
        if not has_business:  # a second call adds another client and documents to the same studio
            conn.execute(sa.insert(studio_business).values(
                tenant_id=tenant_id, name="3D Print Sydney", address="12 Harris St\nUltimo NSW 2007",
                phone="02 9000 1234", email="hello@3dprint.example", abn=ABN, bank_name="Westpac",
                bank_bsb="032-000", bank_account="123 456", bank_account_name="3D Print Sydney Pty Ltd",
                logo_key=logo_key))
        client_id = conn.execute(sa.insert(studio_clients).values(
            tenant_id=tenant_id, name="Ada Lovelace", company="Analytical Engines", email="ada@engines.example",
            address="1 Babbage Lane\nSurry Hills NSW 2010")
            .returning(studio_clients.c.id)).scalar_one()
        invoice_id = conn.execute(sa.insert(studio_invoices).values(
            tenant_id=tenant_id, client_id=client_id, number=number, document_number=f"INV-{number:04d}",
            status=status, issue_date=dt.date(2026, 12, 1), due_date=dt.date(2026, 12, 15), currency="AUD",
            amount_paid=paid_d, balance_due=sums["total"] - paid_d, notes="Thank you for your business.", **sums)
            .returning(studio_invoices.c.id)).scalar_one()
        conn.execute(sa.insert(studio_invoice_items), [dict(tenant_id=tenant_id, invoice_id=invoice_id, **li)
                                                       for li in items])
        quote_id = conn.execute(sa.insert(studio_quotes).values(
            tenant_id=tenant_id, client_id=client_id, number=number, document_number=f"Q-{number:04d}",
            status=quote_status, issue_date=dt.date(2026, 11, 20), valid_until=dt.date(2026, 12, 20), currency="AUD",
            **sums)
            .returning(studio_quotes.c.id)).scalar_one()
        conn.execute(sa.insert(studio_quote_items), [dict(tenant_id=tenant_id, quote_id=quote_id, **li)
                                                     for li in items])
    return Studio(tenant_id, client_id, invoice_id, quote_id, f"INV-{number:04d}", f"Q-{number:04d}")
