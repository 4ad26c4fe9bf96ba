"""people: manual syncs with their live progress (seed 003, "Real-Time Progress Feedback")

Revision ID: 0011_people_sync_progress
Revises: 0010_people
Create Date: 2026-12-06
"""

from alembic import op
import sqlalchemy as sa
import warehouse.types


revision = '0011_people_sync_progress'
down_revision = '0010_people'
branch_labels = None
depends_on = None


def _now():
    """The "now" default: on SQLite the one UTC text form every time column is written in."""
    if op.get_bind().dialect.name == "sqlite":
        return sa.text("(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))")
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    now = _now()
    op.create_table('sync_progress',
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('mode', sa.String(length=16), server_default='incremental', nullable=False, comment='incremental or recovery'),
    sa.Column('date_from', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment="recovery: the range's start (inclusive)"),
    sa.Column('date_to', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment="recovery: the range's end (exclusive)"),
    sa.Column('requested_by', sa.String(length=36), nullable=True, comment='the user who asked (null: the CLI)'),
    sa.Column('status', sa.String(length=16), server_default='queued', nullable=False, comment='queued, running, succeeded or failed'),
    sa.Column('step', sa.Integer(), server_default='0', nullable=False, comment="the seed's step 1-8 (0: not started)"),
    sa.Column('step_name', sa.String(length=100), nullable=True),
    sa.Column('percent', sa.Integer(), server_default='0', nullable=False),
    sa.Column('stats', warehouse.types.JSONDoc(), nullable=False, comment='counts as they grow: payments read/new/updated, ...'),
    sa.Column('run_id', sa.String(length=64), nullable=True, comment='the Dagster run doing it'),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('requested_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.Column('started_at', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['sync_requests.id'], name=op.f('fk_sync_progress_request_id_sync_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_sync_progress_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_sync_progress')),
    comment='Manual syncs: mode, who asked, and their live progress (step, percent, statistics).'
    )
    with op.batch_alter_table('sync_progress', schema=None) as batch_op:
        batch_op.create_index('ix_sync_progress_tenant_status', ['tenant_id', 'status'], unique=False)
        batch_op.create_index('uq_sync_progress_one_active', ['tenant_id'], unique=True,
                              sqlite_where=sa.text("status IN ('queued', 'running')"),
                              postgresql_where=sa.text("status IN ('queued', 'running')"))


def downgrade() -> None:
    with op.batch_alter_table('sync_progress', schema=None) as batch_op:
        batch_op.drop_index('uq_sync_progress_one_active')
        batch_op.drop_index('ix_sync_progress_tenant_status')
    op.drop_table('sync_progress')
