"""A studio for the payment tests: a tenant with its business details, a client, invoices with lines,
and a Stripe connection (the sandbox's, or an unreachable one for signed-webhook tests).

Invoices are inserted as rows (the documents service is another engineer's; these tests need only
an issued invoice with a total and a balance), with the totals the studio's rule gives: each line's
GST rounded half-up to the cent, the invoice's total the sum of its lines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
import stripe

from warehouse.tables.studio import studio_business, studio_clients, studio_invoice_items, studio_invoices
from warehouse.tenants import add_tenant, set_connection

WHSEC = "whsec_studio_test_secret"
CENT = Decimal("0.01")


@dataclass
class Studio:
    tenant_id: str
    client_id: int
    stripe_key: str
    webhook_secret: str
    sandbox: str | None = None

    def stripe(self) -> stripe.StripeClient:
        return stripe.StripeClient(self.stripe_key, base_addresses={"api": f"{self.sandbox}/stripe"},
                                   max_network_retries=0)


def make_studio(engine: sa.Engine, tenant_id: str, sandbox_url: str | None = None, api_url: str | None = None,
                client_user_id: str | None = None) -> Studio:
    """The studio and one client. With ``sandbox_url``, its own Stripe account there, and (with
    ``api_url``) a webhook endpoint at the studio's path, signed with that endpoint's secret."""
    key, secret = f"sk_test_{tenant_id.replace('-', '_')}", WHSEC
    if sandbox_url and api_url:
        endpoint = stripe.StripeClient(key, base_addresses={"api": f"{sandbox_url}/stripe"}, max_network_retries=0
                                       ).v1.webhook_endpoints.create(params={
                                           "url": f"{api_url}/studios/{tenant_id}/webhooks/stripe",
                                           "enabled_events": ["*"]})
        secret = endpoint.secret
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "3D Print Sydney")
        conn.execute(sa.insert(studio_business).values(tenant_id=tenant_id, name="3D Print Sydney Pty Ltd",
                                                       abn="12 345 678 901", currency="AUD"))
        client_id = conn.execute(sa.insert(studio_clients).values(
            tenant_id=tenant_id, name="Ada Lovelace", company="Analytical Engines", email="ada@example.com",
            user_id=client_user_id).returning(studio_clients.c.id)).scalar_one()
        set_connection(conn, tenant_id, "stripe", f"{sandbox_url or 'http://127.0.0.1:9'}/stripe",
                       {"secret_key": key, "webhook_secret": secret})
    return Studio(tenant_id, client_id, key, secret, sandbox_url)


def make_invoice(engine: sa.Engine, studio: Studio, lines: list[tuple[str, str, str]] = (("Bracket, PETG", "2", "50.00"),),
                 *, status: str = "issued", number: int | None = None, currency: str = "AUD",
                 due_date: dt.date | None = None) -> int:
    """An invoice of ``lines`` (description, quantity, unit price), GST 10 %, nothing paid yet."""
    items, subtotal, tax = [], Decimal(0), Decimal(0)
    for position, (description, quantity, unit_price) in enumerate(lines, 1):
        line_subtotal = (Decimal(quantity) * Decimal(unit_price)).quantize(CENT, ROUND_HALF_UP)
        line_tax = (line_subtotal * Decimal("0.1")).quantize(CENT, ROUND_HALF_UP)
        subtotal, tax = subtotal + line_subtotal, tax + line_tax
        items.append(dict(tenant_id=studio.tenant_id, position=position, description=description,
                          quantity=Decimal(quantity), unit_price=Decimal(unit_price), discount_percent=Decimal(0),
                          tax_rate=Decimal("0.1"), line_subtotal=line_subtotal, line_discount=Decimal(0),
                          line_tax=line_tax, line_total=line_subtotal + line_tax))
    total = subtotal + tax
    with engine.begin() as conn:
        if number is None:
            i = studio_invoices.c
            number = 1 + conn.execute(sa.select(sa.func.coalesce(sa.func.max(i.number), 0))
                                      .where(i.tenant_id == studio.tenant_id)).scalar_one()
        invoice_id = conn.execute(sa.insert(studio_invoices).values(
            tenant_id=studio.tenant_id, client_id=studio.client_id, number=number,
            document_number=f"INV-{number:04d}", status=status, currency=currency,
            issue_date=dt.date(2026, 12, 1), due_date=due_date or dt.date.today() + dt.timedelta(days=14), subtotal=subtotal,
            discount_total=Decimal(0), tax_total=tax, total=total, balance_due=total,
        ).returning(studio_invoices.c.id)).scalar_one()
        conn.execute(sa.insert(studio_invoice_items), [{**item, "invoice_id": invoice_id} for item in items])
    return invoice_id


def invoice_row(engine: sa.Engine, tenant_id: str, invoice_id: int) -> dict[str, Any]:
    i = studio_invoices.c
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(studio_invoices).where(i.tenant_id == tenant_id, i.id == invoice_id)
                                 ).mappings().one())
