"""The 3D-print studio's documents and money (seed 002, "3D Print Sydney").

A studio is one more kind of tenant (AUD, ABN, GST). Every table is named ``studio_…`` so an
analyst never mistakes the studio's invoices and payments for MX Merchant's ``invoices`` or the
eSIM shop's ``payments``. Every row carries its tenant; ids are numbers, as the seed's
``invoiceId`` is. Money is :class:`~warehouse.types.Money` (exact ``Decimal`` on both databases).

Document numbers (the seed's ``next_document_number(kind, default_prefix)``) come from
``studio_document_numbers``: one counter row per tenant and kind, advanced in the same transaction
that inserts the document, so numbers are sequential, never duplicated, and without gaps among
committed documents.
"""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column
from warehouse.types import JSONDoc, Money, UTCDateTime, utc_now

NOW = utc_now()


def _created() -> sa.Column:
    return sa.Column("created_at", UTCDateTime, nullable=False, server_default=NOW, comment="when it was created (UTC)")


def _updated() -> sa.Column:
    return sa.Column("updated_at", UTCDateTime, nullable=False, server_default=NOW,
                     comment="when it last changed (UTC)")


def _idempotency(table: str) -> list:
    """A create retried with the same ``Idempotency-Key`` finds the row it made (same body) instead of a
    second one (``studio.idempotency``)."""
    return [
        sa.Column("idempotency_key", sa.String(255), comment="the creating request's Idempotency-Key, if any"),
        sa.Column("request_hash", sa.String(64), comment="sha256 of the creating request's body"),
        sa.Index(f"uq_{table}_idempotency", "tenant_id", "idempotency_key", unique=True),
    ]


def _tenant_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE")


studio_business = sa.Table(
    "studio_business",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True, comment="the studio (tenants.tenant_id)"),
    sa.Column("name", sa.String(200), nullable=False, comment="the business name printed on documents"),
    sa.Column("address", sa.Text, comment="postal address, as printed"),
    sa.Column("phone", sa.String(50), comment="contact phone"),
    sa.Column("email", sa.String(320), comment="contact and reply-to email"),
    sa.Column("abn", sa.String(20), comment="Australian Business Number, as printed"),
    sa.Column("bank_name", sa.String(100), comment="bank for transfers"),
    sa.Column("bank_bsb", sa.String(10), comment="BSB of the account for transfers"),
    sa.Column("bank_account", sa.String(30), comment="account number for transfers"),
    sa.Column("bank_account_name", sa.String(200), comment="account name for transfers"),
    sa.Column("logo_key", sa.String(500), comment="storage key of the logo (PNG, JPG or SVG); null: none"),
    sa.Column("currency", sa.String(3), nullable=False, server_default="AUD", comment="ISO 4217 currency"),
    sa.Column("gst_rate", sa.Numeric(6, 4), nullable=False, server_default="0.1000",
              comment="default tax rate of new lines (GST 10 %)"),
    sa.Column("quote_prefix", sa.String(16), nullable=False, server_default="Q-", comment="prefix of quote numbers"),
    sa.Column("invoice_prefix", sa.String(16), nullable=False, server_default="INV-",
              comment="prefix of invoice numbers"),
    sa.Column("payment_terms_days", sa.Integer, nullable=False, server_default="14",
              comment="days from issue to due date"),
    sa.Column("quote_valid_days", sa.Integer, nullable=False, server_default="30",
              comment="days a sent quote stays open"),
    _updated(),
    _tenant_fk(),
    comment="A studio's business details, printed on its quotes and invoices.",
)

studio_document_numbers = sa.Table(
    "studio_document_numbers",
    metadata,
    tenant_column(),
    sa.Column("kind", sa.String(16), nullable=False, comment="quote or invoice"),
    sa.Column("prefix", sa.String(16), nullable=False, comment="prefix given to the next number"),
    sa.Column("last_number", sa.Integer, nullable=False, server_default="0", comment="the last number given"),
    sa.PrimaryKeyConstraint("tenant_id", "kind"),
    _tenant_fk(),
    comment="Document number counters: one row per studio and kind, advanced with each document.",
)

studio_clients = sa.Table(
    "studio_clients",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True,
              comment="client number"),
    tenant_column(),
    sa.Column("name", sa.String(200), nullable=False, comment="contact name"),
    sa.Column("company", sa.String(200), comment="company name, if any"),
    sa.Column("email", sa.String(320), comment="where documents are sent (PII)"),
    sa.Column("phone", sa.String(50), comment="contact phone (PII)"),
    sa.Column("address", sa.Text, comment="billing address (PII)"),
    sa.Column("abn", sa.String(20), comment="the client's ABN, if a business"),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL"),
              comment="the client's own sign-in (role customer), if they have one"),
    sa.Column("archived_at", UTCDateTime, comment="archived: hidden from lists, documents kept"),
    _created(),
    _updated(),
    _tenant_fk(),
    sa.Index("ix_studio_clients_tenant", "tenant_id", "name"),
    *_idempotency("studio_clients"),
    comment="The studio's clients.",
)


def _document_columns(kind: str) -> list:
    return [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True,
                  comment=f"{kind} id"),
        tenant_column(),
        sa.Column("client_id", sa.BigInteger, sa.ForeignKey("studio_clients.id", ondelete="RESTRICT"), nullable=False,
                  comment="studio_clients.id"),
        sa.Column("number", sa.Integer, nullable=False, comment=f"sequential {kind} number within the studio"),
        sa.Column("document_number", sa.String(40), nullable=False, comment="prefix and number, as printed"),
        sa.Column("status", sa.String(20), nullable=False, server_default="draft", comment=f"{kind} status"),
        sa.Column("issue_date", sa.Date, comment="date printed on the document"),
        sa.Column("notes", sa.Text, comment="notes printed on the document"),
        sa.Column("currency", sa.String(3), nullable=False, server_default="AUD", comment="ISO 4217 currency"),
        sa.Column("subtotal", Money, nullable=False, server_default="0", comment="sum of lines before discount and tax"),
        sa.Column("discount_total", Money, nullable=False, server_default="0", comment="sum of line discounts"),
        sa.Column("tax_total", Money, nullable=False, server_default="0", comment="sum of line GST"),
        sa.Column("total", Money, nullable=False, server_default="0", comment="subtotal - discounts + tax"),
        sa.Column("revision", sa.Integer, nullable=False, server_default="1",
                  comment="bumped with every change: the PDF of another revision is stale"),
        sa.Column("pdf_key", sa.String(500), comment="storage key of the PDF of revision pdf_revision"),
        sa.Column("pdf_revision", sa.Integer, comment="the revision the stored PDF shows"),
        sa.Column("pdf_fingerprint", sa.String(64), comment="digest of everything the stored PDF shows "
                  "(document, business details, logo, payment link, template)"),
        sa.Column("sent_at", UTCDateTime, comment="last emailed to the client (UTC)"),
        sa.Column("created_by", sa.String(36), comment="users.id of who created it"),
        _created(),
        _updated(),
        _tenant_fk(),
        sa.UniqueConstraint("tenant_id", "number", name=f"uq_studio_{kind}s_tenant_number"),
        sa.Index(f"ix_studio_{kind}s_tenant_client", "tenant_id", "client_id"),
        sa.Index(f"ix_studio_{kind}s_tenant_status", "tenant_id", "status"),
        *_idempotency(f"studio_{kind}s"),
    ]


def _item_columns(kind: str) -> list:
    return [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True,
                  comment="line id"),
        tenant_column(),
        sa.Column(f"{kind}_id", sa.BigInteger, sa.ForeignKey(f"studio_{kind}s.id", ondelete="CASCADE"),
                  nullable=False, comment=f"studio_{kind}s.id"),
        sa.Column("position", sa.Integer, nullable=False, comment="order of the line on the document (1, 2, …)"),
        sa.Column("description", sa.Text, nullable=False, comment="what is sold"),
        sa.Column("quantity", sa.Numeric(12, 3), nullable=False, comment="how many"),
        sa.Column("unit_price", Money, nullable=False, comment="price of one, before discount and tax"),
        sa.Column("discount_percent", sa.Numeric(5, 2), nullable=False, server_default="0",
                  comment="discount on the line, percent"),
        sa.Column("tax_rate", sa.Numeric(6, 4), nullable=False, server_default="0.1000", comment="GST rate of the line"),
        sa.Column("line_subtotal", Money, nullable=False, comment="quantity x unit price, rounded"),
        sa.Column("line_discount", Money, nullable=False, comment="discount amount, rounded"),
        sa.Column("line_tax", Money, nullable=False, comment="GST on the discounted amount, rounded"),
        sa.Column("line_total", Money, nullable=False, comment="subtotal - discount + tax"),
        sa.Index(f"ix_studio_{kind}_items_document", f"{kind}_id", "position"),
    ]


studio_quotes = sa.Table(
    "studio_quotes",
    metadata,
    *_document_columns("quote"),
    sa.Column("valid_until", sa.Date, comment="after this date a sent quote expires"),
    sa.Column("accepted_at", UTCDateTime, comment="when the client accepted (UTC)"),
    sa.Column("declined_at", UTCDateTime, comment="when the client declined (UTC)"),
    sa.Column("invoice_id", sa.BigInteger, comment="studio_invoices.id it was converted to"),
    comment="Quotes: draft, sent, accepted, declined, expired; an accepted quote converts to an invoice.",
)

studio_quote_items = sa.Table(
    "studio_quote_items", metadata, *_item_columns("quote"), comment="Lines of studio quotes.",
)

studio_invoices = sa.Table(
    "studio_invoices",
    metadata,
    *_document_columns("invoice"),
    sa.Column("quote_id", sa.BigInteger, sa.ForeignKey("studio_quotes.id", ondelete="SET NULL"),
              comment="the quote it was converted from"),
    sa.Column("due_date", sa.Date, comment="payment due; unpaid after it: overdue"),
    sa.Column("amount_paid", Money, nullable=False, server_default="0", comment="sum of payments received"),
    sa.Column("amount_refunded", Money, nullable=False, server_default="0", comment="sum of refunds"),
    sa.Column("balance_due", Money, nullable=False, server_default="0",
              comment="total - amount paid + amount refunded"),
    sa.Column("stripe_checkout_session_id", sa.String(255), comment="the open Checkout Session for the balance"),
    sa.Column("stripe_checkout_url", sa.Text, comment="its URL, reused while open and the balance unchanged"),
    sa.Column("stripe_checkout_amount", Money, comment="the balance that session charges"),
    sa.Column("stripe_checkout_expires_at", UTCDateTime, comment="when that session expires (UTC)"),
    sa.Column("issued_at", UTCDateTime, comment="when it was issued (UTC)"),
    sa.Column("paid_at", UTCDateTime, comment="when the balance reached zero (UTC)"),
    sa.Column("voided_at", UTCDateTime, comment="when it was voided (UTC)"),
    comment="Invoices: draft, issued, partially_paid, paid, overdue, void.",
)

studio_invoice_items = sa.Table(
    "studio_invoice_items", metadata, *_item_columns("invoice"), comment="Lines of studio invoices.",
)

studio_payments = sa.Table(
    "studio_payments",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True,
              comment="payment id"),
    tenant_column(),
    sa.Column("invoice_id", sa.BigInteger, sa.ForeignKey("studio_invoices.id", ondelete="RESTRICT"), nullable=False,
              comment="studio_invoices.id"),
    sa.Column("kind", sa.String(10), nullable=False, server_default="payment", comment="payment or refund"),
    sa.Column("method", sa.String(20), nullable=False, comment="STRIPE, BANK_TRANSFER, CASH, CARD, OTHER"),
    sa.Column("amount", Money, nullable=False, comment="amount, positive for payments and refunds alike"),
    sa.Column("currency", sa.String(3), nullable=False, comment="ISO 4217 currency"),
    sa.Column("processor_id", sa.String(255),
              comment="Stripe: the PaymentIntent (payment) or refund id (refund); null for manual payments"),
    sa.Column("reference", sa.String(255), comment="Stripe: the Checkout Session; manual: the bank reference"),
    sa.Column("note", sa.Text, comment="staff's note"),
    sa.Column("received_at", UTCDateTime, nullable=False, server_default=NOW, comment="when the money moved (UTC)"),
    sa.Column("recorded_by", sa.String(36), comment="users.id who recorded it; null: Stripe"),
    _created(),
    _tenant_fk(),
    sa.Index("ix_studio_payments_invoice", "tenant_id", "invoice_id"),
    sa.Index("uq_studio_payments_processor", "tenant_id", "kind", "processor_id", unique=True),
    comment="Payments and refunds of studio invoices (Stripe and manual).",
)

studio_attachments = sa.Table(
    "studio_attachments",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True,
              comment="attachment id"),
    tenant_column(),
    sa.Column("invoice_id", sa.BigInteger, sa.ForeignKey("studio_invoices.id", ondelete="CASCADE"), nullable=False,
              comment="studio_invoices.id"),
    sa.Column("filename", sa.String(255), nullable=False, comment="file name as uploaded"),
    sa.Column("storage_key", sa.String(500), nullable=False, comment="key in the attachments bucket"),
    sa.Column("content_type", sa.String(100), nullable=False, comment="MIME type"),
    sa.Column("size_bytes", sa.BigInteger, nullable=False, comment="size"),
    sa.Column("uploaded_by", sa.String(36), comment="users.id"),
    _created(),
    _tenant_fk(),
    sa.Index("ix_studio_attachments_invoice", "tenant_id", "invoice_id"),
    sa.Index("uq_studio_attachments_key", "tenant_id", "storage_key", unique=True),  # same name: one file
    comment="Files attached to studio invoices (bucket attachments, key {invoiceId}/{filename}).",
)

studio_order_files = sa.Table(
    "studio_order_files",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True,
              comment="order file id"),
    tenant_column(),
    sa.Column("client_id", sa.BigInteger, sa.ForeignKey("studio_clients.id", ondelete="CASCADE"), nullable=False,
              comment="studio_clients.id who owns it"),
    sa.Column("quote_id", sa.BigInteger, sa.ForeignKey("studio_quotes.id", ondelete="SET NULL"),
              comment="the quote it was ordered on, if any"),
    sa.Column("filename", sa.String(255), nullable=False, comment="file name as uploaded"),
    sa.Column("storage_key", sa.String(500), nullable=False, comment="key in the order-files bucket"),
    sa.Column("content_type", sa.String(100), nullable=False, comment="MIME type"),
    sa.Column("size_bytes", sa.BigInteger, nullable=False, comment="size"),
    sa.Column("sha256", sa.String(64), comment="digest of the content"),
    _created(),
    _tenant_fk(),
    sa.Index("ix_studio_order_files_client", "tenant_id", "client_id"),
    sa.Index("uq_studio_order_files_content", "tenant_id", "client_id", "sha256", "filename", unique=True),
    comment="Clients' 3D models kept with their orders (bucket order-files, key {clientId}/{uuid}/{filename}).",
)

studio_activity_logs = sa.Table(
    "studio_activity_logs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True,
              comment="entry id, increasing"),
    tenant_column(),
    sa.Column("entity_type", sa.String(20), nullable=False, comment="client, quote, invoice, payment, ..."),
    sa.Column("entity_id", sa.BigInteger, nullable=False, comment="id of the entity"),
    sa.Column("action", sa.String(40), nullable=False, comment="created, updated, sent, accepted, paid, ..."),
    sa.Column("actor_kind", sa.String(10), nullable=False, comment="staff, client, stripe or system"),
    sa.Column("actor_id", sa.String(36), comment="users.id, when a person did it"),
    sa.Column("detail", JSONDoc, nullable=False, comment="what changed"),
    sa.Column("at", UTCDateTime, nullable=False, server_default=NOW, comment="when (UTC)"),
    _tenant_fk(),
    sa.Index("ix_studio_activity_entity", "tenant_id", "entity_type", "entity_id"),
    comment="The studio's audit trail (the seed's log_activity): every change, who and when.",
)

studio_user_messages = sa.Table(
    "studio_user_messages",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True,
              comment="message id"),
    tenant_column(),
    sa.Column("entity_type", sa.String(10), nullable=False, comment="quote or invoice"),
    sa.Column("entity_id", sa.BigInteger, nullable=False, comment="id of the quote or invoice"),
    sa.Column("author_kind", sa.String(10), nullable=False, comment="staff or client"),
    sa.Column("author_id", sa.String(36), comment="users.id of the author"),
    sa.Column("body", sa.Text, nullable=False, comment="the message (may hold PII)"),
    sa.Column("read_at", UTCDateTime, comment="when the other side read it"),
    _created(),
    _tenant_fk(),
    sa.Index("ix_studio_messages_entity", "tenant_id", "entity_type", "entity_id"),
    comment="Messages between staff and a client on a quote or invoice.",
)
