"""mx: a payment's `invoice` field that is not an invoice number goes to its own column

MX puts other codes than invoice numbers (integers) in a payment's ``invoice`` field, e.g.
``B00INYBB``. They were stored as invoice numbers, looked up in the invoice list, quarantined as
"invoice number not found" and counted by the invoice-link check on every run. This adds
``transactions.invoice_code``, moves those codes there, and drops their quarantine rows. The
integer test is frozen here (not imported from the app), per dialect.

Revision ID: 0008_mx_invoice_codes
Revises: 0001_foundation
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_mx_invoice_codes"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def _not_integer(column: str) -> str:
    """SQL true when ``column`` holds anything but digits."""
    if op.get_bind().dialect.name == "postgresql":
        return f"{column} !~ '^[0-9]+$'"
    return f"({column} = '' OR {column} GLOB '*[^0-9]*')"


def upgrade() -> None:
    op.add_column("transactions", sa.Column(
        "invoice_code", sa.String(64),
        comment="MX `invoice` field when it holds another code (e.g. 'B00INYBB'): no invoice has it"))
    op.execute(f"UPDATE transactions SET invoice_code = invoice_number, invoice_number = NULL "
               f"WHERE invoice_number IS NOT NULL AND {_not_integer('invoice_number')}")
    op.execute(f"DELETE FROM quarantine WHERE stream = 'mx_invoices' AND source_id LIKE 'number:%' "
               f"AND {_not_integer('substr(source_id, 8)')}")


def downgrade() -> None:
    op.execute("UPDATE transactions SET invoice_number = invoice_code WHERE invoice_code IS NOT NULL")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("invoice_code")
