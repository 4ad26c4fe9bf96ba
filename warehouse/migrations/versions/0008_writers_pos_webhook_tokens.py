"""pos events: webhook URL tokens for the POS systems that do not sign their deliveries

Revision ID: 0008_writers_pos_tokens
Revises: 0005_pos_events
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import warehouse.types

revision = "0008_writers_pos_tokens"
down_revision = "0005_pos_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pos_webhook_tokens",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False,
                  comment="a POS that does not sign: treez, dutchie, ..."),
        sa.Column("token_sha256", sa.String(length=64), nullable=False,
                  comment="hex sha256 of the token; the token is shown once"),
        sa.Column("first_seen_at", warehouse.types.UTCDateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.Column("updated_at", warehouse.types.UTCDateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_pos_webhook_tokens_tenant_id_tenants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "provider", name=op.f("pk_pos_webhook_tokens")),
        comment="The secret in each unsigned POS connection's webhook URL, kept only as a hash.",
    )


def downgrade() -> None:
    op.drop_table("pos_webhook_tokens")
