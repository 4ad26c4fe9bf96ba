"""esim catalog: esim_packages and esim_stock

Revision ID: 0002_esim_catalog
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa
import warehouse.types


revision = "0002_esim_catalog"
down_revision = "0001_foundation"
branch_labels = ("esim_catalog",)
depends_on = None

NOW = sa.text("(CURRENT_TIMESTAMP)")


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("first_seen_at", warehouse.types.UTCDateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", warehouse.types.UTCDateTime(timezone=True), server_default=NOW, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "esim_packages",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False, comment="esimcard, mobimatter or airalo"),
        sa.Column("provider_package_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False, comment="the provider's own title"),
        sa.Column("country_code", sa.String(length=2), nullable=True, comment="ISO 3166-1 alpha-2; null for regional plans"),
        sa.Column("region", sa.String(length=100), nullable=True, comment="region name for multi-country plans"),
        sa.Column("data_mb", sa.Integer(), nullable=True, comment="null when unlimited"),
        sa.Column("unlimited", sa.Boolean(), nullable=False),
        sa.Column("validity_days", sa.Integer(), nullable=False),
        sa.Column("cost", warehouse.types.Money(precision=18, scale=4), nullable=False, comment="what the provider charges us"),
        sa.Column("price", warehouse.types.Money(precision=18, scale=4), nullable=False, comment="the shop's price, from its margin rule"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, comment="false once the provider stopped listing it"),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "provider", "provider_package_id", name=op.f("pk_esim_packages")),
        comment="Every provider package of the tenant, normalised; inactive rows are kept for history.",
    )
    op.create_index("ix_esim_packages_tenant_country", "esim_packages", ["tenant_id", "country_code"], unique=False)
    op.create_table(
        "esim_stock",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_package_id", sa.String(length=128), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, comment="in_stock, low (below the threshold) or out_of_stock"),
        sa.Column("low_alerted", sa.Boolean(), nullable=False, comment="Slack told of this crossing; re-armed when back in stock"),
        sa.Column("status_since", warehouse.types.UTCDateTime(timezone=True), nullable=False, comment="when the status last changed"),
        sa.Column("checked_at", warehouse.types.UTCDateTime(timezone=True), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("status IN ('in_stock', 'low', 'out_of_stock')", name=op.f("ck_esim_stock_status")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "provider", "provider_package_id"],
            ["esim_packages.tenant_id", "esim_packages.provider", "esim_packages.provider_package_id"],
            name=op.f("fk_esim_stock_tenant_id_esim_packages"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "provider", "provider_package_id", name=op.f("pk_esim_stock")),
        comment="Units left per eSIM package at its provider; checkout refuses out_of_stock.",
    )


def downgrade() -> None:
    op.drop_table("esim_stock")
    op.drop_index("ix_esim_packages_tenant_country", table_name="esim_packages")
    op.drop_table("esim_packages")
