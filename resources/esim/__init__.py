"""eSIM wholesale providers: one client per provider, one resource that builds them per tenant.

A tenant has one connection row per provider it buys from (system ``esimcard``, ``mobimatter``
or ``airalo``); ``EsimProvidersResource.client_for(connection)`` returns the client for it,
which speaks that provider's wire format and answers in the shared models of
``resources.esim.base``. ``PROVIDERS`` is also the default failover priority.

Connection options understood by every client: ``page_size``, ``rate_limit_per_s``,
``stock_feed_url`` (where the account's stock counts come from; see
``EsimClientBase.stock_levels``) and the catalogue's ``margin_pct`` / ``round_to``.
"""

from __future__ import annotations

import dagster as dg

from resources.esim.airalo import AiraloClient
from resources.esim.base import (
    AccountEsim, CompletionRefused, EsimProviderClient, MalformedEsim, OutOfStock, ProviderOrderStatus, ProviderPackage,
    ProvisionedEsim,
)
from resources.esim.esimcard import EsimCardClient
from resources.esim.mobimatter import MobiMatterClient
from resources.http import RetryPolicy
from warehouse.tenants import TenantConnection

PROVIDERS = ("esimcard", "mobimatter", "airalo")  # default failover priority
CLIENTS = {"esimcard": EsimCardClient, "mobimatter": MobiMatterClient, "airalo": AiraloClient}

__all__ = [
    "PROVIDERS", "AccountEsim", "CompletionRefused", "EsimProvidersResource", "EsimProviderClient", "MalformedEsim",
    "OutOfStock", "ProviderOrderStatus", "ProviderPackage", "ProvisionedEsim",
]


class EsimProvidersResource(dg.ConfigurableResource):
    """Builds a tenant's client for one eSIM provider, with our timeout and retry policy."""

    timeout_s: float = 10.0
    max_attempts: int = 3
    backoff_base_s: float = 0.2

    def client_for(self, connection: TenantConnection) -> EsimProviderClient:
        """The client for ``connection`` (its ``system`` is one of ``PROVIDERS``); close it after use."""
        client_class = CLIENTS.get(connection.system)
        if client_class is None:
            raise ValueError(f"{connection.system!r} is not an eSIM provider (one of {', '.join(PROVIDERS)})")
        retry = RetryPolicy(attempts=self.max_attempts, backoff_base=self.backoff_base_s)
        return client_class(connection, timeout=self.timeout_s, retry=retry)
