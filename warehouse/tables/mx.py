"""MX Merchant: transactions, invoices with lines, and the tenant's product categories (seed 003)."""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column, timestamps
from warehouse.types import Money, UTCDateTime

transactions = sa.Table(
    "transactions",
    metadata,
    tenant_column(),
    sa.Column("id", sa.BigInteger, nullable=False, comment="MX payment id"),
    sa.Column("merchant_id", sa.BigInteger, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("type", sa.String(32)),
    sa.Column("source", sa.String(64)),
    sa.Column("tender_type", sa.String(32)),
    sa.Column("auth_code", sa.String(32)),
    sa.Column("card_type", sa.String(32)),
    sa.Column("card_last4", sa.String(4)),
    sa.Column("customer_name", sa.String(200)),
    sa.Column("invoice_number", sa.String(64), comment="MX `invoice` field when it is an invoice number (an integer); "
              "null for standalone payments"),
    sa.Column("invoice_code", sa.String(64), comment="MX `invoice` field when it holds another code (e.g. 'B00INYBB'): "
              "no invoice has it"),
    sa.Column("mx_invoice_id", sa.BigInteger, comment="from `invoiceIds` when MX sends it"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("invoice_id", sa.BigInteger, comment="set once linked to a loaded invoice"),
    sa.Column("has_invoice", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("primary_product", sa.String(200), comment="highest-value line of the linked invoice"),
    sa.Column("product_category", sa.String(100)),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.Index("ix_transactions_tenant_created", "tenant_id", "created_at"),
    sa.Index("ix_transactions_tenant_invoice_number", "tenant_id", "invoice_number"),
    comment="Every MX Merchant payment, invoice-linked or standalone.",
)

invoices = sa.Table(
    "invoices",
    metadata,
    tenant_column(),
    sa.Column("id", sa.BigInteger, nullable=False, comment="MX invoice id"),
    sa.Column("invoice_number", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("total_amount", Money, nullable=False),
    sa.Column("balance", Money),
    sa.Column("paid_amount", Money),
    sa.Column("customer_id", sa.BigInteger),
    sa.Column("customer_name", sa.String(200)),
    sa.Column("invoice_date", UTCDateTime),
    sa.Column("line_count", sa.Integer, nullable=False),
    sa.Column("primary_product", sa.String(200)),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.Index("ix_invoices_tenant_number", "tenant_id", "invoice_number"),
    comment="MX Merchant invoices linked to at least one transaction.",
)

invoice_lines = sa.Table(
    "invoice_lines",
    metadata,
    tenant_column(),
    sa.Column("invoice_id", sa.BigInteger, nullable=False),
    sa.Column("line_id", sa.BigInteger, nullable=False, comment="MX purchase id"),
    sa.Column("product_id", sa.BigInteger),
    sa.Column("product_name", sa.String(200), nullable=False),
    sa.Column("quantity", Money, nullable=False),
    sa.Column("price", Money, nullable=False),
    sa.Column("tax_amount", Money),
    sa.Column("total_amount", Money, nullable=False),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "invoice_id", "line_id"),
    sa.ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"], ondelete="CASCADE"),
    comment="The `purchases[]` of each invoice.",
)

product_categories = sa.Table(
    "product_categories",
    metadata,
    tenant_column(),
    sa.Column("product_name", sa.String(200), nullable=False),
    sa.Column("category", sa.String(100), nullable=False),
    sa.Column("assigned_by", sa.String(16), nullable=False, comment="rule, fallback or manual (kept on re-sync)"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "product_name"),
    comment="Each tenant's products and their category; 'Uncategorized' when no rule matches.",
)
