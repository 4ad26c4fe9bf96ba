"""The order-effects outbox: emails to the customer, Slack notices to the shop, refunds.

Effects are written in the transaction that changes the order, then delivered at least once by
whichever worker leases them. Each carries an idempotency key the receiver honours (Resend:
the order id; Stripe: ``refund:<order id>``), so a delivery repeated after a crash sends no
second email and moves no second refund. Slack has no such key: a crash between posting and
recording can repeat a notice, which is acceptable for a notice and is why money never goes
through Slack.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, Callable

import sqlalchemy as sa
import stripe

from commerce import metrics
from commerce import orders as states
from commerce.clients import EmailClients
from commerce.emails import apology_email, ready_email
from commerce.leases import Heartbeat, Lease, LeasedTable
from commerce.settings import CommerceSettings
from commerce.storefronts import Storefront, StorefrontDirectory
from commerce.tokens import OrderTokens
from resources.dagster_resources import SlackResource
from resources.http import ProviderError
from resources.stripe import SYSTEM as STRIPE
from resources.stripe import account_for, id_of, to_minor
from warehouse.tables.orders import order_effects, order_esims, unclaimed_esims
from warehouse.types import now_utc

log = logging.getLogger("storehouse.commerce.effects")
MAX_ATTEMPTS = 8
STOREFRONT_PAUSED_RETRY_S = 600.0


class Skip(Exception):
    """The effect cannot apply to this shop (no email or Slack connection): recorded, not retried."""


class Permanent(Exception):
    """Retrying cannot help (the receiver refused the request itself)."""


class EffectsService:
    def __init__(self, engine: sa.Engine, settings: CommerceSettings, storefronts: StorefrontDirectory, tokens: OrderTokens,
                 heartbeat: Heartbeat, emails: EmailClients) -> None:
        self.engine, self.settings, self.storefronts, self.tokens = engine, settings, storefronts, tokens
        self.heartbeat, self.emails = heartbeat, emails
        self.table = LeasedTable(engine, order_effects, open_state="pending", counter="attempts")
        self.handlers: dict[str, Callable[[Storefront, dict[str, Any]], str]] = {
            "email_ready": self._email_ready, "email_apology": self._email_apology, "refund": self._refund,
            "slack_provisioned": self._slack, "slack_failed": self._slack, "slack_stuck": self._slack,
            "slack_unclaimed": self._slack_unclaimed,
        }

    def run_due(self, limit: int = 4, tenant_id: str | None = None) -> list[str]:
        leases = self.table.claim(self.settings.lease_s, limit, tenant_id=tenant_id)
        return [self.run(lease) for lease in leases]

    def run(self, lease: Lease) -> str:
        tenant_id, order_id, kind = lease.key
        with self.heartbeat.hold(self.table, lease):
            storefront = self.storefronts.get(tenant_id)
            with self.engine.connect() as conn:
                order = states.load(conn, tenant_id, order_id)
                tries = conn.execute(sa.select(order_effects.c.attempts).where(
                    order_effects.c.tenant_id == tenant_id, order_effects.c.order_id == order_id,
                    order_effects.c.kind == kind)).scalar_one()
            if storefront is None and order is not None and self.storefronts.paused(tenant_id):  # not removed: wait for it
                self.table.retry_later(lease, STOREFRONT_PAUSED_RETRY_S, "the shop is paused; waiting for it")
                metrics.EFFECTS.labels(kind, "waiting").inc()
                return "waiting"
            try:
                if storefront is None or order is None:
                    raise Skip("shop removed or order gone")
                result = self.handlers[kind](storefront, order)
            except Skip as exc:
                return self._close(lease, "skipped", kind, last_error=str(exc))
            except Permanent as exc:
                log.error("%s for order %s refused: %s", kind, order_id, exc)
                return self._close(lease, "failed", kind, last_error=str(exc)[:1000])
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:1000]
                if tries >= MAX_ATTEMPTS:
                    log.error("%s for order %s gave up after %d attempts: %s", kind, order_id, tries, error)
                    return self._close(lease, "failed", kind, last_error=error)
                self.table.retry_later(lease, min(self.settings.retry_base_s * 2 ** (tries - 1), 600.0), error)
                metrics.EFFECTS.labels(kind, "retry").inc()
                return "retry"
            return self._close(lease, "done", kind, result=result[:255] if result else None, done_at=now_utc())

    def _close(self, lease: Lease, state: str, kind: str, **fields: Any) -> str:
        with self.engine.begin() as conn:
            self.table.finish_in(conn, lease, state, **fields)
        metrics.EFFECTS.labels(kind, state).inc()
        return state

    # -- handlers ---------------------------------------------------------------------------
    def _esims(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        e = order_esims.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(order_esims).where(e.tenant_id == order["tenant_id"],
                                                             e.order_id == order["order_id"]).order_by(e.unit))
            return [dict(r) for r in rows.mappings()]

    def undelivered_amount(self, order: dict[str, Any]) -> Decimal:
        missing = order["quantity"] - len(self._esims(order))
        return order["unit_price"] * missing

    def _send(self, storefront: Storefront, email: Any, key: str) -> str:
        connection = storefront.connection("resend")
        if connection is None:
            raise Skip("shop has no resend connection")
        try:
            return self.emails.get(connection).send(email, key)
        except ProviderError as exc:
            if not exc.retryable and exc.kind == "validation":
                raise Permanent(str(exc)) from None
            raise

    def _order_url(self, order: dict[str, Any]) -> str:
        return self.tokens.order_url(self.settings.public_url, order["tenant_id"], order["order_id"])

    def _email_ready(self, storefront: Storefront, order: dict[str, Any]) -> str:
        # Resend dedupes on this key for 24 h: a repeat after a crash returns the first email's id.
        return self._send(storefront, ready_email(storefront, order, self._esims(order), self._order_url(order)), order["order_id"])

    def _email_apology(self, storefront: Storefront, order: dict[str, Any]) -> str:
        refund_state = self._states(order).get("refund")
        if refund_state == "pending":  # say "refunded" only once it is true: try again after the refund
            raise RuntimeError("the refund has not run yet")
        refund = self.undelivered_amount(order) if refund_state == "done" else Decimal(0)
        email = apology_email(storefront, order, refund, self._order_url(order))
        return self._send(storefront, email, f"{order['order_id']}:apology")

    def _states(self, order: dict[str, Any]) -> dict[str, str]:
        """Each effect of the order and its state (pending, done, skipped, failed)."""
        c = order_effects.c
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(c.kind, c.state).where(c.tenant_id == order["tenant_id"],
                                                                      c.order_id == order["order_id"])).all())

    def _refund(self, storefront: Storefront, order: dict[str, Any]) -> str:
        connection = storefront.connection(STRIPE)
        if connection is None:
            raise Skip("shop has no stripe connection")
        amount = self.undelivered_amount(order)
        if amount <= 0:
            raise Skip("nothing undelivered to refund")
        account = account_for(connection)
        intent = order["stripe_payment_intent_id"]
        if not intent and order["stripe_session_id"]:
            intent = id_of(account.retrieve_session(order["stripe_session_id"]).get("payment_intent"))
        if not intent:
            raise Permanent("order has no PaymentIntent to refund")
        partial = amount < order["amount_total"]
        try:
            refund = account.refund(intent, to_minor(amount, order["currency"]) if partial else None,
                                    f"refund:{order['order_id']}",
                                    {"order_id": order["order_id"], "tenant_id": order["tenant_id"],
                                     "reason": "esim_not_delivered"})
        except stripe.InvalidRequestError as exc:
            if exc.code == "charge_already_refunded":
                return "already refunded"
            raise Permanent(f"Stripe refused the refund: {exc.user_message or exc.code}") from None
        with self.engine.begin() as conn:
            states.raise_refunded(conn, order["tenant_id"], order["order_id"], amount)
        return str(refund.get("id"))

    def _slack(self, storefront: Storefront, order: dict[str, Any]) -> str:
        return self._post_slack(storefront, self._slack_text(storefront, order))

    def _slack_unclaimed(self, storefront: Storefront, order: dict[str, Any]) -> str:
        return self._post_slack(storefront, self._unclaimed_text(storefront, order))

    def _post_slack(self, storefront: Storefront, text: str) -> str:
        connection = storefront.connection("slack")
        if connection is None:
            raise Skip("shop has no slack connection")
        # The platform's convention: a full webhook URL, or the hook's path on the connection's host.
        creds = connection.credentials
        url = creds.get("webhook_url") or (connection.base_url.rstrip("/") + str(creds["hook_path"])
                                           if creds.get("hook_path") else None)
        if not url:
            raise Skip("the slack connection names no hook")
        if not SlackResource(webhook_url=str(url)).post(text):
            raise RuntimeError("Slack did not accept the notice")
        return "posted"

    def _slack_text(self, storefront: Storefront, order: dict[str, Any]) -> str:
        where = f"{storefront.name}: order {order['order_id']} ({order['package_name']} ×{order['quantity']}, " \
                f"{order['amount_total']:.2f} {order['currency']})"
        if order["status"] == states.PROVISIONED:
            providers = sorted({e["provider"] for e in self._esims(order)})
            return f":white_check_mark: {where} provisioned via {', '.join(providers)}."
        if order["status"] in (states.FAILED, states.PARTIALLY_PROVISIONED):
            return f":rotating_light: {where} {order['status']}: {order['failure_reason']}. " \
                   f"Refund {'requested' if 'refund' in self._states(order) else 'NOT issued (disabled)'}."
        since = order["paid_at"] or order["status_changed_at"]
        return f":hourglass: {where} is stuck in {order['status']}: paid {since:%Y-%m-%d %H:%M} UTC and still " \
               "without its eSIM; the provider's answer is unknown. Check it by hand."

    def _unclaimed_text(self, storefront: Storefront, order: dict[str, Any]) -> str:
        u = unclaimed_esims.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(unclaimed_esims).where(
                u.tenant_id == order["tenant_id"], u.order_id == order["order_id"]).order_by(u.bought_at)
            ).mappings().all()
        listed = "; ".join(f"{r['provider']} {r['provider_order_id']} (ICCID {r['iccid'] or '?'}, "
                           f"{r['package_name'] or '?'}, bought {r['bought_at']:%Y-%m-%d %H:%M} UTC)" for r in rows)
        return f":warning: {storefront.name}: {len(rows)} eSIM(s) bought from your provider account belong to no order " \
               f"(found while reconciling order {order['order_id']}): {listed}. Paid for and not delivered: " \
               "see unclaimed_esims, and deliver, refund or write each off by hand."
