"""pos events: POS webhook events, POS orders, Portaus payment intents

Revision ID: 0005_pos_events
Revises: 0001_foundation
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import warehouse.types


revision = "0005_pos_events"
down_revision = "0001_foundation"
branch_labels = ("pos_events",)
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("first_seen_at", warehouse.types.UTCDateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.Column("updated_at", warehouse.types.UTCDateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "pos_webhook_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False, comment="treez, dutchie, blaze, flowhub, cova, shopify"),
        sa.Column("event_id", sa.String(length=128), nullable=False,
                  comment="the provider's delivery id (X-Shopify-Webhook-Id) or sha256 of the raw body when it sends none"),
        sa.Column("status", sa.String(length=16), nullable=False, comment="accepted, rejected"),
        sa.Column("signature", sa.String(length=16), nullable=False, comment="valid, invalid, missing, unsigned"),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column("account", sa.String(length=128), nullable=True,
                  comment="provider account the event names (shop, dispensary, location)"),
        sa.Column("reason", sa.Text(), nullable=True, comment="why it was rejected"),
        sa.Column("payload", warehouse.types.JSONDoc(), nullable=True,
                  comment="the body when accepted; a short excerpt when rejected"),
        sa.Column("refresh", sa.String(length=16), nullable=False, comment="pending, requested, not_needed"),
        sa.Column("run_key", sa.String(length=128), nullable=True, comment="the inventory refresh that covers this event"),
        sa.Column("deliveries", sa.Integer(), server_default="1", nullable=False, comment="how often it was delivered"),
        sa.Column("received_at", warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pos_webhook_events")),
        sa.UniqueConstraint("tenant_id", "provider", "event_id", "status", name="uq_pos_webhook_events_event"),
        comment="Every POS webhook delivery, once per provider event id, with its signature outcome.",
    )
    with op.batch_alter_table("pos_webhook_events", schema=None) as batch_op:
        batch_op.create_index("ix_pos_webhook_events_refresh", ["refresh", "id"], unique=False)
        batch_op.create_index("ix_pos_webhook_events_tenant_received", ["tenant_id", "received_at"], unique=False)

    op.create_table(
        "pos_orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=False, comment="the caller's idempotency key"),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("customer_ref", sa.String(length=128), nullable=False, comment="the customer's id in the POS"),
        sa.Column("customer_type", sa.String(length=16), nullable=False, comment="recreational, medical"),
        sa.Column("status", sa.String(length=16), nullable=False, comment="rejected, submitting, submitted, failed, unconfirmed"),
        sa.Column("validation", warehouse.types.JSONDoc(), nullable=False, comment="checks run and problems found"),
        sa.Column("items", warehouse.types.JSONDoc(), nullable=False,
                  comment="lines with unit price and grams from the warehouse"),
        sa.Column("total", warehouse.types.Money(precision=18, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("grams", warehouse.types.Money(precision=18, scale=4), nullable=True,
                  comment="cannabis weight of the order in grams (exact decimal)"),
        sa.Column("request_hash", sa.String(length=64), nullable=False,
                  comment="sha256 of the order as asked, for replays"),
        sa.Column("provider_request", warehouse.types.JSONDoc(), nullable=True,
                  comment="the body sent, in the provider's format"),
        sa.Column("provider_order_id", sa.String(length=128), nullable=True),
        sa.Column("confirmation", warehouse.types.JSONDoc(), nullable=True, comment="the provider's answer"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("submitted_at", warehouse.types.UTCDateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pos_orders")),
        sa.UniqueConstraint("tenant_id", "order_ref", name="uq_pos_orders_ref"),
        comment="Orders validated (stock, purchase limits, age) and submitted to a tenant's POS.",
    )
    with op.batch_alter_table("pos_orders", schema=None) as batch_op:
        batch_op.create_index("ix_pos_orders_customer_day", ["tenant_id", "customer_ref", "submitted_at"], unique=False)

    op.create_table(
        "portaus_payment_intents",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False, comment="our order reference, one intent each"),
        sa.Column("intent_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("amount", warehouse.types.Money(precision=18, scale=4), nullable=False,
                  comment="in the currency's major unit"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer", sa.String(length=128), nullable=True),
        sa.Column("branch", sa.String(length=16), nullable=True, comment="SAQ branch number"),
        sa.Column("redirect_url", sa.String(length=500), nullable=True),
        sa.Column("raw", warehouse.types.JSONDoc(), nullable=False, comment="Portaus's answer without the client secret"),
        sa.Column("request_hash", sa.String(length=64), nullable=False, comment="sha256 of the request, for replays"),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "reference", name=op.f("pk_portaus_payment_intents")),
        sa.UniqueConstraint("tenant_id", "intent_id", name="uq_portaus_payment_intents_intent"),
        comment="Portaus payment intents, created once per reference (seed 000).",
    )


def downgrade() -> None:
    op.drop_table("portaus_payment_intents")
    with op.batch_alter_table("pos_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_pos_orders_customer_day")
    op.drop_table("pos_orders")
    with op.batch_alter_table("pos_webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_pos_webhook_events_tenant_received")
        batch_op.drop_index("ix_pos_webhook_events_refresh")
    op.drop_table("pos_webhook_events")
