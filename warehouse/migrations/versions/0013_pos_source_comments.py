"""pos: the source columns' comments no longer list the POS systems (the registry does, issue 10)

Only the comments change (PostgreSQL keeps column comments; SQLite has none).

Revision ID: 0013_pos_source_comments
Revises: 0011_products_catalog_comment
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_pos_source_comments"
down_revision = "0011_products_catalog_comment"
branch_labels = None
depends_on = None

TABLES = ("products", "inventory", "customers", "saq_branches")
OLD = "system: treez, dutchie, blaze, flowhub, cova, shopify, portaus"
NEW = "the POS system (or Portaus) it comes from; the systems: resources/providers.py"


def _comment(new: str, old: str) -> None:
    if op.get_bind().dialect.supports_comments:
        for table in TABLES:
            op.alter_column(table, "source", comment=new, existing_comment=old, existing_type=sa.String(16),
                            existing_nullable=False)


def upgrade() -> None:
    _comment(NEW, OLD)


def downgrade() -> None:
    _comment(OLD, NEW)
