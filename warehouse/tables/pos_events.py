"""POS webhooks received, orders sent to a POS, and Portaus payment intents (seeds 004 and 000).

Written by the API, read by the webhook sensor and by analysts. Every row carries its tenant.
"""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column, timestamps
from warehouse.types import JSONDoc, Money, UTCDateTime

# refresh states of a webhook event: the sensor picks up "pending" ones only
REFRESH_PENDING, REFRESH_REQUESTED, REFRESH_NOT_NEEDED = "pending", "requested", "not_needed"

pos_webhook_events = sa.Table(
    "pos_webhook_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    tenant_column(),
    sa.Column("provider", sa.String(32), nullable=False, comment="the POS system that sent it; the systems: resources/providers.py"),
    sa.Column("event_id", sa.String(128), nullable=False,
              comment="the provider's delivery id (X-Shopify-Webhook-Id) or sha256 of the raw body when it sends none"),
    sa.Column("status", sa.String(16), nullable=False,
              comment="accepted (refused deliveries are counted in metrics, not stored; older rows may be rejected)"),
    sa.Column("signature", sa.String(16), nullable=False,
              comment="valid (signature or shared secret), token (URL token only); older rows: invalid, missing, unsigned"),
    sa.Column("topic", sa.String(64)),
    sa.Column("account", sa.String(128), comment="provider account the event names (shop, dispensary, location)"),
    sa.Column("reason", sa.Text, comment="why it was rejected"),
    sa.Column("payload", JSONDoc, comment="the body when accepted; a short excerpt when rejected"),
    sa.Column("refresh", sa.String(16), nullable=False, comment="pending, requested, not_needed"),
    sa.Column("run_key", sa.String(128), comment="the inventory refresh that covers this event"),
    sa.Column("deliveries", sa.Integer, nullable=False, server_default="1", comment="how often it was delivered"),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("last_received_at", UTCDateTime, nullable=False),
    sa.Column("processed_at", UTCDateTime),
    # status is part of the key so a forged delivery cannot occupy the id of the real one
    sa.UniqueConstraint("tenant_id", "provider", "event_id", "status", name="uq_pos_webhook_events_event"),
    sa.Index("ix_pos_webhook_events_refresh", "refresh", "id"),
    sa.Index("ix_pos_webhook_events_tenant_received", "tenant_id", "received_at"),
    comment="Every POS webhook delivery, once per provider event id, with its signature outcome.",
)

pos_webhook_tokens = sa.Table(
    "pos_webhook_tokens",
    metadata,
    tenant_column(),
    sa.Column("provider", sa.String(32), nullable=False, comment="a POS system that does not sign its webhooks (resources/providers.py)"),
    sa.Column("token_sha256", sa.String(64), nullable=False, comment="hex sha256 of the token; the token is shown once"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "provider"),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
    comment="The secret in each unsigned POS connection's webhook URL, kept only as a hash.",
)

pos_orders = sa.Table(
    "pos_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    tenant_column(),
    sa.Column("order_ref", sa.String(64), nullable=False, comment="the caller's idempotency key"),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("customer_ref", sa.String(128), nullable=False, comment="the customer's id in the POS"),
    sa.Column("customer_type", sa.String(16), nullable=False, comment="recreational, medical"),
    sa.Column("status", sa.String(16), nullable=False, comment="rejected, submitting, submitted, failed, unconfirmed"),
    sa.Column("validation", JSONDoc, nullable=False, comment="checks run and problems found"),
    sa.Column("items", JSONDoc, nullable=False, comment="lines with unit price and grams from the warehouse"),
    sa.Column("total", Money),
    sa.Column("currency", sa.String(3)),
    sa.Column("grams", Money, comment="cannabis weight of the order in grams (exact decimal)"),
    sa.Column("request_hash", sa.String(64), nullable=False, comment="sha256 of the order as asked, for replays"),
    sa.Column("provider_request", JSONDoc, comment="the body sent, in the provider's format"),
    sa.Column("provider_order_id", sa.String(128)),
    sa.Column("confirmation", JSONDoc, comment="the provider's answer"),
    sa.Column("error", sa.Text),
    sa.Column("submitted_at", UTCDateTime),
    *timestamps(),
    sa.UniqueConstraint("tenant_id", "order_ref", name="uq_pos_orders_ref"),
    sa.Index("ix_pos_orders_customer_day", "tenant_id", "customer_ref", "submitted_at"),
    comment="Orders validated (stock, purchase limits, age) and submitted to a tenant's POS.",
)

portaus_payment_intents = sa.Table(
    "portaus_payment_intents",
    metadata,
    tenant_column(),
    sa.Column("reference", sa.String(128), nullable=False, comment="our order reference, one intent each"),
    sa.Column("intent_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("amount", Money, nullable=False, comment="in the currency's major unit"),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("customer", sa.String(128)),
    sa.Column("branch", sa.String(16), comment="SAQ branch number"),
    sa.Column("redirect_url", sa.String(500)),
    sa.Column("raw", JSONDoc, nullable=False, comment="Portaus's answer without the client secret"),
    sa.Column("request_hash", sa.String(64), nullable=False, comment="sha256 of the request, for replays"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "reference"),
    sa.UniqueConstraint("tenant_id", "intent_id", name="uq_portaus_payment_intents_intent"),
    comment="Portaus payment intents, created once per reference (seed 000).",
)
