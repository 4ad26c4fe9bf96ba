"""pos: customers keep when their medical id expires

An expired medical id gives the recreational purchase limit, so the expiry the POS reports
(Dutchie ``mmjidExpirationDate``) is stored next to the id. PII: not in ``customers_analytics``.

Revision ID: 0008_dutchie_mmj_expiry
Revises: 0004_pos
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_dutchie_mmj_expiry"
down_revision = "0004_pos"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("medical_id_expires_on", sa.Date(), nullable=True,
                                         comment="PII; an expired medical id gets the recreational rules"))


# 0004's view, frozen here: SQLite rebuilds the table to drop a column, and the view must go first.
ANALYTICS_VIEW = """
CREATE VIEW customers_analytics AS
SELECT tenant_id, source, customer_id, customer_type, gender, birth_year, city, state, postal_prefix,
       country, loyalty_points, marketing_opt_in, status, source_created_at, source_updated_at, deleted_at
FROM customers
"""


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS customers_analytics")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("medical_id_expires_on")
    op.execute(ANALYTICS_VIEW)
