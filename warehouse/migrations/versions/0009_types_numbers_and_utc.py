"""all: on SQLite, money as numbers and every time in one UTC text form (a no-op on PostgreSQL)

Before this, SQLite kept money as canonical text (so ``max(amount)`` compared text: '99.3400' beat
872) and times as offset-less text with mixed precision (``CURRENT_TIMESTAMP`` defaults wrote
whole seconds). Each table with money, or with a time column that has a "now" default, is
rebuilt (Alembic batch mode) with NUMERIC-affinity money columns and defaults that write
``YYYY-MM-DD HH:MM:SS.ffffff+00:00``; then every stored amount is rewritten as the double
nearest its 4-place value and every stored time in that one form. Views are dropped around
the rebuild and re-created from their stored SQL. PostgreSQL already has NUMERIC and TIMESTAMPTZ.

The tables, columns and conversions are frozen here (not imported from the app) so that the
migration means the same thing whatever the app later becomes.

Revision ID: 0009_types_numbers_utc
Revises: 0008_writers_pos_tokens (depends on every revision that creates or changes a table before it)
Create Date: 2026-12-06
"""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from alembic import op

revision = "0009_types_numbers_utc"
# After the newest revision (pos_events branch), and after every other branch has created its
# tables, without merging the branches (each can still be applied and removed on its own).
down_revision = "0008_writers_pos_tokens"
branch_labels = None
depends_on = ("0002_esim_catalog", "0008_dutchie_mmj_expiry", "0008_fulfil_unclaimed_esims", "0008_mx_invoice_codes",
              "0009_secrets_sync_worker")  # every other branch's newest revision: Alembic trips on an inner one

NOW = "(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))"
LEGACY_NOW = "(CURRENT_TIMESTAMP)"
FOUR_PLACES = Decimal("0.0001")

# table: (money columns, time columns, time columns defaulting to "now"), as on 2026-12-06.
TABLES = {
    "circuit_breakers": ((), ("opened_at", "first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "customers": (("loyalty_points",), ("source_created_at", "source_updated_at", "deleted_at", "first_seen_at",
                                        "updated_at"), ("first_seen_at", "updated_at")),
    "esim_packages": (("cost", "price"), ("first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "esim_stock": ((), ("status_since", "checked_at", "first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "inventory": (("quantity", "min_quantity", "increment", "low_stock_threshold"),
                  ("source_updated_at", "deleted_at", "first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "invoice_lines": (("quantity", "price", "tax_amount", "total_amount"), ("first_seen_at", "updated_at"),
                      ("first_seen_at", "updated_at")),
    "invoices": (("total_amount", "balance", "paid_amount"), ("invoice_date", "first_seen_at", "updated_at"),
                 ("first_seen_at", "updated_at")),
    "mart_orders_daily": (("revenue", "refunds", "net_revenue"), ("updated_at",), ("updated_at",)),
    "mart_provisioning_daily": ((), ("updated_at",), ("updated_at",)),
    "order_effects": ((), ("lease_expires_at", "next_run_at", "created_at", "done_at"), ("created_at",)),
    "order_esims": ((), ("provisioned_at",), ("provisioned_at",)),
    "orders": (("unit_price", "amount_total", "amount_refunded"),
               ("created_at", "status_changed_at", "paid_at", "completed_at"), ("created_at", "status_changed_at")),
    "payments": (("amount", "amount_refunded"), ("created_at", "updated_at"), ("created_at", "updated_at")),
    "portaus_payment_intents": (("amount",), ("first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "pos_orders": (("total", "grams"), ("submitted_at", "first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "pos_webhook_events": ((), ("received_at", "last_received_at", "processed_at"), ()),
    "pos_webhook_tokens": ((), ("first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "product_categories": ((), ("first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "products": (("thc_min_pct", "thc_max_pct", "cbd_min_pct", "cbd_max_pct", "thc_mg", "cbd_mg", "weight_g",
                  "volume_ml", "alcohol_pct", "price"), ("source_updated_at", "deleted_at", "first_seen_at", "updated_at"),
                 ("first_seen_at", "updated_at")),
    "provisioning_attempts": ((), ("started_at", "finished_at"), ()),
    "provisioning_jobs": ((), ("lease_expires_at", "next_run_at", "created_at", "finished_at"), ("created_at",)),
    "quarantine": ((), ("first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "saq_branches": ((), ("deleted_at", "first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "sync_requests": ((), ("requested_at", "launched_at"), ("requested_at",)),
    "sync_runs": ((), ("started_at", "finished_at"), ()),
    "sync_state": ((), ("first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "tenant_connections": ((), ("first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "tenants": ((), ("first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "transactions": (("amount",), ("created_at", "first_seen_at", "updated_at"), ("first_seen_at", "updated_at")),
    "unclaimed_esims": ((), ("bought_at", "found_at", "resolved_at"), ("found_at",)),
    "webhook_events": ((), ("stripe_created", "received_at"), ("received_at",)),
}


def _decimal(value) -> Decimal:
    return Decimal(value if isinstance(value, (str, int)) else repr(value)).quantize(FOUR_PLACES, ROUND_HALF_UP)


def _number(value):
    return None if value is None else float(_decimal(value))


def _legacy_money(value):
    return None if value is None else str(_decimal(value))


def _utc(value) -> dt.datetime | None:
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)


def _time(value):
    return None if value is None else _utc(value).isoformat(" ", "microseconds")


def _legacy_time(value):
    return None if value is None else _utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _rebuild(money_type, money_from, default: str, default_from: str, money_fn, time_fn) -> None:
    bind = op.get_bind()
    raw = bind.connection.driver_connection
    raw.create_function("sh_money", 1, money_fn, deterministic=True)
    raw.create_function("sh_time", 1, time_fn, deterministic=True)
    # Views name the tables being rebuilt, and SQLite checks them on every table rename.
    views = bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'view'").all()
    for name, _sql in views:
        op.execute(f'DROP VIEW "{name}"')
    existing = set(sa.inspect(bind).get_table_names())
    for table, (money, times, defaulted) in TABLES.items():
        if table not in existing:
            continue
        if money or defaulted:
            with op.batch_alter_table(table, recreate="always") as batch:
                for column in money:
                    batch.alter_column(column, type_=money_type, existing_type=money_from)
                for column in defaulted:
                    batch.alter_column(column, server_default=sa.text(default), existing_server_default=sa.text(default_from),
                                       existing_type=sa.String(32))
        sets = [f"{c} = sh_money({c})" for c in money] + [f"{c} = sh_time({c})" for c in times]
        op.execute(f"UPDATE {table} SET {', '.join(sets)}")
    for _name, sql in views:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL: NUMERIC(18, 4) and TIMESTAMPTZ already
    _rebuild(sa.Numeric(18, 4), sa.String(32), NOW, LEGACY_NOW, _number, _time)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(sa.String(32), sa.Numeric(18, 4), LEGACY_NOW, NOW, _legacy_money, _legacy_time)
