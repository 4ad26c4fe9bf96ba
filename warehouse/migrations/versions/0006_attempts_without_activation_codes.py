"""shop: provisioning_attempts keeps no activation codes (they live in order_esims only)

An activation code installs the eSIM; ``provisioning_attempts`` is an analysts' table, and the
code was written there only as a copy. Existing copies go with the column.

Revision ID: 0006_attempts_no_codes
Revises: 0003_shop
Create Date: 2026-12-05
"""

from alembic import op
import sqlalchemy as sa


revision = "0006_attempts_no_codes"
down_revision = "0003_shop"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provisioning_attempts") as batch:
        batch.drop_column("activation_code")


def downgrade() -> None:
    with op.batch_alter_table("provisioning_attempts") as batch:
        batch.add_column(sa.Column("activation_code", sa.Text(), nullable=True))
