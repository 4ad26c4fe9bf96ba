"""mx: the MX marts whose shape changed are dropped, so that dbt builds them anew in full

``mx_transactions_daily`` gained ``referencing_invoice`` and ``linked`` and ``mx_sales_daily``
became incremental with a ``source_updated_at`` watermark. An incremental dbt model merges into the
table it finds, with the columns that table has: built by the previous models, they would be kept
in their old shape. Upgrading drops them (the next ``dbt build`` makes them again, in full), as
0009_dbt_marts_to_dbt did for the Python-built marts; downgrading drops them too (the old models
rebuild theirs).

Revision ID: 0012_mx_marts_new_shape
Revises: 0011_mx_updated_at_index
Create Date: 2026-12-06
"""

from alembic import op

revision = "0012_mx_marts_new_shape"
down_revision = "0011_mx_updated_at_index"
branch_labels = None
depends_on = None

MARTS = ("mx_sales_daily", "mx_transactions_daily")


def upgrade() -> None:
    for table in MARTS:
        op.execute(f"DROP TABLE IF EXISTS {table}")


def downgrade() -> None:
    for table in MARTS:
        op.execute(f"DROP TABLE IF EXISTS {table}")
