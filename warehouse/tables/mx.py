"""MX Merchant: transactions, invoices with lines, and the tenant's product categories (seed 003)."""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column, timestamps
from warehouse.types import Money, UTCDateTime

transactions = sa.Table(
    "transactions",
    metadata,
    tenant_column(),
    sa.Column("id", sa.BigInteger, nullable=False, comment="MX payment id"),
    sa.Column("merchant_id", sa.BigInteger, nullable=False, comment="MX merchant account the payment was taken on"),
    sa.Column("amount", Money, nullable=False,
              comment="payment amount in the merchant's currency (exact decimal, 4 places)"),
    sa.Column("status", sa.String(32), nullable=False, comment="MX status, e.g. Approved, Declined, Refunded, Settled"),
    sa.Column("type", sa.String(32), comment="MX transaction type, e.g. Sale, Return"),
    sa.Column("source", sa.String(64), comment="where MX says the payment came from, e.g. Recurring, QuickPay, API"),
    sa.Column("tender_type", sa.String(32), comment="how it was paid: Card, Cash, Check, ..."),
    sa.Column("auth_code", sa.String(32), comment="card authorisation code"),
    sa.Column("card_type", sa.String(32), comment="card brand: Visa, MasterCard, Amex, ..."),
    sa.Column("card_last4", sa.String(4), comment="last four digits of the card (never the full number)"),
    sa.Column("customer_name", sa.String(200), comment="the payer's name as MX reports it"),
    sa.Column("invoice_number", sa.String(64), comment="MX `invoice` field when it is an invoice number (an integer); "
              "null for standalone payments"),
    sa.Column("invoice_code", sa.String(64), comment="MX `invoice` field when it holds another code (e.g. 'B00INYBB'): "
              "no invoice has it"),
    sa.Column("mx_invoice_id", sa.BigInteger, comment="from `invoiceIds` when MX sends it"),
    sa.Column("created_at", UTCDateTime, nullable=False, comment="when the payment was made (UTC)"),
    sa.Column("invoice_id", sa.BigInteger, comment="set once linked to a loaded invoice"),
    sa.Column("has_invoice", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="true once linked to a loaded invoice"),
    sa.Column("primary_product", sa.String(200), comment="highest-value line of the linked invoice"),
    sa.Column("product_category", sa.String(100),
              comment="category of primary_product (product_categories); null without an invoice"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.Index("ix_transactions_tenant_created", "tenant_id", "created_at"),
    sa.Index("ix_transactions_tenant_invoice_number", "tenant_id", "invoice_number"),
    sa.Index("ix_transactions_updated_at", "updated_at"),  # the marts' incremental watermark
    comment="Every MX Merchant payment, invoice-linked or standalone.",
)

invoices = sa.Table(
    "invoices",
    metadata,
    tenant_column(),
    sa.Column("id", sa.BigInteger, nullable=False, comment="MX invoice id"),
    sa.Column("invoice_number", sa.String(64), nullable=False, comment="the MX invoice number, as payments name it"),
    sa.Column("status", sa.String(32), nullable=False, comment="MX invoice status, e.g. Paid, Unpaid, PartiallyPaid"),
    sa.Column("total_amount", Money, nullable=False, comment="invoice total (exact decimal)"),
    sa.Column("balance", Money, comment="amount still owed"),
    sa.Column("paid_amount", Money, comment="amount paid so far"),
    sa.Column("customer_id", sa.BigInteger, comment="MX customer id"),
    sa.Column("customer_name", sa.String(200), comment="the customer's name as MX reports it"),
    sa.Column("invoice_date", UTCDateTime, comment="date on the invoice (UTC)"),
    sa.Column("line_count", sa.Integer, nullable=False, comment="number of lines (invoice_lines rows)"),
    sa.Column("primary_product", sa.String(200), comment="product of the highest-value line"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.Index("ix_invoices_tenant_number", "tenant_id", "invoice_number"),
    comment="MX Merchant invoices linked to at least one transaction.",
)

invoice_lines = sa.Table(
    "invoice_lines",
    metadata,
    tenant_column(),
    sa.Column("invoice_id", sa.BigInteger, nullable=False, comment="invoices.id of the invoice the line is on"),
    sa.Column("line_id", sa.BigInteger, nullable=False, comment="MX purchase id"),
    sa.Column("product_id", sa.BigInteger, comment="MX product id, when the line names one"),
    sa.Column("product_name", sa.String(200), nullable=False, comment="product name as on the invoice"),
    sa.Column("quantity", Money, nullable=False, comment="units sold (exact decimal)"),
    sa.Column("price", Money, nullable=False, comment="unit price"),
    sa.Column("tax_amount", Money, comment="tax on the line"),
    sa.Column("total_amount", Money, nullable=False, comment="line total"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "invoice_id", "line_id"),
    sa.ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"], ondelete="CASCADE"),
    comment="The `purchases[]` of each invoice.",
)

product_categories = sa.Table(
    "product_categories",
    metadata,
    tenant_column(),
    sa.Column("product_name", sa.String(200), nullable=False, comment="product name as on MX invoices"),
    sa.Column("category", sa.String(100), nullable=False, comment="the category analysts group by"),
    sa.Column("assigned_by", sa.String(16), nullable=False, comment="rule, fallback or manual (kept on re-sync)"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "product_name"),
    comment="Each tenant's products and their category; 'Uncategorized' when no rule matches.",
)
