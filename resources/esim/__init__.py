"""eSIM wholesale providers: one client per provider, one resource that builds them per tenant.

A tenant has one connection row per provider it buys from (system ``esimcard``, ``mobimatter``
or ``airalo``); ``EsimProvidersResource.client_for(connection)`` returns the client for it,
which speaks that provider's wire format and answers in the shared models of
``resources.esim.base``. Each provider module ends with its ``PROVIDER`` (client, wire models,
connection, call policy, sandbox, failover priority); ``ESIM_PROVIDERS`` finds them, and
``PROVIDERS`` (also the default failover priority) and ``CLIENTS`` are derived from it.

Connection options understood by every client: ``page_size``, ``rate_limit_per_s``,
``stock_feed_url`` (where the account's stock counts come from; see
``EsimClientBase.stock_levels``) and the catalog's ``margin_pct`` / ``round_to``.
"""

from __future__ import annotations

import dagster as dg

from resources.esim.base import (
    AccountEsim, CompletionRefused, EsimProviderClient, MalformedEsim, OutOfStock, ProviderOrderStatus, ProviderPackage,
    ProvisionedEsim,
)
from resources.provider import Provider, discover
from warehouse.tenants import TenantConnection

ESIM_PROVIDERS: tuple[Provider, ...] = discover(__name__)  # by priority: the default failover order
# Derived from ESIM_PROVIDERS (kept for their readers): add a provider by adding its module.
PROVIDERS = tuple(p.system for p in ESIM_PROVIDERS)
CLIENTS = {p.system: p.client for p in ESIM_PROVIDERS}

__all__ = [
    "ESIM_PROVIDERS", "PROVIDERS", "AccountEsim", "CompletionRefused", "EsimProvidersResource", "EsimProviderClient", "MalformedEsim",
    "OutOfStock", "ProviderOrderStatus", "ProviderPackage", "ProvisionedEsim",
]


class EsimProvidersResource(dg.ConfigurableResource):
    """Builds a tenant's client for one eSIM provider, with its provider's call policy (timeout,
    attempts and backoff overridden where set here)."""

    timeout_s: float | None = None
    max_attempts: int | None = None
    backoff_base_s: float | None = None
    retry_window_s: float | None = None  # set where clients outlive a run (the API's pool renews the budget)

    def client_for(self, connection: TenantConnection) -> EsimProviderClient:
        """The client for ``connection`` (its ``system`` is one of ``PROVIDERS``); close it after use."""
        provider = next((p for p in ESIM_PROVIDERS if p.system == connection.system), None)
        if provider is None:
            raise ValueError(f"{connection.system!r} is not an eSIM provider (one of {', '.join(PROVIDERS)})")
        policy = provider.policy.with_overrides(timeout_s=self.timeout_s, attempts=self.max_attempts,
                                                backoff_base_s=self.backoff_base_s, retry_window_s=self.retry_window_s)
        return provider.client(connection, policy=policy)
