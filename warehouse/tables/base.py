"""The shared ``MetaData`` with a naming convention (stable constraint names for migrations)."""

import sqlalchemy as sa

from warehouse.types import UTCDateTime, utc_now

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def tenant_column() -> sa.Column:
    return sa.Column("tenant_id", sa.String(64), nullable=False,
                     comment="the merchant the row belongs to (tenants.tenant_id)")


def timestamps() -> list[sa.Column]:
    """``first_seen_at`` set once; ``updated_at`` moved only when a row's content changes."""
    return [
        sa.Column("first_seen_at", UTCDateTime, nullable=False, server_default=utc_now(),
                  comment="when the warehouse first stored the row (UTC)"),
        sa.Column("updated_at", UTCDateTime, nullable=False, server_default=utc_now(),
                  comment="when the row's content last changed in the warehouse (UTC)"),
    ]
