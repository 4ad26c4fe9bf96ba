"""Per-order access tokens: what lets a customer (and only them) read their order and eSIM.

A token is the HMAC-SHA256 of ``tenant:order_id`` under the API's secret key, so nothing
secret is stored next to the order (an analyst reading ``orders`` cannot forge a link) and an
idempotent checkout retry hands back the very same token. Without ``STOREHOUSE_SHOP_SECRET_KEY``
the key is generated once into ``STOREHOUSE_HOME/api_secret`` (mode 0600) and shared by every
worker process on the machine: right for the embedded default, a trap for a PostgreSQL
deployment, where every API host and every Dagster run worker must sign with the same key (a
link emailed by the hourly job must open on the API), hence the warning.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path

from commerce.settings import CommerceSettings

log = logging.getLogger("storehouse.commerce.tokens")


def load_secret(settings: CommerceSettings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = (settings.home / "api_secret").resolve()
    if not settings.warehouse_url.startswith("sqlite"):
        log.warning("STOREHOUSE_SHOP_SECRET_KEY is not set: order links are signed with this machine's key "
                    "file %s; set the variable so every API host and Dagster worker signs alike", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of several workers starting at once exactly one writes the key; the rest read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return _read(path)


def _read(path: Path) -> bytes:
    for _ in range(50):  # a concurrent creator may not have written yet
        value = path.read_text().strip()
        if value:
            return value.encode()
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty; delete it or set STOREHOUSE_SHOP_SECRET_KEY")


class OrderTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def issue(self, tenant_id: str, order_id: str) -> str:
        digest = hmac.new(self._secret, f"{tenant_id}:{order_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def order_url(self, public_url: str, tenant_id: str, order_id: str) -> str:
        """The customer's link to their order (what emails and checkout answers carry)."""
        return f"{public_url}/shops/{tenant_id}/orders/{order_id}?token={self.issue(tenant_id, order_id)}"

    def check(self, tenant_id: str, order_id: str, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.issue(tenant_id, order_id).encode(), token.encode())
