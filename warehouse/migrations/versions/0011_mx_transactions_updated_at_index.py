"""mx: an index on `transactions.updated_at`, the marts' incremental watermark

The incremental marts (``analytics/models/mx_merchant/mx_transactions_daily.sql``) look for the
transactions changed since their last build (``updated_at`` past the watermark): with this index
that is a range scan of the few changed rows instead of a pass over every transaction.

Whether before or after 0009_types_numbers_utc: its SQLite rebuild of ``transactions`` keeps the
table's indexes (batch mode reflects them).

Revision ID: 0011_mx_updated_at_index
Revises: 0008_mx_invoice_codes
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011_mx_updated_at_index"
down_revision = "0008_mx_invoice_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_transactions_updated_at", "transactions", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_transactions_updated_at", table_name="transactions")
