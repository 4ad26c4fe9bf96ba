"""The eSIM shop's operational tables: orders, payments, webhook events, provisioning, marts.

Written by the API (checkout, Stripe webhooks, the provisioning worker) and read by analysts.
Durable, exactly-once provisioning rests on three of them: ``provisioning_jobs`` (one row per
paid order, claimed under a lease so one worker at a time runs it), ``provisioning_attempts``
(every provider call, recorded *before* it is made, so a worker that died mid-call leaves a
trace the next one resolves with the provider before buying anywhere else) and ``order_effects``
(an outbox: emails, Slack notices and refunds written in the same transaction as the order
change that causes them, then delivered at least once with idempotency keys).
"""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column
from warehouse.types import JSONDoc, Money, UTCDateTime


def _now_column(name: str, comment: str | None = None) -> sa.Column:
    return sa.Column(name, UTCDateTime, nullable=False, server_default=sa.func.current_timestamp(), comment=comment)


orders = sa.Table(
    "orders",
    metadata,
    tenant_column(),
    sa.Column("order_id", sa.String(40), nullable=False, comment="ord_…; also the provider reference"),
    sa.Column("status", sa.String(24), nullable=False, comment="pending, awaiting_payment, payment_failed, "
              "expired, paid, processing, provisioned, partially_provisioned, failed, refunded"),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False, comment="provider of the package the customer chose"),
    sa.Column("provider_package_id", sa.String(128), nullable=False),
    sa.Column("package_name", sa.String(300), nullable=False),
    sa.Column("country_code", sa.String(8)),
    sa.Column("region", sa.String(64)),
    sa.Column("data_mb", sa.Integer),
    sa.Column("unlimited", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("validity_days", sa.Integer),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("amount_total", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount_refunded", Money, nullable=False, server_default="0"),
    sa.Column("idempotency_key", sa.String(255), comment="the checkout request's Idempotency-Key"),
    sa.Column("request_hash", sa.String(64), nullable=False, comment="sha256 of the checkout request"),
    sa.Column("stripe_session_id", sa.String(255)),
    sa.Column("stripe_payment_intent_id", sa.String(255)),
    sa.Column("checkout_url", sa.Text),
    sa.Column("failure_reason", sa.Text),
    _now_column("created_at"),
    _now_column("status_changed_at"),
    sa.Column("paid_at", UTCDateTime),
    sa.Column("completed_at", UTCDateTime, comment="provisioned, failed or refunded"),
    sa.PrimaryKeyConstraint("tenant_id", "order_id"),
    sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_orders_tenant_idempotency_key"),
    sa.Index("ix_orders_tenant_session", "tenant_id", "stripe_session_id"),
    sa.Index("ix_orders_tenant_intent", "tenant_id", "stripe_payment_intent_id"),
    sa.Index("ix_orders_status_changed", "status", "status_changed_at"),
    sa.Index("ix_orders_tenant_created", "tenant_id", "created_at"),
    comment="One row per checkout: the plan bought, the money, and where the order stands.",
)

order_esims = sa.Table(
    "order_esims",
    metadata,
    tenant_column(),
    sa.Column("order_id", sa.String(40), nullable=False),
    sa.Column("unit", sa.Integer, nullable=False, comment="1..quantity"),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_package_id", sa.String(128), nullable=False),
    sa.Column("provider_order_id", sa.String(128)),
    sa.Column("iccid", sa.String(22), nullable=False),
    sa.Column("activation_code", sa.Text, nullable=False, comment="LPA:1$host$matching-id"),
    sa.Column("smdp_host", sa.String(255)),
    sa.Column("matching_id", sa.String(255)),
    sa.Column("qr_png", sa.LargeBinary, nullable=False, comment="QR code of the activation code"),
    _now_column("provisioned_at"),
    sa.PrimaryKeyConstraint("tenant_id", "order_id", "unit"),
    comment="The eSIMs delivered for an order, one per unit.",
)

payments = sa.Table(
    "payments",
    metadata,
    tenant_column(),
    sa.Column("payment_intent_id", sa.String(255), nullable=False),
    sa.Column("order_id", sa.String(40)),
    sa.Column("session_id", sa.String(255)),
    sa.Column("status", sa.String(24), nullable=False, comment="processing, failed, succeeded"),
    sa.Column("amount", Money, nullable=False),
    sa.Column("amount_refunded", Money, nullable=False, server_default="0"),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("charge_id", sa.String(255)),
    sa.Column("failure_code", sa.String(64)),
    _now_column("created_at"),
    _now_column("updated_at"),
    sa.PrimaryKeyConstraint("tenant_id", "payment_intent_id"),
    sa.Index("ix_payments_tenant_order", "tenant_id", "order_id"),
    comment="Stripe PaymentIntents behind orders, with what was refunded.",
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    tenant_column(),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("order_id", sa.String(40)),
    sa.Column("outcome", sa.String(24), nullable=False, comment="applied, unchanged, ignored, no_order"),
    sa.Column("stripe_created", UTCDateTime),
    sa.Column("payload", JSONDoc, nullable=False),
    _now_column("received_at"),
    sa.PrimaryKeyConstraint("tenant_id", "event_id"),
    sa.Index("ix_webhook_events_tenant_order", "tenant_id", "order_id"),
    comment="Every Stripe event accepted, once (a re-delivery finds its row and changes nothing).",
)

provisioning_jobs = sa.Table(
    "provisioning_jobs",
    metadata,
    tenant_column(),
    sa.Column("order_id", sa.String(40), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, comment="queued, running, done"),
    sa.Column("runs", sa.Integer, nullable=False, server_default="0", comment="times claimed"),
    sa.Column("lease_token", sa.String(64)),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("next_run_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.Text),
    _now_column("created_at"),
    sa.Column("finished_at", UTCDateTime),
    sa.PrimaryKeyConstraint("tenant_id", "order_id"),
    sa.Index("ix_provisioning_jobs_due", "state", "next_run_at"),
    comment="One per paid order; a worker runs it only while it holds the lease.",
)

provisioning_attempts = sa.Table(
    "provisioning_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    tenant_column(),
    sa.Column("order_id", sa.String(40), nullable=False),
    sa.Column("unit", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_package_id", sa.String(128)),
    sa.Column("reference", sa.String(64), nullable=False,
              comment="our order id (one per eSIM) as sent to the provider; Airalo's order list is searched by it"),
    sa.Column("outcome", sa.String(24), nullable=False, comment="started, succeeded, failed, unknown, skipped, "
              "resolved_absent, abandoned"),
    sa.Column("error_class", sa.String(32), comment="connection, server, rate_limited, auth, validation, "
              "out_of_stock, circuit_open, ..."),
    sa.Column("error", sa.Text),
    sa.Column("latency_ms", sa.Float),
    sa.Column("provider_order_id", sa.String(128)),
    sa.Column("iccid", sa.String(22)),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Index("ix_provisioning_attempts_order", "tenant_id", "order_id", "unit"),
    sa.Index("ix_provisioning_attempts_started", "started_at", "provider"),
    comment="Every provider call made (or skipped by an open breaker) to provision an order.",
)

order_effects = sa.Table(
    "order_effects",
    metadata,
    tenant_column(),
    sa.Column("order_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False, comment="email_ready, email_apology, slack_provisioned, "
              "slack_failed, slack_stuck, refund"),
    sa.Column("state", sa.String(16), nullable=False, comment="pending, done, skipped, failed"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_token", sa.String(64)),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("next_run_at", UTCDateTime, nullable=False),
    sa.Column("result", sa.String(255), comment="email id, refund id, ..."),
    sa.Column("last_error", sa.Text),
    _now_column("created_at"),
    sa.Column("done_at", UTCDateTime),
    sa.PrimaryKeyConstraint("tenant_id", "order_id", "kind"),
    sa.Index("ix_order_effects_due", "state", "next_run_at"),
    comment="Outbox of what an order change must cause outside: at most one row per order and kind.",
)

# The shop's marts (mart_orders_daily, mart_provisioning_daily) are dbt models: analytics/models/shop/.
