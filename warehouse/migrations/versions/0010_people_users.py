"""people: users, their grants per tenant (seed 003), sessions, API keys, invitations, data-sent, audit

Revision ID: 0010_people
Revises: 0001_foundation
Create Date: 2026-12-06
"""

from alembic import op
import sqlalchemy as sa
import warehouse.types


revision = '0010_people'
down_revision = '0001_foundation'
branch_labels = ('people',)
depends_on = None


def _now():
    """The "now" default: on SQLite the one UTC text form every time column is written in."""
    if op.get_bind().dialect.name == "sqlite":
        return sa.text("(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))")
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    now = _now()
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=True, comment='the user (or the user a key acts as); null: the CLI'),
    sa.Column('tenant_id', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False, comment='grant, revoke, config.update, export, sync.manual, ...'),
    sa.Column('detail', warehouse.types.JSONDoc(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    comment='Who did what to which tenant, when: grants, revocations, configuration, exports, manual syncs.'
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_tenant_at', ['tenant_id', 'at'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=36), nullable=False, comment='uuid4'),
    sa.Column('email', sa.String(length=320), nullable=False, comment='lower-cased'),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True, comment='argon2id (argon2-cffi); null: no password sign-in'),
    sa.Column('status', sa.String(length=16), server_default='active', nullable=False, comment='active or disabled'),
    sa.Column('super_admin', sa.Boolean(), server_default=sa.false(), nullable=False, comment="the seed's super_admin: every permission on every tenant"),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.Column('last_login_at', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    comment='People (and machines) who sign in to the staff API.'
    )
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False, comment="the key acts as this user, with the user's grants"),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False, comment='shown in lists; finds the key'),
    sa.Column('key_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.Column('last_used_at', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_keys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix')),
    comment='API keys for machines: shown once, stored hashed, named, revocable.'
    )
    op.create_table('invitations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=50), nullable=False),
    sa.Column('permissions', warehouse.types.JSONDoc(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True, comment="role customer: the tenant's customer being invited"),
    sa.Column('grant_expires_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment="the grant's own expiry, once accepted"),
    sa.Column('invited_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.Column('expires_at', warehouse.types.UTCDateTime(timezone=True), nullable=False, comment="the link's expiry"),
    sa.Column('accepted_at', warehouse.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['invited_by'], ['users.id'], name=op.f('fk_invitations_invited_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_invitations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    comment='Invitations sent by email; the link carries a signed, expiring token naming the row.'
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index('ix_invitations_tenant', ['tenant_id'], unique=False)

    op.create_table('invoice_data_sent',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False),
    sa.Column('data_sent', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.String(length=36), nullable=True),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_invoice_data_sent_updated_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('tenant_id', 'invoice_id', name=op.f('pk_invoice_data_sent')),
    comment="The seed's 'data sent to provider' flag per invoice (the nurse's one write)."
    )
    op.create_table('user_sessions',
    sa.Column('id', sa.String(length=36), nullable=False, comment="the access tokens' sid"),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('refresh_sha256', sa.String(length=64), nullable=False, comment='the current refresh token'),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.Column('expires_at', warehouse.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='signed out, or a spent refresh token was replayed'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('refresh_sha256', name=op.f('uq_user_sessions_refresh_sha256')),
    comment='Sign-in sessions: each refresh rotates the token; revoking one refuses its access tokens at once.'
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_user_sessions_user', ['user_id'], unique=False)

    op.create_table('user_tenant_permissions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False, comment="the seed's merchant_id"),
    sa.Column('role', sa.String(length=50), server_default='viewer', nullable=False),
    sa.Column('permissions', warehouse.types.JSONDoc(), nullable=False, comment='overrides: {"add": [...], "remove": [...]}'),
    sa.Column('customer_id', sa.String(length=64), nullable=True, comment="role customer: the tenant's own customer this user is"),
    sa.Column('granted_by', sa.String(length=36), nullable=True),
    sa.Column('granted_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.Column('expires_at', warehouse.types.UTCDateTime(timezone=True), nullable=True, comment='null: never'),
    sa.Column('is_active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.Column('updated_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.ForeignKeyConstraint(['granted_by'], ['users.id'], name=op.f('fk_user_tenant_permissions_granted_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_user_tenant_permissions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_tenant_permissions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_tenant_permissions')),
    sa.UniqueConstraint('user_id', 'tenant_id', name='uq_user_tenant_permissions_user_tenant'),
    comment='One role per user per tenant (seed 003); an expired or inactive grant gives nothing.'
    )
    with op.batch_alter_table('user_tenant_permissions', schema=None) as batch_op:
        batch_op.create_index('idx_user_tenant_permissions_role', ['tenant_id', 'role', 'is_active'], unique=False)
        batch_op.create_index('idx_user_tenant_permissions_tenant', ['tenant_id', 'is_active'], unique=False)
        batch_op.create_index('idx_user_tenant_permissions_user', ['user_id', 'is_active'], unique=False)

    op.create_table('spent_refresh_tokens',
    sa.Column('refresh_sha256', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=36), nullable=False),
    sa.Column('spent_at', warehouse.types.UTCDateTime(timezone=True), server_default=now, nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['user_sessions.id'], name=op.f('fk_spent_refresh_tokens_session_id_user_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('refresh_sha256', name=op.f('pk_spent_refresh_tokens')),
    comment='Refresh tokens already rotated: one presented again revokes its whole session (theft).'
    )


def downgrade() -> None:
    op.drop_table('spent_refresh_tokens')
    with op.batch_alter_table('user_tenant_permissions', schema=None) as batch_op:
        batch_op.drop_index('idx_user_tenant_permissions_user')
        batch_op.drop_index('idx_user_tenant_permissions_tenant')
        batch_op.drop_index('idx_user_tenant_permissions_role')

    op.drop_table('user_tenant_permissions')
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_user_sessions_user')

    op.drop_table('user_sessions')
    op.drop_table('invoice_data_sent')
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_invitations_tenant')

    op.drop_table('invitations')
    op.drop_table('api_keys')
    op.drop_table('users')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_tenant_at')

    op.drop_table('audit_log')
