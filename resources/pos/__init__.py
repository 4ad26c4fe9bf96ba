"""POS and Portaus clients: one module per system, built for a tenant's connection by one resource.

Each module here (``treez.py`` …) ends with its ``PROVIDER`` (``resources.provider.PosProvider``):
client factory, wire models, connection, call policy, order format, webhooks, sandbox and demo.
``POS_PROVIDERS`` finds them; ``POS_SYSTEMS`` and ``FACTORIES`` are derived from it.
``PosClientsResource.client_for(connection)`` builds the client with the provider's call policy
(the resource may override timeout, attempts and backoff) and one retry budget for the run.
Account-specific settings (page sizes, locations, rate limits) come from the connection's
options. Every client exposes its ``session`` (the one ``HttpSession``, with auth already wired)
so order submission modules can reuse the same account, token cache and limits.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from resources.connection import ConnectionConfigError
from resources.pos.base import CUSTOMERS, INVENTORY, PRODUCTS, PosClient
from resources.pos.portaus import PortausClient
from resources.provider import PosProvider, discover
from warehouse.tenants import TenantConnection

POS_PROVIDERS: tuple[PosProvider, ...] = discover(__name__)  # type: ignore[assignment]
BY_SYSTEM: dict[str, PosProvider] = {p.system: p for p in POS_PROVIDERS}
# Derived from POS_PROVIDERS (kept for their readers): add a system by adding its module.
POS_SYSTEMS: tuple[str, ...] = tuple(BY_SYSTEM)
FACTORIES: dict[str, Callable[..., PosClient]] = {p.system: p.client for p in POS_PROVIDERS}


class PosClientsResource(dg.ConfigurableResource):
    """Builds the client for a tenant's POS (or Portaus) connection, with its provider's call policy.

    ``timeout_s``, ``max_attempts`` and ``backoff_base_s`` override the provider's policy when set
    (tests and the API's order path use shorter ones); unset, each provider's own applies. The
    breaker settings are read by the POS assets (one breaker per provider per tenant).
    """

    timeout_s: float | None = None
    max_attempts: int | None = None
    backoff_base_s: float | None = None
    max_connections: int | None = None
    breaker_failure_threshold: int = 3
    breaker_reset_s: float = 300.0

    def client_for(self, connection: TenantConnection) -> PosClient:
        provider = BY_SYSTEM.get(connection.system)
        if provider is None:
            raise ValueError(f"{connection.system!r} is not a POS system ({', '.join(POS_SYSTEMS)})")
        policy = provider.policy.with_overrides(timeout_s=self.timeout_s, attempts=self.max_attempts,
                                                backoff_base_s=self.backoff_base_s,
                                                max_connections=self.max_connections)
        try:
            return provider.client(connection.base_url, connection.credentials, connection.options or {},
                                   policy=policy)
        except KeyError as exc:  # name the missing setting, never a value
            raise ConnectionConfigError(f"{connection.system} connection is missing {exc.args[0]!r}") from None


__all__ = ["CUSTOMERS", "INVENTORY", "POS_PROVIDERS", "POS_SYSTEMS", "PRODUCTS", "FACTORIES", "PortausClient",
           "PosClient", "PosClientsResource"]
