"""studio: printing (seed 002, "3D File Processing & Slicing"): uploaded models and their slices
(tmp files), the slice cache, the slicer's concurrency slots, materials, printers, pricing templates
and print jobs

Revision ID: 0015_studio_printing
Revises: 0014_studio_documents
Create Date: 2026-12-06
"""

from alembic import op
import sqlalchemy as sa
import warehouse.types


revision = '0015_studio_printing'
down_revision = '0014_studio_documents'
branch_labels = None
depends_on = None


MAX_SLOTS = 4  # SLICER_CONCURRENCY's ceiling: one row per slicer process allowed at once


def _now():
    """The "now" default: on SQLite the one UTC text form every time column is written in."""
    if op.get_bind().dialect.name == "sqlite":
        return sa.text("(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))")
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    now = _now()
    op.create_table('studio_slice_cache',
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('cache_key', sa.String(length=64), nullable=False, comment="sha256 of the model's sha256, the canonical settings and the profiles' content"),
    sa.Column('model_sha256', sa.String(length=64), nullable=False, comment='digest of the model'),
    sa.Column('settings', warehouse.types.JSONDoc(), nullable=False, comment='the slice settings'),
    sa.Column('profile', sa.String(length=200), nullable=False, comment='the printer and material profiles used'),
    sa.Column('grams', sa.Numeric(precision=12, scale=2), nullable=False, comment='filament weight (g) from the G-code'),
    sa.Column('time_s', sa.Integer(), nullable=False, comment='estimated print time (s) from the G-code'),
    sa.Column('slicer', sa.String(length=100), nullable=False, comment="the slicer's command that produced it"),
    sa.Column('notes', warehouse.types.JSONDoc(), nullable=False, comment='what was adapted (e.g. tree supports as snug)'),
    sa.Column('gcode_key', sa.String(length=500), nullable=True, comment='the G-code in the tmp bucket (gone once the tmp file is cleaned)'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_slice_cache_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'cache_key', name=op.f('pk_studio_slice_cache')),
    comment='Slice results per studio by (model hash, settings, profile): the same model is never sliced twice.'
    )
    op.create_table('studio_slicer_slots',
    sa.Column('slot', sa.Integer(), autoincrement=False, nullable=False, comment='slot number 0..3; slots below SLICER_CONCURRENCY are used'),
    sa.Column('lease_token', sa.String(length=32), nullable=True, comment='the worker holding the slot'),
    sa.Column('lease_expires_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='its lease; past it the slot is free again'),
    sa.Column('claims', sa.Integer(), server_default='0', nullable=False, comment='times the slot was taken'),
    sa.PrimaryKeyConstraint('slot', name=op.f('pk_studio_slicer_slots')),
    comment='One row per slicer process allowed at once, across every process and machine.'
    )
    op.create_table('studio_materials',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='material id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('name', sa.String(length=100), nullable=False, comment="what clients pick, e.g. 'PLA black'"),
    sa.Column('kind', sa.String(length=20), server_default='PLA', nullable=False, comment='PLA, PETG, ABS, TPU, ...'),
    sa.Column('colour', sa.String(length=40), nullable=True, comment='colour name or #RRGGBB'),
    sa.Column('cost_per_kg', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='what a kilogram costs the studio (studio currency)'),
    sa.Column('density_g_cm3', sa.Numeric(precision=6, scale=3), server_default='1.240', nullable=False, comment='density in g/cm³: grams from the estimated volume'),
    sa.Column('profile', sa.String(length=100), nullable=True, comment='PrusaSlicer filament profile (.ini in studio/slicing/profiles); null: the default PLA'),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False, comment='offered to clients'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it last changed (UTC)'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_materials_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_materials')),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_studio_materials_tenant_name'),
    comment='Materials a studio prints with, with cost and density.'
    )
    op.create_table('studio_printers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='printer id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('name', sa.String(length=100), nullable=False, comment="the printer's name in the studio"),
    sa.Column('model', sa.String(length=100), nullable=True, comment='make and model'),
    sa.Column('status', sa.String(length=20), server_default='idle', nullable=False, comment='idle, printing, maintenance or offline'),
    sa.Column('hourly_rate', warehouse.types.Money(precision=18, scale=4), nullable=False, comment='machine time charged per hour (studio currency)'),
    sa.Column('build_x_mm', sa.Numeric(precision=8, scale=2), nullable=False, comment='build volume width (mm)'),
    sa.Column('build_y_mm', sa.Numeric(precision=8, scale=2), nullable=False, comment='build volume depth (mm)'),
    sa.Column('build_z_mm', sa.Numeric(precision=8, scale=2), nullable=False, comment='build volume height (mm)'),
    sa.Column('profile', sa.String(length=100), nullable=True, comment='PrusaSlicer printer profile (.ini in studio/slicing/profiles); null: the default'),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False, comment='accepts new jobs'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it last changed (UTC)'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_printers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_printers')),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_studio_printers_tenant_name'),
    comment="A studio's printers: rate, status and build volume."
    )
    op.create_table('studio_product_templates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='template id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('name', sa.String(length=100), nullable=False, comment="e.g. 'Standard FDM print'"),
    sa.Column('setup_fee', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='added once per model (studio currency)'),
    sa.Column('margin_percent', sa.Numeric(precision=6, scale=2), server_default='0', nullable=False, comment='added on top of material, machine time and setup, percent'),
    sa.Column('minimum_price', warehouse.types.Money(precision=18, scale=4), server_default='0', nullable=False, comment='no model is priced under this'),
    sa.Column('rush_multiplier', sa.Numeric(precision=6, scale=3), server_default='1.000', nullable=False, comment="applied to a rush order's price (e.g. 1.5)"),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False, comment='offered for new quotes'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it last changed (UTC)'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_product_templates_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_product_templates')),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_studio_product_templates_tenant_name'),
    comment='Pricing rules for printed models: setup fee, margin, minimum price, rush multiplier.'
    )
    op.create_table('studio_tmp_files',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='tmp file id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('user_id', sa.String(length=36), nullable=False, comment='users.id of who uploaded it (its owner)'),
    sa.Column('storage_key', sa.String(length=500), nullable=False, comment='key in the tmp bucket'),
    sa.Column('filename', sa.String(length=255), nullable=False, comment='file name as uploaded'),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False, comment='size'),
    sa.Column('mime_type', sa.String(length=100), nullable=False, comment='model/stl or model/3mf'),
    sa.Column('sha256', sa.String(length=64), nullable=False, comment="digest of the content (the slice cache's key)"),
    sa.Column('status', sa.String(length=10), server_default='idle', nullable=False, comment="idle, running, completed or failed (the seed's slice status)"),
    sa.Column('metadata', warehouse.types.JSONDoc(), nullable=False, comment="the seed's metadata: attempts, settings, metrics, fallback, error, output (G-code key), plus the mesh's measures and the printer and material"),
    sa.Column('next_run_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='a running slice is due from then (retries wait)'),
    sa.Column('lease_token', sa.String(length=32), nullable=True, comment='the worker running the slice now'),
    sa.Column('lease_expires_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='its lease; past it the slice is taken over'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it last changed (UTC)'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_tmp_files_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_tmp_files')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_studio_tmp_files_storage_key')),
    comment="Uploaded models and their slices (the seed's tmp_files, bucket tmp)."
    )
    with op.batch_alter_table('studio_tmp_files', schema=None) as batch_op:
        batch_op.create_index('ix_studio_tmp_files_due', ['status', 'next_run_at'], unique=False)
        batch_op.create_index('ix_studio_tmp_files_owner', ['tenant_id', 'user_id'], unique=False)

    op.create_table('studio_print_jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False, comment='print job id'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment='the merchant the row belongs to (tenants.tenant_id)'),
    sa.Column('invoice_item_id', sa.BigInteger(), nullable=False, comment='studio_invoice_items.id: the line it prints'),
    sa.Column('printer_id', sa.BigInteger(), nullable=True, comment='studio_printers.id it is (to be) printed on'),
    sa.Column('material_id', sa.BigInteger(), nullable=True, comment='studio_materials.id it is printed with'),
    sa.Column('status', sa.String(length=10), server_default='queued', nullable=False, comment='queued, printing, done or failed'),
    sa.Column('quantity', sa.Integer(), server_default='1', nullable=False, comment='copies to print'),
    sa.Column('estimated_s', sa.Integer(), nullable=True, comment='estimated print time of all copies (s)'),
    sa.Column('grams', sa.Numeric(precision=12, scale=2), nullable=True, comment='estimated filament of all copies (g)'),
    sa.Column('started_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='when printing started (UTC)'),
    sa.Column('finished_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='when it finished or failed (UTC)'),
    sa.Column('failure_reason', sa.Text(), nullable=True, comment='why it failed, when it did'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it was created (UTC)'),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False, comment='when it last changed (UTC)'),
    sa.ForeignKeyConstraint(['invoice_item_id'], ['studio_invoice_items.id'], name=op.f('fk_studio_print_jobs_invoice_item_id_studio_invoice_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['material_id'], ['studio_materials.id'], name=op.f('fk_studio_print_jobs_material_id_studio_materials'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['printer_id'], ['studio_printers.id'], name=op.f('fk_studio_print_jobs_printer_id_studio_printers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_studio_print_jobs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_print_jobs')),
    comment='Print jobs per invoice line: queued, printing, done or failed, on a printer.'
    )
    with op.batch_alter_table('studio_print_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_studio_print_jobs_item', ['tenant_id', 'invoice_item_id'], unique=False)
        batch_op.create_index('ix_studio_print_jobs_printer', ['tenant_id', 'printer_id', 'status'], unique=False)
    slots = sa.table("studio_slicer_slots", sa.column("slot", sa.Integer), sa.column("claims", sa.Integer))
    op.bulk_insert(slots, [{"slot": n, "claims": 0} for n in range(MAX_SLOTS)])


def downgrade() -> None:
    with op.batch_alter_table('studio_print_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_studio_print_jobs_printer')
        batch_op.drop_index('ix_studio_print_jobs_item')

    op.drop_table('studio_print_jobs')
    with op.batch_alter_table('studio_tmp_files', schema=None) as batch_op:
        batch_op.drop_index('ix_studio_tmp_files_owner')
        batch_op.drop_index('ix_studio_tmp_files_due')

    op.drop_table('studio_tmp_files')
    op.drop_table('studio_product_templates')
    op.drop_table('studio_printers')
    op.drop_table('studio_materials')
    op.drop_table('studio_slicer_slots')
    op.drop_table('studio_slice_cache')
