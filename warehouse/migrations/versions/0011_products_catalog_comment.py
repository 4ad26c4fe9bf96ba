"""pos: the products table's comment spells catalog (one spelling, issue 11)

Written by tools/rename.py on the newest revision of the pos branch it found. Only the comment
changes (PostgreSQL keeps table comments; SQLite has none).

Revision ID: 0011_products_catalog_comment
Revises: 0008_dutchie_mmj_expiry
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011_products_catalog_comment"
down_revision = "0008_dutchie_mmj_expiry"
branch_labels = None
depends_on = None

OLD = "Every tenant's catalogue from its POS or Portaus, normalised to one model."
NEW = "Every tenant's catalog from its POS or Portaus, normalised to one model."


def upgrade() -> None:
    if op.get_bind().dialect.supports_comments:
        op.create_table_comment("products", NEW, existing_comment=OLD)


def downgrade() -> None:
    if op.get_bind().dialect.supports_comments:
        op.create_table_comment("products", OLD, existing_comment=NEW)
