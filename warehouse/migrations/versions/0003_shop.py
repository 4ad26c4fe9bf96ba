"""shop: orders, eSIMs, payments, webhook events, provisioning jobs/attempts, effects, marts

Revision ID: 0003_shop
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa
import warehouse.types


revision = "0003_shop"
down_revision = "0001_foundation"
branch_labels = ("shop",)
depends_on = None

NOW = sa.text("(CURRENT_TIMESTAMP)")


def _tenant() -> sa.Column:
    return sa.Column("tenant_id", sa.String(length=64), nullable=False)


def _ts(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    return sa.Column(name, warehouse.types.UTCDateTime(timezone=True), nullable=nullable,
                     server_default=NOW if now else None)


def _money(name: str, nullable: bool = False, default: str | None = None) -> sa.Column:
    return sa.Column(name, warehouse.types.Money(precision=18, scale=4), nullable=nullable, server_default=default)


def upgrade() -> None:
    op.create_table(
        "orders",
        _tenant(),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_package_id", sa.String(length=128), nullable=False),
        sa.Column("package_name", sa.String(length=300), nullable=False),
        sa.Column("country_code", sa.String(length=8), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("data_mb", sa.Integer(), nullable=True),
        sa.Column("unlimited", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("validity_days", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        _money("unit_price"),
        _money("amount_total"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _money("amount_refunded", default="0"),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("stripe_session_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        _ts("created_at", nullable=False, now=True),
        _ts("status_changed_at", nullable=False, now=True),
        _ts("paid_at"),
        _ts("completed_at"),
        sa.PrimaryKeyConstraint("tenant_id", "order_id", name=op.f("pk_orders")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_orders_tenant_idempotency_key"),
        comment='One row per checkout: the plan bought, the money, and where the order stands.',
    )
    op.create_index("ix_orders_tenant_session", "orders", ["tenant_id", "stripe_session_id"])
    op.create_index("ix_orders_tenant_intent", "orders", ["tenant_id", "stripe_payment_intent_id"])
    op.create_index("ix_orders_status_changed", "orders", ["status", "status_changed_at"])
    op.create_index("ix_orders_tenant_created", "orders", ["tenant_id", "created_at"])

    op.create_table(
        "order_esims",
        _tenant(),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_package_id", sa.String(length=128), nullable=False),
        sa.Column("provider_order_id", sa.String(length=128), nullable=True),
        sa.Column("iccid", sa.String(length=22), nullable=False),
        sa.Column("activation_code", sa.Text(), nullable=False),
        sa.Column("smdp_host", sa.String(length=255), nullable=True),
        sa.Column("matching_id", sa.String(length=255), nullable=True),
        sa.Column("qr_png", sa.LargeBinary(), nullable=False),
        _ts("provisioned_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("tenant_id", "order_id", "unit", name=op.f("pk_order_esims")),
        comment='The eSIMs delivered for an order, one per unit.',
    )

    op.create_table(
        "payments",
        _tenant(),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("session_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        _money("amount"),
        _money("amount_refunded", default="0"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("charge_id", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("tenant_id", "payment_intent_id", name=op.f("pk_payments")),
        comment='Stripe PaymentIntents behind orders, with what was refunded.',
    )
    op.create_index("ix_payments_tenant_order", "payments", ["tenant_id", "order_id"])

    op.create_table(
        "webhook_events",
        _tenant(),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        _ts("stripe_created"),
        sa.Column("payload", warehouse.types.JSONDoc(), nullable=False),
        _ts("received_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name=op.f("pk_webhook_events")),
        comment='Every Stripe event accepted, once (a re-delivery finds its row and changes nothing).',
    )
    op.create_index("ix_webhook_events_tenant_order", "webhook_events", ["tenant_id", "order_id"])

    op.create_table(
        "provisioning_jobs",
        _tenant(),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        _ts("lease_expires_at"),
        _ts("next_run_at", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", nullable=False, now=True),
        _ts("finished_at"),
        sa.PrimaryKeyConstraint("tenant_id", "order_id", name=op.f("pk_provisioning_jobs")),
        comment='One per paid order; a worker runs it only while it holds the lease.',
    )
    op.create_index("ix_provisioning_jobs_due", "provisioning_jobs", ["state", "next_run_at"])

    op.create_table(
        "provisioning_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _tenant(),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_package_id", sa.String(length=128), nullable=True),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("error_class", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("provider_order_id", sa.String(length=128), nullable=True),
        sa.Column("iccid", sa.String(length=22), nullable=True),
        sa.Column("activation_code", sa.Text(), nullable=True),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_attempts")),
        comment='Every provider call made (or skipped by an open breaker) to provision an order.',
    )
    op.create_index("ix_provisioning_attempts_order", "provisioning_attempts", ["tenant_id", "order_id", "unit"])
    op.create_index("ix_provisioning_attempts_started", "provisioning_attempts", ["started_at", "provider"])

    op.create_table(
        "order_effects",
        _tenant(),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        _ts("lease_expires_at"),
        _ts("next_run_at", nullable=False),
        sa.Column("result", sa.String(length=255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", nullable=False, now=True),
        _ts("done_at"),
        sa.PrimaryKeyConstraint("tenant_id", "order_id", "kind", name=op.f("pk_order_effects")),
        comment='Outbox of what an order change must cause outside: at most one row per order and kind.',
    )
    op.create_index("ix_order_effects_due", "order_effects", ["state", "next_run_at"])

    op.create_table(
        "mart_orders_daily",
        _tenant(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False)
          for name in ("orders", "paid_orders", "provisioned", "failed", "expired", "refunded", "esims")],
        _money("revenue"),
        _money("refunds"),
        _money("net_revenue"),
        _ts("updated_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("tenant_id", "day", "currency", name=op.f("pk_mart_orders_daily")),
        comment='Orders and revenue per tenant per day (UTC, by order creation).',
    )

    op.create_table(
        "mart_provisioning_daily",
        _tenant(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("skipped_open", sa.Integer(), nullable=False),
        sa.Column("success_rate", sa.Float(), nullable=True),
        sa.Column("p50_latency_ms", sa.Float(), nullable=True),
        sa.Column("p95_latency_ms", sa.Float(), nullable=True),
        sa.Column("error_classes", warehouse.types.JSONDoc(), nullable=False),
        _ts("updated_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("tenant_id", "day", "provider", name=op.f("pk_mart_provisioning_daily")),
        comment='Provisioning attempts per tenant, provider and day: success rate, latency, error classes.',
    )


def downgrade() -> None:
    for table in ("mart_provisioning_daily", "mart_orders_daily", "order_effects", "provisioning_attempts",
                  "provisioning_jobs", "webhook_events", "payments", "order_esims", "orders"):
        op.drop_table(table)
