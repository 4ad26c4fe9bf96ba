"""The eSIM shop's operational tables: orders, payments, webhook events, provisioning, marts.

Written by the API (checkout, Stripe webhooks, the provisioning worker) and read by analysts.
Durable, exactly-once provisioning rests on three of them: ``provisioning_jobs`` (one row per
paid order, claimed under a lease so one worker at a time runs it), ``provisioning_attempts``
(every provider call, recorded *before* it is made, so a worker that died mid-call leaves a
trace the next one resolves with the provider before buying anywhere else) and ``order_effects``
(an outbox: emails, Slack notices and refunds written in the same transaction as the order
change that causes them, then delivered at least once with idempotency keys).

``order_refunds`` keeps each refund with the time it was recorded, so a mart counts the refunds made
up to its cut-off, whatever refunds come after.
"""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column
from warehouse.types import JSONDoc, Money, UTCDateTime, utc_now


def _now_column(name: str, comment: str | None = None) -> sa.Column:
    return sa.Column(name, UTCDateTime, nullable=False, server_default=utc_now(), comment=comment)


orders = sa.Table(
    "orders",
    metadata,
    tenant_column(),
    sa.Column("order_id", sa.String(40), nullable=False, comment="ord_…; also the provider reference"),
    sa.Column("status", sa.String(24), nullable=False, comment="pending, awaiting_payment, payment_failed, "
              "expired, paid, processing, provisioned, partially_provisioned, failed, refunded"),
    sa.Column("email", sa.String(320), nullable=False, comment="the buyer's email, where the eSIM is sent"),
    sa.Column("provider", sa.String(32), nullable=False, comment="provider of the package the customer chose"),
    sa.Column("provider_package_id", sa.String(128), nullable=False, comment="esim_packages.provider_package_id"),
    sa.Column("package_name", sa.String(300), nullable=False, comment="the package's title at checkout"),
    sa.Column("country_code", sa.String(8), comment="ISO 3166-1 alpha-2 of the plan; null for regional plans"),
    sa.Column("region", sa.String(64), comment="region name for multi-country plans"),
    sa.Column("data_mb", sa.Integer, comment="data included in MB; null when unlimited"),
    sa.Column("unlimited", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="true for unlimited-data plans"),
    sa.Column("validity_days", sa.Integer, comment="days the plan is valid after activation"),
    sa.Column("quantity", sa.Integer, nullable=False, comment="eSIMs bought"),
    sa.Column("unit_price", Money, nullable=False, comment="price of one eSIM at checkout"),
    sa.Column("amount_total", Money, nullable=False, comment="quantity x unit_price, what the buyer pays"),
    sa.Column("currency", sa.String(3), nullable=False, comment="ISO 4217 currency of the amounts"),
    sa.Column("amount_refunded", Money, nullable=False, server_default="0", comment="amount refunded so far"),
    sa.Column("idempotency_key", sa.String(255), comment="the checkout request's Idempotency-Key"),
    sa.Column("request_hash", sa.String(64), nullable=False, comment="sha256 of the checkout request"),
    sa.Column("stripe_session_id", sa.String(255), comment="the Stripe Checkout Session"),
    sa.Column("stripe_payment_intent_id", sa.String(255), comment="the Stripe PaymentIntent that paid it"),
    sa.Column("checkout_url", sa.Text, comment="the Stripe Checkout page the buyer was sent to"),
    sa.Column("failure_reason", sa.Text, comment="why payment or provisioning failed"),
    _now_column("created_at", "when the checkout was made (UTC)"),
    _now_column("status_changed_at", "when status last changed (UTC)"),
    sa.Column("paid_at", UTCDateTime, comment="when the payment succeeded (UTC)"),
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

order_refunds = sa.Table(
    "order_refunds",
    metadata,
    tenant_column(),
    sa.Column("order_id", sa.String(40), nullable=False, comment="orders.order_id refunded"),
    sa.Column("refunded_total", Money, nullable=False,
              comment="the order's amount_refunded after this refund (refunds only grow)"),
    sa.Column("amount", Money, nullable=False, comment="this refund: refunded_total less the total before it"),
    _now_column("recorded_at", "when the warehouse recorded it (UTC); for refunds made before this table "
                               "existed, when the order completed"),
    sa.PrimaryKeyConstraint("tenant_id", "order_id", "refunded_total"),
    sa.Index("ix_order_refunds_tenant_recorded", "tenant_id", "recorded_at"),
    comment="Each refund of an order, when it was recorded: the marts count refunds up to their cut-off "
            "from here (an order's amount_refunded says only how much so far).",
)

payments = sa.Table(
    "payments",
    metadata,
    tenant_column(),
    sa.Column("payment_intent_id", sa.String(255), nullable=False, comment="the Stripe PaymentIntent id"),
    sa.Column("order_id", sa.String(40), comment="orders.order_id it pays"),
    sa.Column("session_id", sa.String(255), comment="the Stripe Checkout Session it came from"),
    sa.Column("status", sa.String(24), nullable=False, comment="processing, failed, succeeded"),
    sa.Column("amount", Money, nullable=False, comment="amount charged"),
    sa.Column("amount_refunded", Money, nullable=False, server_default="0", comment="amount refunded so far"),
    sa.Column("currency", sa.String(3), nullable=False, comment="ISO 4217 currency"),
    sa.Column("charge_id", sa.String(255), comment="the Stripe charge id"),
    sa.Column("failure_code", sa.String(64), comment="Stripe's decline or failure code"),
    _now_column("created_at", "when the warehouse first saw it (UTC)"),
    _now_column("updated_at", "when it last changed (UTC)"),
    sa.PrimaryKeyConstraint("tenant_id", "payment_intent_id"),
    sa.Index("ix_payments_tenant_order", "tenant_id", "order_id"),
    comment="Stripe PaymentIntents behind orders, with what was refunded.",
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    tenant_column(),
    sa.Column("event_id", sa.String(255), nullable=False, comment="Stripe event id (evt_...)"),
    sa.Column("type", sa.String(100), nullable=False, comment="Stripe event type, e.g. checkout.session.completed"),
    sa.Column("order_id", sa.String(40), comment="orders.order_id the event concerns"),
    sa.Column("outcome", sa.String(24), nullable=False, comment="applied, unchanged, ignored, no_order"),
    sa.Column("stripe_created", UTCDateTime, comment="when Stripe created the event (UTC)"),
    sa.Column("payload", JSONDoc, nullable=False, comment="the event as Stripe sent it, without order tokens"),
    _now_column("received_at", "when it was received (UTC)"),
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
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True, comment="attempt number, increasing"),
    tenant_column(),
    sa.Column("order_id", sa.String(40), nullable=False, comment="orders.order_id being provisioned"),
    sa.Column("unit", sa.Integer, nullable=False, comment="which eSIM of the order (1..quantity)"),
    sa.Column("provider", sa.String(32), nullable=False, comment="provider called: esimcard, mobimatter or airalo"),
    sa.Column("provider_package_id", sa.String(128), comment="package asked for at that provider"),
    sa.Column("reference", sa.String(64), nullable=False,
              comment="our order id (one per eSIM) as sent to the provider; Airalo's order list is searched by it"),
    sa.Column("outcome", sa.String(24), nullable=False, comment="started, succeeded, failed, unknown, skipped, "
              "resolved_absent, abandoned"),
    sa.Column("error_class", sa.String(32), comment="connection, server, rate_limited, auth, validation, "
              "out_of_stock, circuit_open, ..."),
    sa.Column("error", sa.Text, comment="the provider's error message, when it failed"),
    sa.Column("latency_ms", sa.Float, comment="how long the provider call took"),
    sa.Column("provider_order_id", sa.String(128), comment="the provider's order id, when it succeeded"),
    sa.Column("iccid", sa.String(22), comment="the eSIM's ICCID, when it succeeded"),
    sa.Column("started_at", UTCDateTime, nullable=False, comment="when the call started (UTC)"),
    sa.Column("finished_at", UTCDateTime, comment="when the call ended (UTC); null while running or unknown"),
    sa.Index("ix_provisioning_attempts_order", "tenant_id", "order_id", "unit"),
    sa.Index("ix_provisioning_attempts_started", "started_at", "provider"),
    comment="Every provider call made (or skipped by an open breaker) to provision an order.",
)

unclaimed_esims = sa.Table(
    "unclaimed_esims",
    metadata,
    tenant_column(),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_order_id", sa.String(128), nullable=False, comment="the provider's id of the eSIM"),
    sa.Column("iccid", sa.String(22)),
    sa.Column("package_name", sa.String(300)),
    sa.Column("bought_at", UTCDateTime, nullable=False, comment="as the provider's list says"),
    sa.Column("order_id", sa.String(40), nullable=False,
              comment="the order whose lost purchase was being reconciled when it was found"),
    _now_column("found_at"),
    sa.Column("resolved_at", UTCDateTime, comment="set by whoever delivered, refunded or wrote it off"),
    sa.Column("resolution", sa.Text),
    sa.PrimaryKeyConstraint("tenant_id", "provider", "provider_order_id"),
    comment="eSIMs the provider account bought that no order claims: paid for, never delivered. "
            "Each is alerted to the shop's Slack once; settle it by hand.",
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

# The shop's marts (mart_orders_daily, mart_provisioning_daily) are dbt models: analytics/models/orders/.
