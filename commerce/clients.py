"""Outside clients reused across requests and jobs: eSIM providers and Resend, per tenant account.

Clients hold HTTP connection pools (and, for bearer providers, tokens), so building one per call
would pay a handshake and a login each time. Entries are keyed by the connection's credentials,
so a rotated key gets a fresh client; ``close`` shuts them all down.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Callable

import orjson

from resources.dagster_resources import EsimProvidersResource
from resources.email import ResendClient, resend_client
from resources.esim import EsimProviderClient
from warehouse.tenants import TenantConnection


def _fingerprint(connection: TenantConnection) -> tuple[str, str, str, str]:
    secret = orjson.dumps([connection.credentials, connection.options], option=orjson.OPT_SORT_KEYS, default=str)
    return connection.tenant_id, connection.system, connection.base_url, hashlib.sha256(secret).hexdigest()


class _Pool:
    def __init__(self, build: Callable[[TenantConnection], Any]) -> None:
        self.build = build
        self._clients: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def get(self, connection: TenantConnection) -> Any:
        key = _fingerprint(connection)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self.build(connection)
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


class ProviderClients(_Pool):
    """eSIM provider clients, built by ``EsimProvidersResource`` with the API's timeout and retries."""

    def __init__(self, resource: EsimProvidersResource) -> None:
        super().__init__(resource.client_for)

    def get(self, connection: TenantConnection) -> EsimProviderClient:
        return super().get(connection)


class EmailClients(_Pool):
    def __init__(self) -> None:
        super().__init__(resend_client)

    def get(self, connection: TenantConnection) -> ResendClient:
        return super().get(connection)
