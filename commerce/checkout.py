"""Checkout: validate, create a pending order, open a Stripe Checkout Session that carries it.

The order row is written before Stripe is called, and the session is created with the Stripe
idempotency key ``checkout:<order id>`` and parameters derived only from that row. A request
retried with the same ``Idempotency-Key`` header therefore finds its order and gets the same
session back, whether the first attempt finished, failed at Stripe, or died half way.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
import stripe

from commerce import catalog
from commerce import orders as states
from commerce.errors import Problem
from commerce.settings import CommerceSettings
from commerce.storefronts import Storefront
from commerce.tokens import OrderTokens
from resources.stripe import SYSTEM as STRIPE
from resources.stripe import account_for, to_minor
from warehouse.tables.orders import orders

log = logging.getLogger("storehouse.commerce.checkout")


@dataclass(frozen=True)
class CheckoutResult:
    order: dict[str, Any]
    token: str
    created: bool


# Statements built once, their values bound per call.
_INSERT = sa.insert(orders)
_BY_KEY = sa.select(orders).where(orders.c.tenant_id == sa.bindparam("b_tenant"),
                                  orders.c.idempotency_key == sa.bindparam("b_key"))
_SESSION = (sa.update(orders)
            .where(orders.c.tenant_id == sa.bindparam("s_tenant"), orders.c.order_id == sa.bindparam("s_order"),
                   orders.c.stripe_session_id.is_(None))
            .values(stripe_session_id=sa.bindparam("s_id"), checkout_url=sa.bindparam("s_url")))


def fingerprint(package_id: str, quantity: int, email: str) -> str:
    body = orjson.dumps({"package_id": package_id, "quantity": quantity, "email": email.lower()},
                        option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


def new_order_id() -> str:
    return "ord_" + secrets.token_hex(12)


class CheckoutService:
    def __init__(self, engine: sa.Engine, settings: CommerceSettings, tokens: OrderTokens) -> None:
        self.engine, self.settings, self.tokens = engine, settings, tokens

    def order_url(self, tenant_id: str, order_id: str) -> str:
        return self.tokens.order_url(self.settings.public_url, tenant_id, order_id)

    def create(self, storefront: Storefront, package_id: str, quantity: int, email: str,
               idempotency_key: str | None) -> CheckoutResult:
        if storefront.connection(STRIPE) is None:
            raise Problem(409, "shop-cannot-take-payments", "This shop has no Stripe account connected.")
        if quantity > self.settings.max_quantity:
            raise Problem(422, "quantity-too-large", f"At most {self.settings.max_quantity} eSIMs per order.")
        digest = fingerprint(package_id, quantity, email)
        try:
            # One transaction reads the key and the package and inserts the order: one connection
            # from the pool, not one for the reads and another for the write.
            with self.engine.begin() as conn:
                existing = self._by_key(conn, storefront.tenant_id, idempotency_key) if idempotency_key else None
                if existing is None:
                    row = self._new_order(conn, storefront.tenant_id, package_id, quantity, email,
                                          idempotency_key, digest)
                    conn.execute(_INSERT, row)
        except sa.exc.IntegrityError:
            # The same Idempotency-Key raced us here: the other request's order is the answer.
            if not idempotency_key:
                raise
            with self.engine.connect() as conn:
                existing = self._by_key(conn, storefront.tenant_id, idempotency_key)
            if existing is None:
                raise
            return self._replay(storefront, existing, digest)
        if existing is not None:
            return self._replay(storefront, existing, digest)
        order = {**row, "stripe_session_id": None, "checkout_url": None}
        return CheckoutResult(self._ensure_session(storefront, order, abandon_on_failure=not idempotency_key),
                              self.tokens.issue(storefront.tenant_id, row["order_id"]), created=True)

    def _new_order(self, conn: sa.Connection, tenant_id: str, package_id: str, quantity: int, email: str,
                   idempotency_key: str | None, digest: str) -> dict[str, Any]:
        """The pending order's row, from the package as the shop sells it now; 4xx when it cannot be sold."""
        package = catalog.find(conn, tenant_id, package_id)
        if package is None:
            raise Problem(422, "unknown-package", f"This shop sells no package {package_id!r}.")
        if package.stock_status == catalog.OUT_OF_STOCK:
            raise Problem(409, "out-of-stock", f"{package.name} is out of stock.")
        return {
            "tenant_id": tenant_id, "order_id": new_order_id(), "status": states.PENDING, "email": email,
            "provider": package.provider, "provider_package_id": package.provider_package_id,
            "package_name": package.name, "country_code": package.country_code, "region": package.region,
            "data_mb": package.data_mb, "unlimited": package.unlimited, "validity_days": package.validity_days,
            "quantity": quantity, "unit_price": package.price, "amount_total": package.price * quantity,
            "currency": package.currency.upper(), "amount_refunded": Decimal(0),
            "idempotency_key": idempotency_key, "request_hash": digest,
        }

    @staticmethod
    def _by_key(conn: sa.Connection, tenant_id: str, key: str) -> dict[str, Any] | None:
        row = conn.execute(_BY_KEY, {"b_tenant": tenant_id, "b_key": key}).mappings().one_or_none()
        return dict(row) if row else None

    def _replay(self, storefront: Storefront, order: dict[str, Any], digest: str) -> CheckoutResult:
        if order["request_hash"] != digest:
            raise Problem(422, "idempotency-key-reused",
                          "This Idempotency-Key was already used for a different checkout request.")
        order = self._ensure_session(storefront, order, abandon_on_failure=False)
        return CheckoutResult(order, self.tokens.issue(storefront.tenant_id, order["order_id"]), created=False)

    def session_params(self, order: dict[str, Any]) -> dict[str, Any]:
        """Everything from the order row, so a retried create is byte-for-byte the same request."""
        tenant_id, order_id = order["tenant_id"], order["order_id"]
        token = self.tokens.issue(tenant_id, order_id)
        base = f"{self.settings.public_url}/shops/{tenant_id}/orders/{order_id}"
        metadata = {"order_id": order_id, "tenant_id": tenant_id}
        return {
            "mode": "payment",
            "line_items": [{
                "price_data": {"currency": order["currency"].lower(),
                               "unit_amount": to_minor(order["unit_price"], order["currency"]),
                               "product_data": {"name": order["package_name"],
                                                "metadata": {"provider": order["provider"],
                                                             "provider_package_id": order["provider_package_id"]}}},
                "quantity": order["quantity"],
            }],
            "success_url": f"{base}/return?token={token}&session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{base}?token={token}",
            "customer_email": order["email"],
            "client_reference_id": order_id,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata, "description": order["package_name"]},
        }

    def _ensure_session(self, storefront: Storefront, order: dict[str, Any], *, abandon_on_failure: bool) -> dict[str, Any]:
        if order["stripe_session_id"]:
            return order
        try:
            account = account_for(storefront.connection(STRIPE))
        except ValueError:
            self._abandon(order, "the shop's Stripe connection is incomplete")
            raise Problem(409, "shop-cannot-take-payments", "This shop cannot take payments right now.") from None
        try:
            session = account.create_checkout_session(self.session_params(order), f"checkout:{order['order_id']}")
        except stripe.InvalidRequestError as exc:
            self._abandon(order, f"Stripe refused the session: {exc.user_message or exc.code}")
            raise Problem(422, "checkout-refused", f"Stripe refused this checkout: {exc.user_message}") from None
        except stripe.StripeError as exc:
            log.warning("checkout session for %s not created: %s", order["order_id"], type(exc).__name__)
            if abandon_on_failure:
                self._abandon(order, "Stripe unreachable when the checkout was made")
            raise Problem(502, "payment-provider-unavailable",
                          "Stripe could not be reached; retry with the same Idempotency-Key.",
                          headers={"Retry-After": "2"}) from None
        with self.engine.begin() as conn:
            # Racing retries of one Idempotency-Key got the same session from Stripe: either write is right.
            conn.execute(_SESSION, {"s_tenant": order["tenant_id"], "s_order": order["order_id"],
                                    "s_id": session["id"], "s_url": session.get("url")})
        return {**order, "stripe_session_id": session["id"], "checkout_url": session.get("url")}

    def _abandon(self, order: dict[str, Any], reason: str) -> None:
        """An order that can never be paid leaves ``pending`` rather than linger there."""
        with self.engine.begin() as conn:
            states.move(conn, order["tenant_id"], order["order_id"], states.EXPIRED, (states.PENDING,),
                        failure_reason=reason)
