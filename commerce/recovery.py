"""The hourly recovery of one shop (seed 001, workflow 5), run by the ``orders_hourly`` job.

Two ways an order can stall, both found by age rather than by any event:

* **paid, never provisioned**: paid (or processing) for over an hour. Its provisioning job runs
  now, by the same service the API runs: it asks the provider what became of a purchase whose
  answer was lost, then completes, retries (failing over after the give-up time) or fails and
  refunds. What is still stuck afterwards raises one Slack alert per order, ever.
* **paid, never told**: still waiting for payment an hour after checkout. Stripe stops retrying a
  webhook after three days and the customer may never come back through the success redirect,
  so the session is fetched from Stripe and applied like the redirect does (``fulfil``): a paid
  session becomes a paid order and is provisioned now, an expired one expires the order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
import stripe

from commerce import orders as states
from commerce.services import Services
from resources.stripe import SYSTEM as STRIPE, account_for
from warehouse.tables.orders import orders
from warehouse.types import now_utc

log = logging.getLogger("storehouse.commerce.recovery")
STUCK_AFTER = dt.timedelta(hours=1)
UNCONFIRMED = (states.PENDING, states.AWAITING_PAYMENT, states.PAYMENT_FAILED)


@dataclass
class Recovery:
    stuck: int = 0
    still_stuck: int = 0
    unconfirmed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    payments: Counter[str] = field(default_factory=Counter)
    effects: Counter[str] = field(default_factory=Counter)


def stuck_orders(engine: sa.Engine, tenant: str) -> list[dict]:
    """Paid over an hour ago and still without their eSIMs, however recently a worker touched them."""
    o = orders.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(o.order_id, o.status, o.paid_at).where(
            o.tenant_id == tenant, o.status.in_((states.PAID, states.PROCESSING)),
            sa.func.coalesce(o.paid_at, o.status_changed_at) < now_utc() - STUCK_AFTER)).mappings().all()
    return [dict(r) for r in rows]


def unconfirmed_orders(engine: sa.Engine, tenant: str, limit: int = 500) -> list[dict]:
    """Checkouts over an hour old whose payment we never heard the end of (oldest first)."""
    o = orders.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(o.order_id, o.stripe_session_id).where(
            o.tenant_id == tenant, o.status.in_(UNCONFIRMED), o.stripe_session_id.is_not(None),
            o.created_at < now_utc() - STUCK_AFTER).order_by(o.created_at).limit(limit)).mappings().all()
    return [dict(r) for r in rows]


def provision_now(services: Services, tenant: str, order_id: str) -> str:
    """Run the order's provisioning job at once, whatever its backoff (a paid order always has one,
    and an order still waiting for its eSIMs gets it back open if it was closed)."""
    with services.engine.begin() as conn:
        states.enqueue_provisioning(conn, tenant, order_id)
        services.provisioning.jobs.wake(conn, (tenant, order_id), reopen=True)
    ran = services.provisioning.run_due(tenant_id=tenant, order_id=order_id)
    return ran[0] if ran else "held by a live worker"


def confirm_payments(services: Services, tenant: str, report: Recovery) -> list[str]:
    """Apply what Stripe says of each unconfirmed checkout; returns the orders that became paid."""
    storefront = services.storefronts.get(tenant)
    connection = storefront.connection(STRIPE) if storefront else None
    pending = unconfirmed_orders(services.engine, tenant)
    report.unconfirmed = len(pending)
    if connection is None or not pending:
        return []
    account, paid = account_for(connection), []
    for order in pending:
        try:
            session = account.retrieve_session(order["stripe_session_id"])
            if services.webhooks.fulfil(tenant, order["order_id"], session):
                paid.append(order["order_id"])
                report.payments["paid"] += 1
            else:
                report.payments[str(session.get("status") or "unknown")] += 1
        except (stripe.StripeError, ValueError) as exc:  # one order's trouble never stops the others
            log.warning("order %s/%s: session not reconciled (%s)", tenant, order["order_id"], type(exc).__name__)
            report.payments["error"] += 1
    return paid


def recover(services: Services, tenant: str, log_line=log.info) -> Recovery:
    """Missed payments first (they may make orders paid), then stuck orders, then the outbox."""
    report = Recovery()
    for order_id in confirm_payments(services, tenant, report):
        report.outcomes[provision_now(services, tenant, order_id)] += 1
    stuck = stuck_orders(services.engine, tenant)
    report.stuck = len(stuck)
    for order in stuck:
        outcome = provision_now(services, tenant, order["order_id"])
        report.outcomes[outcome] += 1
        log_line(f"order {order['order_id']} ({order['status']}, paid {order['paid_at']}): {outcome}")
    still = stuck_orders(services.engine, tenant)
    report.still_stuck = len(still)
    with services.engine.begin() as conn:
        for order in still:  # one alert per order, ever (the outbox key is order + kind)
            states.enqueue_effects(conn, tenant, order["order_id"], ["slack_stuck"])
    while batch := services.effects.run_due(limit=20, tenant_id=tenant):
        report.effects.update(batch)
    return report
