"""shop: the Python-built marts leave the migrations; dbt builds them now (analytics/)

``mart_orders_daily`` and ``mart_provisioning_daily`` were tables these migrations created and the
shop assets filled row by row. They are dbt models now, which create and replace their own tables
on every build, so the migrations stop owning them. Upgrading drops them (whatever built them:
the next ``dbt build`` makes them again); downgrading gives the old empty tables back.

Revision ID: 0009_dbt_marts_to_dbt
Revises: 0007_events_no_tokens
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

import warehouse.types

revision = "0009_dbt_marts_to_dbt"
down_revision = "0007_events_no_tokens"
branch_labels = None
depends_on = None

MARTS = ("mart_orders_daily", "mart_provisioning_daily")


def upgrade() -> None:
    for table in MARTS:
        op.execute(f"DROP TABLE IF EXISTS {table}")


def downgrade() -> None:
    for table in MARTS:
        op.execute(f"DROP TABLE IF EXISTS {table}")  # dbt's own, if it built them since

    def tenant():
        return sa.Column("tenant_id", sa.String(64), nullable=False)

    def money(name):
        return sa.Column(name, warehouse.types.Money(), nullable=False)

    def updated():
        return sa.Column("updated_at", warehouse.types.UTCDateTime(), nullable=False,
                         server_default=sa.func.current_timestamp())

    op.create_table(
        "mart_orders_daily", tenant(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False)
          for name in ("orders", "paid_orders", "provisioned", "failed", "expired", "refunded", "esims")],
        money("revenue"), money("refunds"), money("net_revenue"), updated(),
        sa.PrimaryKeyConstraint("tenant_id", "day", "currency", name=op.f("pk_mart_orders_daily")),
    )
    op.create_table(
        "mart_provisioning_daily", tenant(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in ("attempts", "succeeded", "skipped_open")],
        *[sa.Column(name, sa.Float(), nullable=True) for name in ("success_rate", "p50_latency_ms", "p95_latency_ms")],
        sa.Column("error_classes", warehouse.types.JSONDoc(), nullable=False),
        updated(),
        sa.PrimaryKeyConstraint("tenant_id", "day", "provider", name=op.f("pk_mart_provisioning_daily")),
    )
