"""shop: views for analysts of orders and Stripe events, without what they must not see

``orders_analytics`` leaves out the customer's e-mail (contact PII, as ``customers_analytics``
does), the Stripe checkout URL, the checkout's idempotency key and request hash (which replay
the checkout). ``webhook_events_analytics`` leaves out the raw event body. The tables stay in the
``ops`` schema on PostgreSQL (warehouse/schemas.py), these views in ``analytics``.

SQLite refuses to rename a table while a view names a table that is missing, which is what a
batch migration does when it recreates a table: a later migration that recreates ``orders`` or
``webhook_events`` on SQLite drops the view first and creates it again after (PostgreSQL alters
in place, but refuses to change the type of a column a view selects).

Revision ID: 0009_schemas_analyst_views
Revises: 0009_types_numbers_utc
Create Date: 2026-12-06
"""

from alembic import op

revision = "0009_schemas_analyst_views"
down_revision = "0009_types_numbers_utc"  # after the SQLite rebuilds: a view would block them
branch_labels = None
depends_on = None

# Plain SELECTs of named columns: the same SQL on SQLite and PostgreSQL.
ORDERS = """
CREATE VIEW orders_analytics AS
SELECT tenant_id, order_id, status, provider, provider_package_id, package_name, country_code, region,
       data_mb, unlimited, validity_days, quantity, unit_price, amount_total, currency, amount_refunded,
       stripe_session_id, stripe_payment_intent_id, failure_reason, created_at, status_changed_at,
       paid_at, completed_at
FROM orders
"""
EVENTS = """
CREATE VIEW webhook_events_analytics AS
SELECT tenant_id, event_id, type, order_id, outcome, stripe_created, received_at
FROM webhook_events
"""


def upgrade() -> None:
    op.execute(ORDERS)
    op.execute(EVENTS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS webhook_events_analytics")
    op.execute("DROP VIEW IF EXISTS orders_analytics")
