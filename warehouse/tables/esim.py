"""eSIM catalog and stock of each eSIM-selling tenant, across its providers (seed 001)."""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column, timestamps
from warehouse.types import Money, UTCDateTime

STOCK_STATUSES = ("in_stock", "low", "out_of_stock")

esim_packages = sa.Table(
    "esim_packages",
    metadata,
    tenant_column(),
    sa.Column("provider", sa.String(32), nullable=False, comment="esimcard, mobimatter or airalo"),
    sa.Column("provider_package_id", sa.String(128), nullable=False, comment="the provider's id of the package"),
    sa.Column("name", sa.String(300), nullable=False, comment="the provider's own title"),
    sa.Column("country_code", sa.String(2), comment="ISO 3166-1 alpha-2; null for regional plans"),
    sa.Column("region", sa.String(100), comment="region name for multi-country plans"),
    sa.Column("data_mb", sa.Integer, comment="null when unlimited"),
    sa.Column("unlimited", sa.Boolean, nullable=False, comment="true for unlimited-data plans"),
    sa.Column("validity_days", sa.Integer, nullable=False, comment="days the plan is valid after activation"),
    sa.Column("cost", Money, nullable=False, comment="what the provider charges us"),
    sa.Column("price", Money, nullable=False, comment="the shop's price, from its margin rule"),
    sa.Column("currency", sa.String(3), nullable=False, comment="ISO 4217 currency of cost and price"),
    sa.Column("active", sa.Boolean, nullable=False, comment="false once the provider stopped listing it"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "provider", "provider_package_id"),
    sa.Index("ix_esim_packages_tenant_country", "tenant_id", "country_code"),
    comment="Every provider package of the tenant, normalised; inactive rows are kept for history.",
)

esim_stock = sa.Table(
    "esim_stock",
    metadata,
    tenant_column(),
    sa.Column("provider", sa.String(32), nullable=False, comment="esimcard, mobimatter or airalo"),
    sa.Column("provider_package_id", sa.String(128), nullable=False, comment="esim_packages.provider_package_id"),
    sa.Column("available", sa.Integer, nullable=False, comment="units the provider says are left"),
    sa.Column("status", sa.String(16), nullable=False, comment="in_stock, low (below the threshold) or out_of_stock"),
    sa.Column("low_alerted", sa.Boolean, nullable=False, comment="Slack told of this crossing; re-armed when back in stock"),
    sa.Column("status_since", UTCDateTime, nullable=False, comment="when the status last changed"),
    sa.Column("checked_at", UTCDateTime, nullable=False, comment="when the stock was last read (UTC)"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "provider", "provider_package_id"),
    sa.ForeignKeyConstraint(
        ["tenant_id", "provider", "provider_package_id"],
        ["esim_packages.tenant_id", "esim_packages.provider", "esim_packages.provider_package_id"],
        ondelete="CASCADE",
    ),
    sa.CheckConstraint("status IN ('in_stock', 'low', 'out_of_stock')", name="status"),
    comment="Units left per eSIM package at its provider; checkout refuses out_of_stock.",
)
