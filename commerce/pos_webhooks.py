"""POS webhooks: authenticate each delivery, read what the event names, record it once.

What each POS sends (signed or not, the header, the body fields, the topics that change stock,
where its account is named) is stated in its module's ``PROVIDER.webhook``; the rules below are
the same for all.

Shopify signs: ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body keyed with
the app secret, compared in constant time; a Shopify connection without that secret refuses
every delivery. Treez, Dutchie, Blaze, Flowhub and COVA document no signature, so their
deliveries must carry the connection's URL token (``commerce.webhook_tokens``); a connection with no
token issued refuses them all. When such a connection also holds a ``webhook_secret``, the POS
echoes it in a header (``authorization``, or ``key`` for Flowhub) and that must match too.

Only accepted deliveries are stored (a re-delivery only counts); a refused one writes nothing,
so a flood of forgeries cannot fill the table or queue refreshes: the route counts refusals in
metrics. Even an accepted event is only a hint: the refresh it triggers reads the provider's
API, never the event's body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from commerce import webhook_tokens
from resources.providers import webhook_pos
from warehouse.tables.pos_events import (
    REFRESH_NOT_NEEDED,
    REFRESH_PENDING,
    pos_webhook_events,
)
from warehouse.tenants import TenantConnection
from warehouse.types import now_utc

log = logging.getLogger("storehouse.commerce.pos_webhooks")
# Each POS states its webhook facts in its own module (``PROVIDER.webhook``: secret header, body
# fields, inventory topics, account keys); this maps the systems that send webhooks to them.
WEBHOOKS = {p.system: p.webhook for p in webhook_pos()}


@dataclass(frozen=True)
class Verdict:
    """Outcome of the signature check: ``signature`` is valid, invalid, missing or unsigned (no
    secret to check against)."""

    signature: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.signature in ("valid", "unsigned")


@dataclass(frozen=True)
class PosEvent:
    """What a delivery says, read without trusting it for data."""

    event_id: str
    topic: str | None
    account: str | None
    payload: Any

    def affects_inventory(self, provider: str) -> bool:
        return self.topic in WEBHOOKS[provider].inventory_topics


@dataclass(frozen=True)
class Recorded:
    id: int
    duplicate: bool
    deliveries: int


def shopify_hmac(secret: str, body: bytes) -> str:
    """The value Shopify puts in ``X-Shopify-Hmac-Sha256`` for ``body``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_secret(provider: str, connection: TenantConnection) -> str | None:
    """The tenant's secret for this provider's hooks (Shopify falls back to the app secret)."""
    creds = connection.credentials
    names = ("webhook_secret", "api_secret", "client_secret") if provider == "shopify" else ("webhook_secret",)
    return next((str(creds[n]) for n in names if creds.get(n)), None)


def verify(provider: str, body: bytes, headers: Mapping[str, str], secret: str | None) -> Verdict:
    """Check a delivery's signature (or shared secret) against the tenant's secret."""
    if provider == "shopify":
        given = headers.get("x-shopify-hmac-sha256")
        if not given:
            return Verdict("missing", "X-Shopify-Hmac-Sha256 header is missing")
        if not secret:
            return Verdict("invalid", "no Shopify app secret is configured for this tenant")
        expected = shopify_hmac(secret, body)
        if hmac.compare_digest(given.strip().encode(), expected.encode()):
            return Verdict("valid")
        return Verdict("invalid", "X-Shopify-Hmac-Sha256 does not match the body")
    if not secret:
        return Verdict("unsigned")
    header = WEBHOOKS[provider].secret_header
    given = headers.get(header)
    if not given:
        return Verdict("missing", f"{header} header with the webhook secret is missing")
    if hmac.compare_digest(given.strip().encode(), secret.encode()):
        return Verdict("valid")
    return Verdict("invalid", f"{header} header does not match the webhook secret")


def body_event_id(body: bytes) -> str:
    """The id of a delivery whose provider sends none: re-deliveries carry the same bytes."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse(provider: str, body: bytes, headers: Mapping[str, str]) -> PosEvent:
    """Read topic, account and id from a delivery; raises ``ValueError`` when it is not JSON."""
    # JSONB cannot hold NUL: a signed body is kept whole, with that one character replaced
    payload = orjson.loads(body.replace(b"\\u0000", b"\\ufffd"))
    if provider == "shopify":
        event_id = headers.get("x-shopify-webhook-id") or body_event_id(body)
        return PosEvent(event_id[:128], _clip(headers.get("x-shopify-topic"), 64),
                        _clip(headers.get("x-shopify-shop-domain"), 128), payload)
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")
    hook = WEBHOOKS[provider]
    topic, account = payload.get(hook.topic_field), payload.get(hook.account_field)
    return PosEvent(body_event_id(body), None if topic is None else str(topic)[:64],
                    None if account is None else str(account)[:128], payload)


def account_mismatch(provider: str, event: PosEvent, connection: TenantConnection) -> str | None:
    """Why the event cannot belong to this tenant's account, or None when it can (or we cannot tell)."""
    where = {**connection.options, **connection.credentials}
    expected: set[str] = set()
    for key in WEBHOOKS[provider].account_keys:
        value = where.get(key)
        if value is not None:
            expected.update(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    if provider == "shopify":
        expected |= {f"{s}.myshopify.com" for s in expected}
        host = urlparse(connection.base_url).hostname or ""
        if host.endswith(".myshopify.com"):  # production base URLs name the shop
            expected.add(host)
    if not expected or event.account is None or event.account in expected:
        return None
    return f"event names account {event.account!r}, not this tenant's"


def record(
    conn: sa.Connection, tenant_id: str, provider: str, *, event_id: str, status: str, signature: str,
    topic: str | None = None, account: str | None = None, payload: Any = None, reason: str | None = None,
    affects_inventory: bool = False,
) -> Recorded:
    """Insert the delivery once per (tenant, provider, event id, status); a re-delivery only counts."""
    t = pos_webhook_events
    now = now_utc()
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(t).values(
        tenant_id=tenant_id, provider=provider, event_id=event_id, status=status, signature=signature,
        topic=topic, account=account, payload=payload, reason=reason, deliveries=1, received_at=now,
        last_received_at=now, refresh=REFRESH_PENDING if status == "accepted" and affects_inventory else REFRESH_NOT_NEEDED,
    )
    stmt = insert.on_conflict_do_update(
        index_elements=[t.c.tenant_id, t.c.provider, t.c.event_id, t.c.status],
        set_={"deliveries": t.c.deliveries + 1, "last_received_at": now},
    ).returning(t.c.id, t.c.deliveries)
    row = conn.execute(stmt).one()
    return Recorded(id=row.id, duplicate=row.deliveries > 1, deliveries=row.deliveries)


@dataclass(frozen=True)
class Outcome:
    """What the route answers: HTTP status, a problem kind when refused, and what was recorded."""

    status: int
    kind: str
    detail: str | None = None
    event_id: str | None = None
    duplicate: bool = False
    refresh: bool = False


def authenticate(conn: sa.Connection, provider: str, connection: TenantConnection, body: bytes,
                 headers: Mapping[str, str], url_token: str | None) -> Outcome | str:
    """The ``signature`` to record for a genuine delivery, or the refusal for any other."""
    secret = webhook_secret(provider, connection)
    if provider in webhook_tokens.SIGNED:
        if not secret:
            return Outcome(403, "webhook-not-configured", f"This shop keeps no {provider} webhook secret, "
                           "so no delivery can be verified: all are refused.")
        verdict = verify(provider, body, headers, secret)
        return verdict.signature if verdict.ok else Outcome(401, "invalid-signature", verdict.reason)
    stored = webhook_tokens.issued(conn, connection.tenant_id, provider)
    if stored is None:
        return Outcome(403, "webhook-not-configured", f"This shop has no {provider} webhook URL token issued, "
                       "so no delivery can be trusted: all are refused.")
    if not webhook_tokens.matches(stored, url_token):
        return Outcome(401, "invalid-webhook-token", "The webhook URL's token is missing or wrong.")
    verdict = verify(provider, body, headers, secret)
    if not verdict.ok:
        return Outcome(401, "invalid-signature", verdict.reason)
    return "valid" if verdict.signature == "valid" else "token"


def receive(engine: sa.Engine, provider: str, connection: TenantConnection, body: bytes,
            headers: Mapping[str, str], url_token: str | None = None) -> Outcome:
    """Authenticate, parse and record one delivery for the connection's tenant; a refusal records nothing."""
    with engine.begin() as conn:
        signature = authenticate(conn, provider, connection, body, headers, url_token)
        if isinstance(signature, Outcome):
            return signature
        try:
            event = parse(provider, body, headers)
        except ValueError as exc:
            return _odd(connection, Outcome(400, "malformed-event", f"body is not a JSON event: {exc}"[:300],
                                            body_event_id(body)))
        mismatch = account_mismatch(provider, event, connection)
        if mismatch:
            return _odd(connection, Outcome(400, "wrong-account", mismatch, event.event_id))
        affects = event.affects_inventory(provider)
        recorded = record(conn, connection.tenant_id, provider, event_id=event.event_id, status="accepted",
                          signature=signature, topic=event.topic, account=event.account,
                          payload=event.payload, affects_inventory=affects)
    return Outcome(200, "duplicate" if recorded.duplicate else "accepted", event_id=event.event_id,
                   duplicate=recorded.duplicate, refresh=affects)


def setup_note(conn: sa.Connection, connection: TenantConnection, public_url: str) -> str | None:
    """What the operator must register with the POS for this connection, said when it is set up.

    A POS that does not sign gets its URL token now if it has none; the token is in this text
    and nowhere else, so it is the one time it can be shown.
    """
    tenant_id, provider = connection.tenant_id, connection.system
    if provider in webhook_tokens.UNSIGNED:
        token = webhook_tokens.ensure(conn, tenant_id, provider)
        if token is None:
            return (f"{provider} webhook URL: its token was issued before and is kept (shown only then); "
                    f"`storehouse tenants webhook-url {tenant_id} {provider}` issues a new one")
        return (f"{provider} webhook URL (register it with {provider}; it is shown this once): "
                f"{webhook_tokens.webhook_url(public_url, tenant_id, provider, token)}")
    if provider in webhook_tokens.SIGNED:
        url = webhook_tokens.webhook_url(public_url, tenant_id, provider)
        if webhook_secret(provider, connection) is None:
            return f"{provider} webhook URL {url} refuses every delivery until the connection has its webhook_secret"
        return f"{provider} webhook URL: {url}"
    return None


def _odd(connection: TenantConnection, outcome: Outcome) -> Outcome:
    """An authenticated delivery refused: worth a line in the log, since it came from the POS itself
    (anonymous refusals are only counted: a flood of them must not flood the log either)."""
    log.warning("%s webhook for %s refused (%s): %s", connection.system, connection.tenant_id, outcome.kind,
                outcome.detail)
    return outcome


def _clip(value: str | None, size: int) -> str | None:
    """Header values sized to their columns: a caller's overlong header must not become a 500."""
    return value[:size] if value else None
