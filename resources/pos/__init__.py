"""POS and Portaus clients: one per system, built for a tenant's connection by one resource.

``PosClientsResource.client_for(connection)`` picks the client by ``connection.system``. The
call policy (timeouts, attempts, backoff) is the resource's; account-specific settings (page
sizes, locations, rate limits) come from the connection's options. Every client exposes its
``session`` (the one ``HttpSession``, with auth already wired) so order submission modules can
reuse the same account, token cache and limits.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from resources.connection import ConnectionConfigError
from resources.http import RetryPolicy
from resources.pos.base import CUSTOMERS, INVENTORY, POS_SYSTEMS, PRODUCTS, PosClient
from resources.pos.blaze import blaze_client
from resources.pos.cova import cova_client
from resources.pos.dutchie import dutchie_client
from resources.pos.flowhub import flowhub_client
from resources.pos.portaus import PortausClient, portaus_client
from resources.pos.shopify import shopify_client
from resources.pos.treez import treez_client
from warehouse.tenants import TenantConnection

FACTORIES: dict[str, Callable[..., PosClient]] = {
    "treez": treez_client,
    "dutchie": dutchie_client,
    "blaze": blaze_client,
    "flowhub": flowhub_client,
    "cova": cova_client,
    "shopify": shopify_client,
    "portaus": portaus_client,
}
assert set(FACTORIES) == set(POS_SYSTEMS)


class PosClientsResource(dg.ConfigurableResource):
    """Builds the client for a tenant's POS (or Portaus) connection, with our call policy.

    The breaker settings are read by the POS assets (one breaker per provider per tenant).
    """

    timeout_s: float = 20.0
    max_attempts: int = 5
    backoff_base_s: float = 0.25
    max_connections: int = 8
    breaker_failure_threshold: int = 3
    breaker_reset_s: float = 300.0

    def client_for(self, connection: TenantConnection) -> PosClient:
        factory = FACTORIES.get(connection.system)
        if factory is None:
            raise ValueError(f"{connection.system!r} is not a POS system ({', '.join(POS_SYSTEMS)})")
        retry = RetryPolicy(attempts=self.max_attempts, backoff_base=self.backoff_base_s)
        if connection.system == "treez":  # no Retry-After on OVER LIMIT; Treez asks for 250-500 ms pauses
            retry.retry_after_floor, retry.backoff_base = 0.25, max(retry.backoff_base, 0.5)
        try:
            return factory(connection.base_url, connection.credentials, connection.options or {},
                           timeout=self.timeout_s, retry=retry, max_connections=self.max_connections)
        except KeyError as exc:  # name the missing setting, never a value
            raise ConnectionConfigError(f"{connection.system} connection is missing {exc.args[0]!r}") from None


__all__ = ["CUSTOMERS", "INVENTORY", "POS_SYSTEMS", "PRODUCTS", "FACTORIES", "PortausClient", "PosClient",
           "PosClientsResource"]
