"""eSIM wholesale providers: one client per provider, built per tenant connection here.

A tenant has one connection row per provider it buys from (system ``esimcard``, ``mobimatter``
or ``airalo``); ``client_for(connection)`` returns the client for it, which speaks that
provider's wire format and answers in the shared models of ``resources.esim.base``. Each provider
module ends with its ``PROVIDER`` (client, wire models, connection, call policy, sandbox, failover
priority); ``ESIM_PROVIDERS`` finds them (by priority), and ``PROVIDERS``, their systems in that
order, is the default failover order. The Dagster resource that builds these clients is
``resources.dagster_resources.EsimProvidersResource``.

Connection options understood by every client: ``page_size``, ``rate_limit_per_s``,
``stock_feed_url`` (where the account's stock counts come from; see
``EsimClientBase.stock_levels``) and the catalog's ``margin_pct`` / ``round_to``.
"""

from __future__ import annotations

from typing import Any

from resources.esim.base import (
    AccountEsim, CompletionRefused, EsimProviderClient, MalformedEsim, OutOfStock, ProviderOrderStatus, ProviderPackage,
    ProvisionedEsim,
)
from resources.provider import Provider, discover
from warehouse.tenants import TenantConnection

ESIM_PROVIDERS: tuple[Provider, ...] = discover(__name__)  # by priority: the default failover order
PROVIDERS = tuple(p.system for p in ESIM_PROVIDERS)  # add a provider by adding its module

__all__ = [
    "ESIM_PROVIDERS", "PROVIDERS", "AccountEsim", "CompletionRefused", "EsimProviderClient", "MalformedEsim",
    "OutOfStock", "ProviderOrderStatus", "ProviderPackage", "ProvisionedEsim", "client_for",
]


def client_for(connection: TenantConnection, **overrides: Any) -> EsimProviderClient:
    """The client for ``connection`` (its ``system`` is one of ``PROVIDERS``), with its provider's call
    policy (``overrides`` replace named fields of it; None keeps the provider's); close it after use."""
    provider = next((p for p in ESIM_PROVIDERS if p.system == connection.system), None)
    if provider is None:
        raise ValueError(f"{connection.system!r} is not an eSIM provider (one of {', '.join(PROVIDERS)})")
    return provider.client(connection, policy=provider.policy.with_overrides(**overrides))
