"""foundation: tenants, sync bookkeeping, breakers, MX Merchant

Revision ID: 0001_foundation
Revises: 
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa
import warehouse.types


revision = '0001_foundation'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('circuit_breakers',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False, comment='closed, open, half_open'),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('opened_at', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('first_seen_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'provider', name=op.f('pk_circuit_breakers')),
    comment='Circuit breaker state per provider per tenant, shared by every process.'
    )
    op.create_table('invoices',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.BigInteger(), nullable=False, comment='MX invoice id'),
    sa.Column('invoice_number', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('total_amount', warehouse.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('balance', warehouse.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('paid_amount', warehouse.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('customer_name', sa.String(length=200), nullable=True),
    sa.Column('invoice_date', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('primary_product', sa.String(length=200), nullable=True),
    sa.Column('first_seen_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_invoices')),
    comment='MX Merchant invoices linked to at least one transaction.'
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_tenant_number', ['tenant_id', 'invoice_number'], unique=False)

    op.create_table('product_categories',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('product_name', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('assigned_by', sa.String(length=16), nullable=False, comment='rule, fallback or manual (kept on re-sync)'),
    sa.Column('first_seen_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'product_name', name=op.f('pk_product_categories')),
    comment="Each tenant's products and their category; 'Uncategorized' when no rule matches."
    )
    op.create_table('quarantine',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('record_key', sa.String(length=64), nullable=False, comment='sha256 of the raw record'),
    sa.Column('source_id', sa.String(length=128), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', warehouse.types.JSONDoc(), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('first_seen_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'stream', 'record_key', name=op.f('pk_quarantine')),
    comment='Records that could not be loaded, kept whole with the reason.'
    )
    op.create_table('sync_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False, comment='running, success, failed, skipped'),
    sa.Column('started_at', warehouse.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('api_calls', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rows', sa.Integer(), server_default='0', nullable=False, comment='records received'),
    sa.Column('rows_written', sa.Integer(), server_default='0', nullable=False, comment='inserted or changed'),
    sa.Column('quarantined', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs')),
    comment='One row per sync of one stream for one tenant.'
    )
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.create_index('ix_sync_runs_tenant_stream', ['tenant_id', 'stream', 'started_at'], unique=False)

    op.create_table('sync_state',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('cursor', warehouse.types.JSONDoc(), nullable=False),
    sa.Column('first_seen_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'stream', name=op.f('pk_sync_state')),
    comment='Incremental cursors, saved only after the data they cover is committed.'
    )
    op.create_table('tenants',
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='slug, also the Dagster partition key'),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('first_seen_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_tenants')),
    comment='One row per merchant (tenant).'
    )
    op.create_table('transactions',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.BigInteger(), nullable=False, comment='MX payment id'),
    sa.Column('merchant_id', sa.BigInteger(), nullable=False),
    sa.Column('amount', warehouse.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.Column('tender_type', sa.String(length=32), nullable=True),
    sa.Column('auth_code', sa.String(length=32), nullable=True),
    sa.Column('card_type', sa.String(length=32), nullable=True),
    sa.Column('card_last4', sa.String(length=4), nullable=True),
    sa.Column('customer_name', sa.String(length=200), nullable=True),
    sa.Column('invoice_number', sa.String(length=64), nullable=True, comment='MX `invoice` field; null for standalone payments'),
    sa.Column('mx_invoice_id', sa.BigInteger(), nullable=True, comment='from `invoiceIds` when MX sends it'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=True, comment='set once linked to a loaded invoice'),
    sa.Column('has_invoice', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('primary_product', sa.String(length=200), nullable=True, comment='highest-value line of the linked invoice'),
    sa.Column('product_category', sa.String(length=100), nullable=True),
    sa.Column('first_seen_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_transactions')),
    comment='Every MX Merchant payment, invoice-linked or standalone.'
    )
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.create_index('ix_transactions_tenant_created', ['tenant_id', 'created_at'], unique=False)
        batch_op.create_index('ix_transactions_tenant_invoice_number', ['tenant_id', 'invoice_number'], unique=False)

    op.create_table('invoice_lines',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False),
    sa.Column('line_id', sa.BigInteger(), nullable=False, comment='MX purchase id'),
    sa.Column('product_id', sa.BigInteger(), nullable=True),
    sa.Column('product_name', sa.String(length=200), nullable=False),
    sa.Column('quantity', warehouse.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('price', warehouse.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('tax_amount', warehouse.types.Money(precision=18, scale=4), nullable=True),
    sa.Column('total_amount', warehouse.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('first_seen_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'invoice_id'], ['invoices.tenant_id', 'invoices.id'], name=op.f('fk_invoice_lines_tenant_id_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'invoice_id', 'line_id', name=op.f('pk_invoice_lines')),
    comment='The `purchases[]` of each invoice.'
    )
    op.create_table('sync_requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('requested_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('run_key', sa.String(length=128), nullable=True),
    sa.Column('launched_at', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_sync_requests_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_requests')),
    comment='Manual sync requests (CLI, API), picked up by the sync-request sensor.'
    )
    with op.batch_alter_table('sync_requests', schema=None) as batch_op:
        batch_op.create_index('ix_sync_requests_status', ['status', 'id'], unique=False)

    op.create_table('tenant_connections',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('system', sa.String(length=32), nullable=False, comment='mx_merchant, stripe, airalo, treez, ...'),
    sa.Column('base_url', sa.String(length=500), nullable=False),
    sa.Column('credentials', warehouse.types.JSONDoc(), nullable=False, comment='secret: never logged or shown'),
    sa.Column('options', warehouse.types.JSONDoc(), nullable=False),
    sa.Column('first_seen_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_tenant_connections_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'system', name=op.f('pk_tenant_connections')),
    comment='How to reach each outside system of a tenant: pointing sandbox -> production changes only this.'
    )


def downgrade() -> None:
    op.drop_table('tenant_connections')
    with op.batch_alter_table('sync_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_requests_status')

    op.drop_table('sync_requests')
    op.drop_table('invoice_lines')
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_transactions_tenant_invoice_number')
        batch_op.drop_index('ix_transactions_tenant_created')

    op.drop_table('transactions')
    op.drop_table('tenants')
    op.drop_table('sync_state')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_runs_tenant_stream')

    op.drop_table('sync_runs')
    op.drop_table('quarantine')
    op.drop_table('product_categories')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_tenant_number')

    op.drop_table('invoices')
    op.drop_table('circuit_breakers')
