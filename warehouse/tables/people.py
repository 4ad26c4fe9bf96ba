"""People (seed 003, "Multi-Level User Management"): users, their grants per tenant, sign-in
sessions, API keys, invitations, the nurse's data-sent flag and the audit log.

``user_tenant_permissions`` is the seed's table, with ``tenant_id`` for its ``merchant_id``: one
role per user per tenant, JSON permission overrides, who granted it and when, an expiry and an
active flag, and the seed's three indexes. Secrets are never stored: passwords as argon2id hashes,
refresh tokens and API keys as SHA-256 digests.
"""

import sqlalchemy as sa

from warehouse.tables.base import metadata
from warehouse.types import JSONDoc, UTCDateTime, utc_now

NOW = utc_now()  # one UTC text form on SQLite, CURRENT_TIMESTAMP on PostgreSQL

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True, comment="uuid4"),
    sa.Column("email", sa.String(320), nullable=False, unique=True, comment="lower-cased"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(255), comment="argon2id (argon2-cffi); null: no password sign-in"),
    sa.Column("status", sa.String(16), nullable=False, server_default="active", comment="active or disabled"),
    sa.Column("super_admin", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="the seed's super_admin: every permission on every tenant"),
    sa.Column("created_at", UTCDateTime, nullable=False, server_default=NOW),
    sa.Column("last_login_at", UTCDateTime),
    comment="People (and machines) who sign in to the staff API.",
)

user_tenant_permissions = sa.Table(
    "user_tenant_permissions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False,
              comment="the seed's merchant_id"),
    sa.Column("role", sa.String(50), nullable=False, server_default="viewer"),
    sa.Column("permissions", JSONDoc, nullable=False, comment='overrides: {"add": [...], "remove": [...]}'),
    sa.Column("customer_id", sa.String(64), comment="role customer: the tenant's own customer this user is"),
    sa.Column("granted_by", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("granted_at", UTCDateTime, nullable=False, server_default=NOW),
    sa.Column("expires_at", UTCDateTime, comment="null: never"),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False, server_default=NOW),
    sa.Column("updated_at", UTCDateTime, nullable=False, server_default=NOW),
    sa.UniqueConstraint("user_id", "tenant_id", name="uq_user_tenant_permissions_user_tenant"),
    sa.Index("idx_user_tenant_permissions_user", "user_id", "is_active"),
    sa.Index("idx_user_tenant_permissions_tenant", "tenant_id", "is_active"),
    sa.Index("idx_user_tenant_permissions_role", "tenant_id", "role", "is_active"),
    comment="One role per user per tenant (seed 003); an expired or inactive grant gives nothing.",
)

user_sessions = sa.Table(
    "user_sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True, comment="the access tokens' sid"),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("refresh_sha256", sa.String(64), nullable=False, unique=True, comment="the current refresh token"),
    sa.Column("created_at", UTCDateTime, nullable=False, server_default=NOW),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, comment="signed out, or a spent refresh token was replayed"),
    sa.Index("ix_user_sessions_user", "user_id"),
    comment="Sign-in sessions: each refresh rotates the token; revoking one refuses its access tokens at once.",
)

spent_refresh_tokens = sa.Table(
    "spent_refresh_tokens",
    metadata,
    sa.Column("refresh_sha256", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(36), sa.ForeignKey("user_sessions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("spent_at", UTCDateTime, nullable=False, server_default=NOW),
    comment="Refresh tokens already rotated: one presented again revokes its whole session (theft).",
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
              comment="the key acts as this user, with the user's grants"),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False, unique=True, comment="shown in lists; finds the key"),
    sa.Column("key_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, server_default=NOW),
    sa.Column("last_used_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    comment="API keys for machines: shown once, stored hashed, named, revocable.",
)

invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("role", sa.String(50), nullable=False),
    sa.Column("permissions", JSONDoc, nullable=False),
    sa.Column("customer_id", sa.String(64), comment="role customer: the tenant's customer being invited"),
    sa.Column("grant_expires_at", UTCDateTime, comment="the grant's own expiry, once accepted"),
    sa.Column("invited_by", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("created_at", UTCDateTime, nullable=False, server_default=NOW),
    sa.Column("expires_at", UTCDateTime, nullable=False, comment="the link's expiry"),
    sa.Column("accepted_at", UTCDateTime),
    sa.Index("ix_invitations_tenant", "tenant_id"),
    comment="Invitations sent by email; the link carries a signed, expiring token naming the row.",
)

invoice_data_sent = sa.Table(
    "invoice_data_sent",
    metadata,
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("invoice_id", sa.BigInteger, nullable=False),
    sa.Column("data_sent", sa.Boolean, nullable=False),
    sa.Column("updated_by", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("updated_at", UTCDateTime, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("tenant_id", "invoice_id"),
    comment="The seed's 'data sent to provider' flag per invoice (the nurse's one write).",
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, server_default=NOW),
    sa.Column("actor_id", sa.String(36), comment="the user (or the user a key acts as); null: the CLI"),
    sa.Column("tenant_id", sa.String(64)),
    sa.Column("action", sa.String(64), nullable=False,
              comment="grant, revoke, config.update, export, sync.manual, ..."),
    sa.Column("detail", JSONDoc, nullable=False),
    sa.Index("ix_audit_log_tenant_at", "tenant_id", "at"),
    comment="Who did what to which tenant, when: grants, revocations, configuration, exports, manual syncs.",
)
