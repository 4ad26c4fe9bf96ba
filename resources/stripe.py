"""Stripe per tenant: the official SDK pointed at the tenant's base address, and webhook checks.

Each tenant's ``stripe`` connection holds its own secret key (``credentials.secret_key``) and
webhook signing secret(s) (``credentials.webhook_secret``, a string or a list while a secret is
being rotated); ``base_url`` is ``https://api.stripe.com`` in production and the sandbox's
``…/stripe`` by default. Nothing here logs or returns a secret.

Webhooks are verified on the raw bytes with the SDK's ``WebhookSignature`` (several ``v1``
values, 300 s tolerance either way), then parsed with orjson into plain dicts: handlers never touch SDK
``StripeObject``s, whose dict behaviour changed between major versions.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import stripe
from stripe import SignatureVerificationError, WebhookSignature  # bound once: stripe.X is a lazy lookup each time

from resources.connection import ConnectionSpec, Credentials, Options
from resources.http import CallPolicy
from resources.provider import Provider
from warehouse.tenants import TenantConnection

SYSTEM = "stripe"
# Stripe's own SDK makes the calls (not our HttpSession): 20 s per call, 3 attempts (its
# max_network_retries=2, idempotency keys on every create); account_for's defaults are these.
POLICY = CallPolicy(timeout_s=20.0, attempts=3)
DEFAULT_TOLERANCE_S = 300
# Stripe amounts are in the currency's minor unit; these currencies have none.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
                          "vuv", "xaf", "xof", "xpf"})


class SignatureRejected(Exception):
    """The ``Stripe-Signature`` header is missing or matches none of the tenant's secrets."""


class SignatureStale(SignatureRejected):
    """The signature matches but its timestamp is older than the tolerance (a replay)."""


class EventMalformed(Exception):
    """A correctly signed body that is not a Stripe event."""


def to_minor(amount: Decimal, currency: str) -> int:
    """``Decimal`` money to Stripe's integer minor units (cents, or whole yen)."""
    exponent = Decimal(1) if currency.lower() in ZERO_DECIMAL else Decimal(100)
    return int((amount * exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(amount) if currency.lower() in ZERO_DECIMAL else (Decimal(amount) / 100).quantize(Decimal("0.01"))


def webhook_secrets(connection: TenantConnection) -> tuple[str, ...]:
    value = connection.credentials.get("webhook_secret") or ()
    values = [value] if isinstance(value, str) else list(value)
    return tuple(v for v in values if v)


def verify_signature(payload: bytes, header: str | None, secrets: tuple[str, ...],
                     tolerance: int = DEFAULT_TOLERANCE_S) -> None:
    """Raise unless ``header`` signs ``payload`` with one of ``secrets`` within ``tolerance`` seconds."""
    if not header:
        raise SignatureRejected("Stripe-Signature header is missing")
    if not secrets:
        raise SignatureRejected("no webhook secret is configured for this shop")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureRejected("body is not UTF-8, so Stripe did not sign it") from None
    for secret in secrets:
        try:
            # The signature without the clock (one HMAC), so a stale but genuine delivery is told apart.
            WebhookSignature.verify_header(payload, header, secret, tolerance=None)
        except SignatureVerificationError:
            continue
        # Then the clock, on the timestamp the SDK has just accepted, both ways: the SDK's own
        # tolerance check only looks back, and a timestamp ahead of our clock is as suspect.
        signed_at, now = _signed_at(header), time.time()
        if tolerance and signed_at < now - tolerance:  # as the SDK: no tolerance, no age limit
            raise SignatureStale(f"signature timestamp is older than {tolerance} s")
        if signed_at > now + tolerance:
            raise SignatureStale(f"signature timestamp is more than {tolerance} s in the future")
        return
    raise SignatureRejected("Stripe-Signature does not match the body")


def _signed_at(header: str) -> int:
    """The ``t=`` of a header the SDK has already accepted, read as the SDK reads it (the first ``t``,
    its value up to any second ``=``)."""
    return int(next(item.split("=", 2)[1] for item in header.split(",") if item.split("=", 2)[0] == "t"))


def parse_event(payload: bytes) -> dict[str, Any]:
    """The event as plain dicts; raises ``EventMalformed`` when it is not one."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise EventMalformed("body is not JSON") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise EventMalformed("body is not a Stripe event")
    if not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise EventMalformed("event has no id or type")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise EventMalformed("event has no data.object")
    return event


def id_of(value: Any) -> str | None:
    """The id an id-or-object field names (``latest_charge``, ``payment_intent``, ``customer``, …):
    Stripe sends the id unless asked to expand it, and other Stripe-compatible servers may always
    send the object. Anything else (absent, null, a number) names nothing."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def plain(obj: Any) -> dict[str, Any]:
    """An SDK object as plain dicts and lists."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


@dataclass(frozen=True)
class StripeAccount:
    """One tenant's Stripe: API calls with its key, webhook checks with its secrets."""

    tenant_id: str
    client: stripe.StripeClient = field(repr=False)
    webhook_secrets: tuple[str, ...] = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)

    def verify(self, payload: bytes, header: str | None, tolerance: int = DEFAULT_TOLERANCE_S) -> None:
        verify_signature(payload, header, self.webhook_secrets, tolerance)

    def create_checkout_session(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Create a Checkout Session; the same key returns the same session (Stripe replays it)."""
        # The raw request: the same retries, timeout and errors as ``sessions.create``, without turning
        # the JSON into ``StripeObject``s only to turn them back into dicts (a tenth of a checkout's CPU).
        response = self.client.raw_request("post", "/v1/checkout/sessions", **params,
                                           idempotency_key=idempotency_key)
        return response.data

    def retrieve_session(self, session_id: str) -> dict[str, Any]:
        return plain(self.client.v1.checkout.sessions.retrieve(session_id))

    def refund(self, payment_intent: str, amount: int | None, idempotency_key: str,
               metadata: dict[str, str]) -> dict[str, Any]:
        params: dict[str, Any] = {"payment_intent": payment_intent, "metadata": metadata,
                                  "reason": "requested_by_customer"}
        if amount is not None:
            params["amount"] = amount
        return plain(self.client.v1.refunds.create(params=params, options={"idempotency_key": idempotency_key}))


_cache: dict[tuple[str, str, str], StripeAccount] = {}
_lock = threading.Lock()


def account_for(connection: TenantConnection, *, timeout_s: float | None = None, retries: int | None = None
                ) -> StripeAccount:
    """The tenant's ``StripeAccount``, cached per process by (tenant, base address, key digest)."""
    key = str(connection.credentials.get("secret_key") or "")
    if not key:
        raise ValueError(f"tenant {connection.tenant_id} has no Stripe secret_key")
    cache_key = (connection.tenant_id, connection.base_url, hashlib.sha256(key.encode()).hexdigest())
    with _lock:
        account = _cache.get(cache_key)
        secrets = webhook_secrets(connection)
        if account is None or account.webhook_secrets != secrets or account.options != connection.options:
            client = stripe.StripeClient(
                key,
                base_addresses={"api": connection.base_url.rstrip("/")},
                max_network_retries=POLICY.attempts - 1 if retries is None else retries,
                # httpx like every other client here; it reads proxy settings once, not on every call.
                http_client=stripe.HTTPXClient(timeout=timeout_s or POLICY.timeout_s, allow_sync_methods=True),
            )
            account = _cache[cache_key] = StripeAccount(connection.tenant_id, client, secrets,
                                                        dict(connection.options))
        return account


class StripeCredentials(Credentials):
    secret_key: str
    webhook_secret: str | list[str] | None = None  # several while an endpoint's secret is rolled


class StripeOptions(Options):
    refund_on_failure: bool | None = None
    order_page_url: str | None = None  # the shop's own order page: {order_id} and {token} are filled in


CONNECTION = ConnectionSpec(SYSTEM, StripeCredentials, StripeOptions)


PROVIDER = Provider(system=SYSTEM, kind="payments", connection=CONNECTION, policy=POLICY, sandbox="stripe",
                    client=account_for,
                    rate_limit_scope="Stripe's limits are per account and answered with 429s its SDK retries")
