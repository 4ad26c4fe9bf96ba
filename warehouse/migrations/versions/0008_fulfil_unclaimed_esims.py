"""shop: unclaimed_esims, eSIMs a provider account bought that no order claims

Found while reconciling an eSIM Card purchase whose answer was lost against the account's eSIM
list: an eSIM of the package bought in that window and claimed by no order is recorded here (and
alerted once) instead of being left paid for and undelivered.

Revision ID: 0008_fulfil_unclaimed_esims
Revises: 0007_events_no_tokens
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import warehouse.types

revision = "0008_fulfil_unclaimed_esims"
down_revision = "0007_events_no_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unclaimed_esims",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_order_id", sa.String(length=128), nullable=False, comment="the provider's id of the eSIM"),
        sa.Column("iccid", sa.String(length=22), nullable=True),
        sa.Column("package_name", sa.String(length=300), nullable=True),
        sa.Column("bought_at", warehouse.types.UTCDateTime(timezone=True), nullable=False,
                  comment="as the provider's list says"),
        sa.Column("order_id", sa.String(length=40), nullable=False,
                  comment="the order whose lost purchase was being reconciled when it was found"),
        sa.Column("found_at", warehouse.types.UTCDateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.Column("resolved_at", warehouse.types.UTCDateTime(timezone=True), nullable=True,
                  comment="set by whoever delivered, refunded or wrote it off"),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "provider", "provider_order_id"),
        comment="eSIMs the provider account bought that no order claims: paid for, never delivered. "
                "Each is alerted to the shop's Slack once; settle it by hand.",
    )


def downgrade() -> None:
    op.drop_table("unclaimed_esims")
