"""The providers' Dagster resources: configuration for building clients inside Dagster runs.

Each is a thin ``ConfigurableResource`` over a plain factory in the provider's own module
(``resources.mx_merchant.client_for``, ``resources.pos.client_for``, ``resources.esim.client_for``,
``resources.slack.post``), so the provider modules, the registry
(``resources.providers``) and the sync engine (``syncing``) never import Dagster
(``tests/test_layout.py`` checks it). The warehouse's resource is ``resources.warehouse.WarehouseResource``. The fields set here override named fields of the provider's
``CallPolicy``; unset (None), the provider's own applies.
"""

from __future__ import annotations

import dagster as dg

from resources import esim, mx_merchant, pos, slack
from resources.esim import EsimProviderClient
from resources.mx_merchant import MxMerchantClient
from resources.pos import PosClient
from warehouse.tenants import TenantConnection


class MxMerchantResource(dg.ConfigurableResource):
    """Builds an MX Merchant client for a tenant's connection, with MX's call policy (timeout,
    attempts, backoff and rate limit overridden where set here)."""

    timeout_s: float | None = None
    max_attempts: int | None = None
    backoff_base_s: float | None = None
    detail_concurrency: int = 8
    rate_limit_per_s: float | None = None

    def client_for(self, connection: TenantConnection) -> MxMerchantClient:
        return mx_merchant.client_for(connection, detail_concurrency=self.detail_concurrency,
                                      timeout_s=self.timeout_s, attempts=self.max_attempts,
                                      backoff_base_s=self.backoff_base_s, rate_limit_per_s=self.rate_limit_per_s)


class PosClientsResource(dg.ConfigurableResource):
    """Builds the client for a tenant's POS (or Portaus) connection, with its provider's call policy.

    ``timeout_s``, ``max_attempts``, ``backoff_base_s`` and ``max_connections`` override the
    provider's policy when set (tests and the API's order path use shorter ones); unset, each
    provider's own applies. The breaker settings are read by the POS assets (one breaker per
    provider per tenant).
    """

    timeout_s: float | None = None
    max_attempts: int | None = None
    backoff_base_s: float | None = None
    max_connections: int | None = None
    breaker_failure_threshold: int = 3
    breaker_reset_s: float = 300.0

    def client_for(self, connection: TenantConnection) -> PosClient:
        return pos.client_for(connection, timeout_s=self.timeout_s, attempts=self.max_attempts,
                              backoff_base_s=self.backoff_base_s, max_connections=self.max_connections)


class EsimProvidersResource(dg.ConfigurableResource):
    """Builds a tenant's client for one eSIM provider, with its provider's call policy (timeout,
    attempts, backoff and retry window overridden where set here)."""

    timeout_s: float | None = None
    max_attempts: int | None = None
    backoff_base_s: float | None = None
    retry_window_s: float | None = None  # set where clients outlive a run (the API's pool renews the budget)

    def client_for(self, connection: TenantConnection) -> EsimProviderClient:
        """The client for ``connection`` (its ``system`` is one of ``resources.esim.PROVIDERS``); close it after use."""
        return esim.client_for(connection, timeout_s=self.timeout_s, attempts=self.max_attempts,
                               backoff_base_s=self.backoff_base_s, retry_window_s=self.retry_window_s)


class SlackResource(dg.ConfigurableResource):
    """Posts ``{text}`` to an incoming-webhook URL (``resources.slack.post``; the URL is never logged)."""

    webhook_url: str | None = None
    timeout_s: float = 5.0

    def post(self, text: str) -> bool:
        return slack.post(self.webhook_url, text, self.timeout_s)
