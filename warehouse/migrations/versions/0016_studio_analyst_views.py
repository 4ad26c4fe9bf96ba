"""studio: views for analysts of the studio's invoices and clients, without what they must not see

``studio_invoices_analytics`` leaves out the open Stripe Checkout Session (its id, URL, amount and
expiry: the URL lets anyone pay, and reach, the invoice), the digest of the client's invoice-page
link and the notes printed on the invoice (free text, may name the client). ``studio_clients_analytics``
keeps what counting clients needs (id, tenant, whether they have a sign-in, archived, when) and
leaves out names, company, e-mail, phone, address and ABN. The tables stay in the ``ops`` schema
on PostgreSQL (warehouse/schemas.py), these views in ``analytics``.

As with 0009's views: SQLite refuses to rename a table a view names, which is what a batch
migration does when it recreates a table, so a later migration that recreates ``studio_invoices``
or ``studio_clients`` on SQLite drops the view first and creates it again after.

Revision ID: 0016_studio_analyst_views
Revises: 0015_studio_printing
Create Date: 2026-12-06
"""

from alembic import op

revision = "0016_studio_analyst_views"
down_revision = "0015_studio_printing"
branch_labels = None
depends_on = None

# Plain SELECTs of named columns: the same SQL on SQLite and PostgreSQL.
INVOICES = """
CREATE VIEW studio_invoices_analytics AS
SELECT id, tenant_id, client_id, number, document_number, status, issue_date, currency, subtotal,
       discount_total, tax_total, total, revision, sent_at, created_by, created_at, updated_at, quote_id,
       due_date, amount_paid, amount_refunded, balance_due, issued_at, paid_at, voided_at
FROM studio_invoices
"""
CLIENTS = """
CREATE VIEW studio_clients_analytics AS
SELECT id, tenant_id, user_id, archived_at, created_at, updated_at
FROM studio_clients
"""


def upgrade() -> None:
    op.execute(INVOICES)
    op.execute(CLIENTS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS studio_clients_analytics")
    op.execute("DROP VIEW IF EXISTS studio_invoices_analytics")
