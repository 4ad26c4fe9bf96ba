"""Everything one process that sells shares: engine, shop directory, services, clients, workers.

Built once by the API's app factory, and by the hourly stuck-orders asset (which runs the very
same provisioning and effects services); closed on shutdown.
"""

from __future__ import annotations

import sqlalchemy as sa

from commerce.checkout import CheckoutService
from commerce.clients import EmailClients, ProviderClients
from commerce.effects import EffectsService
from commerce.leases import Heartbeat
from commerce.provisioning import ProvisioningService
from commerce.settings import CommerceSettings
from commerce.storefronts import StorefrontDirectory
from commerce.tokens import OrderTokens, load_secret
from commerce.webhooks import WebhookService
from commerce.worker import Poller
from resources.dagster_resources import EsimProvidersResource
from resources.warehouse import engine_for
from warehouse.db import LoopTransactions, unwaiting_engine


class Services:
    def __init__(self, settings: CommerceSettings, engine: sa.Engine | None = None,
                 esim: EsimProvidersResource | None = None) -> None:
        self.settings = settings
        self.engine = engine or engine_for(settings.warehouse_url)
        # SQLite: the same file for the API's short transactions on its event loop (None: in threads)
        loop_engine = unwaiting_engine(self.engine)
        self.loop_transactions = LoopTransactions(loop_engine) if loop_engine is not None else None
        self.storefronts = StorefrontDirectory(self.engine, settings.tenant_cache_s, settings.tenant_cache_size)
        self.tokens = OrderTokens(load_secret(settings))
        self.heartbeat = Heartbeat(settings.lease_s)
        self.provider_clients = ProviderClients(esim or EsimProvidersResource(
            timeout_s=settings.provider_timeout_s, max_attempts=settings.provider_attempts,
            retry_window_s=60.0))  # pooled clients outlive any run: their retry budget renews each minute
        self.email_clients = EmailClients()
        self.checkout = CheckoutService(self.engine, settings, self.tokens)
        self.webhooks = WebhookService(self.engine)
        self.effects = EffectsService(self.engine, settings, self.storefronts, self.tokens, self.heartbeat,
                                      self.email_clients)
        self.provisioning = ProvisioningService(self.engine, settings, self.storefronts, self.provider_clients,
                                                self.heartbeat, on_effects=self.wake_effects)
        self._provisioner: Poller | None = None
        self._notifier: Poller | None = None

    def start_workers(self) -> None:
        s = self.settings
        self._provisioner = Poller("provisioning", lambda: len(self.provisioning.run_due()), s.worker_threads,
                                   s.poll_s).start()
        self._notifier = Poller("effects", lambda: len(self.effects.run_due()), 2, s.poll_s).start()

    def wake_provisioning(self) -> None:
        if self._provisioner:
            self._provisioner.wake()

    def wake_effects(self) -> None:
        if self._notifier:
            self._notifier.wake()

    def close(self) -> None:
        for poller in (self._provisioner, self._notifier):
            if poller:
                poller.stop()
        self.heartbeat.close()
        self.provider_clients.close()
        self.email_clients.close()
        if self.loop_transactions is not None:
            self.loop_transactions.close()
