"""shop: each refund of an order, with when it was recorded (``order_refunds``)

``orders.amount_refunded`` says how much was refunded so far, not when: a mart built up to a cut-off
could not tell a refund made after it from one made before, so a refund landing between the build
and its reconciliation failed the check. Each refund is now recorded with its time. The orders
refunded before this migration get one row each for what they had refunded, recorded at the best
time known (when the order completed, else when its status last changed).

Revision ID: 0017_order_refunds
Revises: 0008_fulfil_unclaimed_esims
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import warehouse.types

revision = "0017_order_refunds"
down_revision = "0008_fulfil_unclaimed_esims"  # the shop's branch
branch_labels = None
depends_on = ("0009_types_numbers_utc",)  # orders' money and times in their final types


def _now():
    """The "now" default: on SQLite the one UTC text form every time column is written in."""
    if op.get_bind().dialect.name == "sqlite":
        return sa.text("(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))")
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "order_refunds",
        sa.Column("tenant_id", sa.String(length=64), nullable=False,
                  comment="the merchant the row belongs to (tenants.tenant_id)"),
        sa.Column("order_id", sa.String(length=40), nullable=False, comment="orders.order_id refunded"),
        sa.Column("refunded_total", warehouse.types.Money(precision=18, scale=4), nullable=False,
                  comment="the order's amount_refunded after this refund (refunds only grow)"),
        sa.Column("amount", warehouse.types.Money(precision=18, scale=4), nullable=False,
                  comment="this refund: refunded_total less the total before it"),
        sa.Column("recorded_at", warehouse.types.UTCDateTime(timezone=True), server_default=_now(), nullable=False,
                  comment="when the warehouse recorded it (UTC); for refunds made before this table existed, "
                          "when the order completed"),
        sa.PrimaryKeyConstraint("tenant_id", "order_id", "refunded_total", name=op.f("pk_order_refunds")),
        comment="Each refund of an order, when it was recorded: the marts count refunds up to their cut-off "
                "from here (an order's amount_refunded says only how much so far).",
    )
    op.create_index("ix_order_refunds_tenant_recorded", "order_refunds", ["tenant_id", "recorded_at"])
    op.execute("""
        INSERT INTO order_refunds (tenant_id, order_id, refunded_total, amount, recorded_at)
        SELECT tenant_id, order_id, amount_refunded, amount_refunded, coalesce(completed_at, status_changed_at)
        FROM orders
        WHERE amount_refunded > 0
    """)


def downgrade() -> None:
    op.drop_index("ix_order_refunds_tenant_recorded", table_name="order_refunds")
    op.drop_table("order_refunds")
