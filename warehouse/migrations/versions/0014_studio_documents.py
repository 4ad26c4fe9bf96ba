"""studio: the 3D-print studio's documents and money (seed 002): clients, quotes, invoices, payments,
attachments, order files, activity, messages, business details and document number counters

Revision ID: 0014_studio_documents
Revises: 0001_foundation (depends on 0010_people: clients may sign in as users)
Create Date: 2026-12-06
"""

from alembic import op
import sqlalchemy as sa
import warehouse.types


revision = '0014_studio_documents'
down_revision = '0001_foundation'
branch_labels = ('studio',)
depends_on = '0010_people'


def _now():
    """The "now" default: on SQLite the one UTC text form every time column is written in."""
    if op.get_bind().dialect.name == "sqlite":
        return sa.text("(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))")
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    now = _now()
    op.create_table('studio_activity_logs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='entry id, increasing'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('entity_type', sa.String(length=20), nullable=False, comment='client, quote, invoice, payment, ...'),
    sa.Column('entity_id', sa.BigInteger(), nullable=False, comment='id of the entity'),
    sa.Column('action', sa.String(length=40), nullable=False, comment='created, updated, sent, accepted, paid, ...'),
    sa.Column('actor_kind', sa.String(length=10), nullable=False, comment='staff, client, stripe or system'),
    sa.Column('actor_id', sa.String(length=36), nullable=True, comment='users.id, when a person did it'),
    sa.Column('detail', warehouse.types.JSONDoc(), nullable=False, comment='what changed'),
    sa.Column('at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when (UTC)'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_activity_logs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_activity_logs')),
    comment="The studio's audit trail (the seed's log_activity): every change, who and when."
    )
    with op.batch_alter_table('studio_activity_logs', schema=None) as batch_op:
        batch_op.create_index('ix_studio_activity_entity', ['tenant_id', 'entity_type', 'entity_id'], unique=False)

    op.create_table('studio_business',
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the studio (tenants.tenant_id)'),
    sa.Column('name', sa.String(length=200), nullable=False, comment='the business name printed on documents'),
    sa.Column('address', sa.Text(), nullable=True, comment='postal address, as printed'),
    sa.Column('phone', sa.String(length=50), nullable=True, comment='contact phone'),
    sa.Column('email', sa.String(length=320), nullable=True, comment='contact and reply-to email'),
    sa.Column('abn', sa.String(length=20), nullable=True, comment='Australian Business Number, as printed'),
    sa.Column('bank_name', sa.String(length=100), nullable=True, comment='bank for transfers'),
    sa.Column('bank_bsb', sa.String(length=10), nullable=True, comment='BSB of the account for transfers'),
    sa.Column('bank_account', sa.String(length=30), nullable=True, comment='account number for transfers'),
    sa.Column('bank_account_name', sa.String(length=200), nullable=True, comment='account name for transfers'),
    sa.Column('logo_key', sa.String(length=500), nullable=True, comment='storage key of the logo (PNG, JPG or SVG); null: none'),
    sa.Column('currency', sa.String(length=3), server_default='AUD', nullable=False, comment='ISO 4217 currency'),
    sa.Column('gst_rate', sa.Numeric(precision=6, scale=4), server_default='0.1000', nullable=False, comment='default tax rate of new lines (GST 10 %)'),
    sa.Column('quote_prefix', sa.String(length=16), server_default='Q-', nullable=False, comment='prefix of quote numbers'),
    sa.Column('invoice_prefix', sa.String(length=16), server_default='INV-', nullable=False, comment='prefix of invoice numbers'),
    sa.Column('payment_terms_days', sa.Integer(), server_default='14', nullable=False, comment='days from issue to due date'),
    sa.Column('quote_valid_days', sa.Integer(), server_default='30', nullable=False, comment='days a sent quote stays open'),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it last changed (UTC)'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_business_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_studio_business')),
    comment="A studio's business details, printed on its quotes and invoices."
    )
    op.create_table('studio_clients',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='client number'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('name', sa.String(length=200), nullable=False, comment='contact name'),
    sa.Column('company', sa.String(length=200), nullable=True, comment='company name, if any'),
    sa.Column('email', sa.String(length=320), nullable=True, comment='where documents are sent (PII)'),
    sa.Column('phone', sa.String(length=50), nullable=True, comment='contact phone (PII)'),
    sa.Column('address', sa.Text(), nullable=True, comment='billing address (PII)'),
    sa.Column('abn', sa.String(length=20), nullable=True, comment="the client's ABN, if a business"),
    sa.Column('user_id', sa.String(length=36), nullable=True, comment="the client's own sign-in (role customer), if they have one"),
    sa.Column('archived_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='archived: hidden from lists, documents kept'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it last changed (UTC)'),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True, comment="the creating request's Idempotency-Key, if any"),
    sa.Column('request_hash', sa.String(length=64), nullable=True, comment="sha256 of the creating request's body"),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_clients_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_studio_clients_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_clients')),
    comment="The studio's clients."
    )
    with op.batch_alter_table('studio_clients', schema=None) as batch_op:
        batch_op.create_index('uq_studio_clients_idempotency', ['tenant_id', 'idempotency_key'], unique=True)
        batch_op.create_index('ix_studio_clients_tenant', ['tenant_id', 'name'], unique=False)

    op.create_table('studio_document_numbers',
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='quote or invoice'),
    sa.Column('prefix', sa.String(length=16), nullable=False, comment='prefix given to the next number'),
    sa.Column('last_number', sa.Integer(), server_default='0', nullable=False, comment='the last number given'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_document_numbers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'kind', name=op.f('pk_studio_document_numbers')),
    comment='Document number counters: one row per studio and kind, advanced with each document.'
    )
    op.create_table('studio_user_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='message id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('entity_type', sa.String(length=10), nullable=False, comment='quote or invoice'),
    sa.Column('entity_id', sa.BigInteger(), nullable=False, comment='id of the quote or invoice'),
    sa.Column('author_kind', sa.String(length=10), nullable=False, comment='staff or client'),
    sa.Column('author_id', sa.String(length=36), nullable=True, comment='users.id of the author'),
    sa.Column('body', sa.Text(), nullable=False, comment='the message (may hold PII)'),
    sa.Column('read_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='when the other side read it'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_user_messages_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_user_messages')),
    comment='Messages between staff and a client on a quote or invoice.'
    )
    with op.batch_alter_table('studio_user_messages', schema=None) as batch_op:
        batch_op.create_index('ix_studio_messages_entity', ['tenant_id', 'entity_type', 'entity_id'], unique=False)

    op.create_table('studio_quotes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='quote id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('client_id', sa.BigInteger(), nullable=False, comment='studio_clients.id'),
    sa.Column('number', sa.Integer(), nullable=False, comment='sequential quote number within the studio'),
    sa.Column('document_number', sa.String(length=40), nullable=False, comment='prefix and number, as printed'),
    sa.Column('status', sa.String(length=20), server_default='draft', nullable=False, comment='quote status'),
    sa.Column('issue_date', sa.Date(), nullable=True, comment='date printed on the document'),
    sa.Column('notes', sa.Text(), nullable=True, comment='notes printed on the document'),
    sa.Column('currency', sa.String(length=3), server_default='AUD', nullable=False, comment='ISO 4217 currency'),
    sa.Column('subtotal', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='sum of lines before discount and tax'),
    sa.Column('discount_total', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='sum of line discounts'),
    sa.Column('tax_total', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='sum of line GST'),
    sa.Column('total', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='subtotal - discounts + tax'),
    sa.Column('revision', sa.Integer(), server_default='1', nullable=False, comment='bumped with every change: the PDF of another revision is stale'),
    sa.Column('pdf_key', sa.String(length=500), nullable=True, comment='storage key of the PDF of revision pdf_revision'),
    sa.Column('pdf_revision', sa.Integer(), nullable=True, comment='the revision the stored PDF shows'),
    sa.Column('pdf_fingerprint', sa.String(length=64), nullable=True, comment='digest of everything the stored PDF shows (document, business details, logo, payment link, template)'),
    sa.Column('sent_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='last emailed to the client (UTC)'),
    sa.Column('created_by', sa.String(length=36), nullable=True, comment='users.id of who created it'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it last changed (UTC)'),
    sa.Column('valid_until', sa.Date(), nullable=True, comment='after this date a sent quote expires'),
    sa.Column('accepted_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='when the client accepted (UTC)'),
    sa.Column('declined_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='when the client declined (UTC)'),
    sa.Column('invoice_id', sa.BigInteger(), nullable=True, comment='studio_invoices.id it was converted to'),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True, comment="the creating request's Idempotency-Key, if any"),
    sa.Column('request_hash', sa.String(length=64), nullable=True, comment="sha256 of the creating request's body"),
    sa.ForeignKeyConstraint(['client_id'], ['studio_clients.id'], name=op.f('fk_studio_quotes_client_id_studio_clients'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_quotes_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_quotes')),
    sa.UniqueConstraint('tenant_id', 'number', name='uq_studio_quotes_tenant_number'),
    comment='Quotes: draft, sent, accepted, declined, expired; an accepted quote converts to an invoice.'
    )
    with op.batch_alter_table('studio_quotes', schema=None) as batch_op:
        batch_op.create_index('uq_studio_quotes_idempotency', ['tenant_id', 'idempotency_key'], unique=True)
        batch_op.create_index('ix_studio_quotes_tenant_client', ['tenant_id', 'client_id'], unique=False)
        batch_op.create_index('ix_studio_quotes_tenant_status', ['tenant_id', 'status'], unique=False)

    op.create_table('studio_invoices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='invoice id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('client_id', sa.BigInteger(), nullable=False, comment='studio_clients.id'),
    sa.Column('number', sa.Integer(), nullable=False, comment='sequential invoice number within the studio'),
    sa.Column('document_number', sa.String(length=40), nullable=False, comment='prefix and number, as printed'),
    sa.Column('status', sa.String(length=20), server_default='draft', nullable=False, comment='invoice status'),
    sa.Column('issue_date', sa.Date(), nullable=True, comment='date printed on the document'),
    sa.Column('notes', sa.Text(), nullable=True, comment='notes printed on the document'),
    sa.Column('currency', sa.String(length=3), server_default='AUD', nullable=False, comment='ISO 4217 currency'),
    sa.Column('subtotal', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='sum of lines before discount and tax'),
    sa.Column('discount_total', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='sum of line discounts'),
    sa.Column('tax_total', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='sum of line GST'),
    sa.Column('total', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='subtotal - discounts + tax'),
    sa.Column('revision', sa.Integer(), server_default='1', nullable=False, comment='bumped with every change: the PDF of another revision is stale'),
    sa.Column('pdf_key', sa.String(length=500), nullable=True, comment='storage key of the PDF of revision pdf_revision'),
    sa.Column('pdf_revision', sa.Integer(), nullable=True, comment='the revision the stored PDF shows'),
    sa.Column('pdf_fingerprint', sa.String(length=64), nullable=True, comment='digest of everything the stored PDF shows (document, business details, logo, payment link, template)'),
    sa.Column('sent_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='last emailed to the client (UTC)'),
    sa.Column('created_by', sa.String(length=36), nullable=True, comment='users.id of who created it'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it last changed (UTC)'),
    sa.Column('quote_id', sa.BigInteger(), nullable=True, comment='the quote it was converted from'),
    sa.Column('due_date', sa.Date(), nullable=True, comment='payment due; unpaid after it: overdue'),
    sa.Column('amount_paid', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='sum of payments received'),
    sa.Column('amount_refunded', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='sum of refunds'),
    sa.Column('balance_due', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='total - amount paid + amount refunded'),
    sa.Column('stripe_checkout_session_id', sa.String(length=255), nullable=True, comment='the open Checkout Session for the balance'),
    sa.Column('stripe_checkout_url', sa.Text(), nullable=True, comment='its URL, reused while open and the balance unchanged'),
    sa.Column('stripe_checkout_amount', warehouse.types.Money(precision=18, scale=4), nullable=True, comment='the balance that session charges'),
    sa.Column('stripe_checkout_expires_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='when that session expires (UTC)'),
    sa.Column('issued_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='when it was issued (UTC)'),
    sa.Column('paid_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='when the balance reached zero (UTC)'),
    sa.Column('voided_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='when it was voided (UTC)'),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True, comment="the creating request's Idempotency-Key, if any"),
    sa.Column('request_hash', sa.String(length=64), nullable=True, comment="sha256 of the creating request's body"),
    sa.ForeignKeyConstraint(['client_id'], ['studio_clients.id'], name=op.f('fk_studio_invoices_client_id_studio_clients'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['quote_id'], ['studio_quotes.id'], name=op.f('fk_studio_invoices_quote_id_studio_quotes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_invoices_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_invoices')),
    sa.UniqueConstraint('tenant_id', 'number', name='uq_studio_invoices_tenant_number'),
    comment='Invoices: draft, issued, partially_paid, paid, overdue, void.'
    )
    with op.batch_alter_table('studio_invoices', schema=None) as batch_op:
        batch_op.create_index('uq_studio_invoices_idempotency', ['tenant_id', 'idempotency_key'], unique=True)
        batch_op.create_index('ix_studio_invoices_tenant_client', ['tenant_id', 'client_id'], unique=False)
        batch_op.create_index('ix_studio_invoices_tenant_status', ['tenant_id', 'status'], unique=False)

    op.create_table('studio_order_files',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='order file id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('client_id', sa.BigInteger(), nullable=False, comment='studio_clients.id who owns it'),
    sa.Column('quote_id', sa.BigInteger(), nullable=True, comment='the quote it was ordered on, if any'),
    sa.Column('filename', sa.String(length=255), nullable=False, comment='file name as uploaded'),
    sa.Column('storage_key', sa.String(length=500), nullable=False, comment='key in the order-files bucket'),
    sa.Column('content_type', sa.String(length=100), nullable=False, comment='MIME type'),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False, comment='size'),
    sa.Column('sha256', sa.String(length=64), nullable=True, comment='digest of the content'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.ForeignKeyConstraint(['client_id'], ['studio_clients.id'], name=op.f('fk_studio_order_files_client_id_studio_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['quote_id'], ['studio_quotes.id'], name=op.f('fk_studio_order_files_quote_id_studio_quotes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_order_files_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_order_files')),
    comment="Clients' 3D models kept with their orders (bucket order-files, key {clientId}/{uuid}/{filename})."
    )
    with op.batch_alter_table('studio_order_files', schema=None) as batch_op:
        batch_op.create_index('ix_studio_order_files_client', ['tenant_id', 'client_id'], unique=False)
        batch_op.create_index('uq_studio_order_files_content', ['tenant_id', 'client_id', 'sha256', 'filename'], unique=True)

    op.create_table('studio_quote_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='line id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('quote_id', sa.BigInteger(), nullable=False, comment='studio_quotes.id'),
    sa.Column('position', sa.Integer(), nullable=False, comment='order of the line on the document (1, 2, …)'),
    sa.Column('description', sa.Text(), nullable=False, comment='what is sold'),
    sa.Column('quantity', sa.Numeric(precision=12, scale=3), nullable=False, comment='how many'),
    sa.Column('unit_price', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='price of one, before discount and tax'),
    sa.Column('discount_percent', sa.Numeric(precision=5, scale=2), server_default='0', nullable=False, comment='discount on the line, percent'),
    sa.Column('tax_rate', sa.Numeric(precision=6, scale=4), server_default='0.1000', nullable=False, comment='GST rate of the line'),
    sa.Column('line_subtotal', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='quantity x unit price, rounded'),
    sa.Column('line_discount', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='discount amount, rounded'),
    sa.Column('line_tax', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='GST on the discounted amount, rounded'),
    sa.Column('line_total', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='subtotal - discount + tax'),
    sa.ForeignKeyConstraint(['quote_id'], ['studio_quotes.id'], name=op.f('fk_studio_quote_items_quote_id_studio_quotes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_quote_items')),
    comment='Lines of studio quotes.'
    )
    with op.batch_alter_table('studio_quote_items', schema=None) as batch_op:
        batch_op.create_index('ix_studio_quote_items_document', ['quote_id', 'position'], unique=False)

    op.create_table('studio_attachments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='attachment id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False, comment='studio_invoices.id'),
    sa.Column('filename', sa.String(length=255), nullable=False, comment='file name as uploaded'),
    sa.Column('storage_key', sa.String(length=500), nullable=False, comment='key in the attachments bucket'),
    sa.Column('content_type', sa.String(length=100), nullable=False, comment='MIME type'),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False, comment='size'),
    sa.Column('uploaded_by', sa.String(length=36), nullable=True, comment='users.id'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.ForeignKeyConstraint(['invoice_id'], ['studio_invoices.id'], name=op.f('fk_studio_attachments_invoice_id_studio_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_attachments_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_attachments')),
    comment='Files attached to studio invoices (bucket attachments, key {invoiceId}/{filename}).'
    )
    with op.batch_alter_table('studio_attachments', schema=None) as batch_op:
        batch_op.create_index('ix_studio_attachments_invoice', ['tenant_id', 'invoice_id'], unique=False)
        batch_op.create_index('uq_studio_attachments_key', ['tenant_id', 'storage_key'], unique=True)

    op.create_table('studio_invoice_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='line id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False, comment='studio_invoices.id'),
    sa.Column('position', sa.Integer(), nullable=False, comment='order of the line on the document (1, 2, …)'),
    sa.Column('description', sa.Text(), nullable=False, comment='what is sold'),
    sa.Column('quantity', sa.Numeric(precision=12, scale=3), nullable=False, comment='how many'),
    sa.Column('unit_price', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='price of one, before discount and tax'),
    sa.Column('discount_percent', sa.Numeric(precision=5, scale=2), server_default='0', nullable=False, comment='discount on the line, percent'),
    sa.Column('tax_rate', sa.Numeric(precision=6, scale=4), server_default='0.1000', nullable=False, comment='GST rate of the line'),
    sa.Column('line_subtotal', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='quantity x unit price, rounded'),
    sa.Column('line_discount', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='discount amount, rounded'),
    sa.Column('line_tax', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='GST on the discounted amount, rounded'),
    sa.Column('line_total', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='subtotal - discount + tax'),
    sa.ForeignKeyConstraint(['invoice_id'], ['studio_invoices.id'], name=op.f('fk_studio_invoice_items_invoice_id_studio_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_invoice_items')),
    comment='Lines of studio invoices.'
    )
    with op.batch_alter_table('studio_invoice_items', schema=None) as batch_op:
        batch_op.create_index('ix_studio_invoice_items_document', ['invoice_id', 'position'], unique=False)

    op.create_table('studio_payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='payment id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False, comment='studio_invoices.id'),
    sa.Column('kind', sa.String(length=10), server_default='payment', nullable=False, comment='payment or refund'),
    sa.Column('method', sa.String(length=20), nullable=False, comment='STRIPE, BANK_TRANSFER, CASH, CARD, OTHER'),
    sa.Column('amount', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='amount, positive for payments and refunds alike'),
    sa.Column('currency', sa.String(length=3), nullable=False, comment='ISO 4217 currency'),
    sa.Column('processor_id', sa.String(length=255), nullable=True, comment='Stripe: the PaymentIntent (payment) or refund id (refund); null for manual payments'),
    sa.Column('reference', sa.String(length=255), nullable=True, comment='Stripe: the Checkout Session; manual: the bank reference'),
    sa.Column('note', sa.Text(), nullable=True, comment="staff's note"),
    sa.Column('received_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when the money moved (UTC)'),
    sa.Column('recorded_by', sa.String(length=36), nullable=True, comment='users.id who recorded it; null: Stripe'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.ForeignKeyConstraint(['invoice_id'], ['studio_invoices.id'], name=op.f('fk_studio_payments_invoice_id_studio_invoices'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_payments_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_payments')),
    comment='Payments and refunds of studio invoices (Stripe and manual).'
    )
    with op.batch_alter_table('studio_payments', schema=None) as batch_op:
        batch_op.create_index('ix_studio_payments_invoice', ['tenant_id', 'invoice_id'], unique=False)
        batch_op.create_index('uq_studio_payments_processor', ['tenant_id', 'kind', 'processor_id'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('studio_payments', schema=None) as batch_op:
        batch_op.drop_index('uq_studio_payments_processor')
        batch_op.drop_index('ix_studio_payments_invoice')

    op.drop_table('studio_payments')
    with op.batch_alter_table('studio_invoice_items', schema=None) as batch_op:
        batch_op.drop_index('ix_studio_invoice_items_document')

    op.drop_table('studio_invoice_items')
    with op.batch_alter_table('studio_attachments', schema=None) as batch_op:
        batch_op.drop_index('uq_studio_attachments_key')
        batch_op.drop_index('ix_studio_attachments_invoice')

    op.drop_table('studio_attachments')
    with op.batch_alter_table('studio_quote_items', schema=None) as batch_op:
        batch_op.drop_index('ix_studio_quote_items_document')

    op.drop_table('studio_quote_items')
    with op.batch_alter_table('studio_order_files', schema=None) as batch_op:
        batch_op.drop_index('uq_studio_order_files_content')
        batch_op.drop_index('ix_studio_order_files_client')

    op.drop_table('studio_order_files')
    with op.batch_alter_table('studio_invoices', schema=None) as batch_op:
        batch_op.drop_index('uq_studio_invoices_idempotency')
        batch_op.drop_index('ix_studio_invoices_tenant_status')
        batch_op.drop_index('ix_studio_invoices_tenant_client')

    op.drop_table('studio_invoices')
    with op.batch_alter_table('studio_quotes', schema=None) as batch_op:
        batch_op.drop_index('uq_studio_quotes_idempotency')
        batch_op.drop_index('ix_studio_quotes_tenant_status')
        batch_op.drop_index('ix_studio_quotes_tenant_client')

    op.drop_table('studio_quotes')
    with op.batch_alter_table('studio_user_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_studio_messages_entity')

    op.drop_table('studio_user_messages')
    op.drop_table('studio_document_numbers')
    with op.batch_alter_table('studio_clients', schema=None) as batch_op:
        batch_op.drop_index('uq_studio_clients_idempotency')
        batch_op.drop_index('ix_studio_clients_tenant')

    op.drop_table('studio_clients')
    op.drop_table('studio_business')
    with op.batch_alter_table('studio_activity_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_studio_activity_entity')

    op.drop_table('studio_activity_logs')
