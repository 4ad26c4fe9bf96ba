"""URL tokens for the POS systems that do not sign their webhooks.

Shopify signs every delivery with the app secret; Treez, Dutchie, Blaze, Flowhub and COVA
document no signature, so anyone who knows a shop's webhook URL could post to it. Each of their
connections therefore gets a random token that is part of the URL registered with the POS
(``…/webhooks/pos/{provider}?token=…``). It is shown once, when issued, and stored only as its
SHA-256 (a 256-bit random value needs no slow hash); a new one replaces the old. The token rides
in the ``token`` parameter, which the access log already redacts (``api.logs``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote

import sqlalchemy as sa

from resources.providers import webhook_pos
from warehouse.tables.pos_events import pos_webhook_tokens
from warehouse.upsert import upsert

# Derived from the POS descriptors (``PROVIDER.webhook.signed``):
SIGNED = frozenset(p.system for p in webhook_pos() if p.webhook.signed)  # a webhook secret, never a URL token
UNSIGNED = frozenset(p.system for p in webhook_pos() if not p.webhook.signed)  # these need a URL token


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(conn: sa.Connection, tenant_id: str, provider: str) -> str:
    """A new token for the connection (the old one stops working); returned once, stored hashed."""
    token = secrets.token_urlsafe(32)
    upsert(conn, pos_webhook_tokens, [{"tenant_id": tenant_id, "provider": provider, "token_sha256": digest(token)}])
    return token


def issued(conn: sa.Connection, tenant_id: str, provider: str) -> str | None:
    """The stored hash of the connection's token, or None when none was issued."""
    t = pos_webhook_tokens.c
    return conn.execute(sa.select(t.token_sha256).where(t.tenant_id == tenant_id, t.provider == provider)
                        ).scalar_one_or_none()


def ensure(conn: sa.Connection, tenant_id: str, provider: str) -> str | None:
    """Issue a token when the connection has none; None when one exists (it cannot be shown again)."""
    return None if issued(conn, tenant_id, provider) else issue(conn, tenant_id, provider)


def matches(stored_sha256: str, given: str | None) -> bool:
    """Whether ``given`` is the token whose hash is stored, compared in constant time."""
    return bool(given) and hmac.compare_digest(digest(given).encode(), stored_sha256.encode())


def webhook_url(public_url: str, tenant_id: str, provider: str, token: str | None = None) -> str:
    """The URL to register with the POS for this shop (with its token for a POS that does not sign)."""
    url = f"{public_url.rstrip('/')}/shops/{tenant_id}/webhooks/pos/{provider}"
    return f"{url}?token={quote(token, safe='')}" if token else url
