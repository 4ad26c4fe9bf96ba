"""Provisioning: a paid order's eSIMs from the first healthy provider, exactly once.

One job per paid order, run only under its lease (``leases``). Per eSIM unit the run:

1. resolves attempts a dead or timed-out worker left ``started``/``unknown``: asks the provider
   (``order_status``) by its order id when the attempt has one, else by our reference where the
   provider can be searched by it (Airalo), else in the account's eSIM list (eSIM Card, see
   ``reconcile``); no provider we use dedupes a repeated purchase, so buying again is never the
   lookup. An order created but never completed (MobiMatter) is completed now (``resume``).
   While the outcome stays unknown the job waits and asks again with backoff; nothing is bought
   elsewhere until ``give_up_after_s`` after payment, when the attempt is let go (an order the
   provider created for it is cancelled, ``release``) and the unit fails over to the other
   providers only;
2. tries providers in priority order: an open breaker is skipped without a call, the attempt is
   recorded before the call (and a two-step order's id the moment it exists), retryable
   failures are retried by the client only when provably unserved, and an ambiguous failure is
   checked with the provider before failing over.

The order's final status and its outbox effects (email, Slack, refund) are written in the same
transaction that closes the job, and only while the lease is still ours.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, Callable

import sqlalchemy as sa

from commerce import attempts as rec
from commerce import catalog, metrics, reconcile
from commerce import orders as states
from commerce.breakers import CachedBreakerStore
from commerce.clients import ProviderClients
from commerce.leases import Heartbeat, Lease, LeasedTable
from commerce.settings import CommerceSettings
from commerce.storefronts import Storefront, StorefrontDirectory
from resources.breaker import CircuitBreaker, SqlBreakerStore
from resources.esim import CompletionRefused, ProviderOrderStatus, ProvisionedEsim
from resources.http import ProviderError
from warehouse.tables.orders import provisioning_jobs
from warehouse.tenants import TenantConnection
from warehouse.types import now_utc

log = logging.getLogger("storehouse.commerce.provisioning")
DELIVERED, FAILED = "delivered", "failed"


class Deferred(Exception):
    """A provider's outcome is unknown: wait, then ask again (never buy elsewhere meanwhile)."""


class GaveUp(ProviderError):
    """An attempt whose outcome could not be learnt before the give-up time, let go."""

    kind = "gave_up"


class LeaseLost(Exception):
    """Another worker holds this job now; stop without writing anything more."""


class ProvisioningService:
    def __init__(self, engine: sa.Engine, settings: CommerceSettings, storefronts: StorefrontDirectory, clients: ProviderClients,
                 heartbeat: Heartbeat, on_effects: Callable[[], None] = lambda: None) -> None:
        self.engine, self.settings, self.storefronts, self.clients = engine, settings, storefronts, clients
        self.heartbeat, self.on_effects = heartbeat, on_effects
        self.jobs = LeasedTable(engine, provisioning_jobs, open_state="queued", counter="runs")
        self.breakers = CachedBreakerStore(SqlBreakerStore(engine))
        self.reconciler = reconcile.Reconciler(engine, settings.call_timeout_s)

    def run_due(self, limit: int = 1, tenant_id: str | None = None, order_id: str | None = None) -> list[str]:
        """Claim and run due jobs; returns each run's outcome."""
        key = (tenant_id, order_id) if tenant_id and order_id else None
        leases = self.jobs.claim(self.settings.lease_s, limit, key=key, tenant_id=tenant_id)
        return [self.run(lease) for lease in leases]

    def run(self, lease: Lease) -> str:
        with self.heartbeat.hold(self.jobs, lease):
            try:
                return self._run(lease)
            except LeaseLost:
                log.warning("job %s: lease lost to another worker; stopping", lease.key)
                return "lease_lost"
            except Deferred as exc:
                delay = self._backoff(lease)
                self.jobs.retry_later(lease, delay, str(exc)[:1000])
                return "deferred"
            except Exception as exc:  # a bug or the database: the job is retried, never dropped
                log.exception("job %s failed; retrying later", lease.key)
                self.jobs.retry_later(lease, self._backoff(lease), f"{type(exc).__name__}: {exc}"[:1000])
                return "error"

    def _backoff(self, lease: Lease) -> float:
        with self.engine.connect() as conn:
            runs = conn.execute(sa.select(provisioning_jobs.c.runs).where(
                provisioning_jobs.c.tenant_id == lease.key[0], provisioning_jobs.c.order_id == lease.key[1])
            ).scalar_one_or_none() or 1
        return min(self.settings.retry_base_s * 2 ** (runs - 1), 300.0)

    def _renew(self, conn: sa.Connection, lease: Lease) -> None:
        if self.heartbeat.lost(lease) or not self.jobs.renew_in(conn, lease, self.settings.lease_s):
            raise LeaseLost()

    def _run(self, lease: Lease) -> str:
        tenant_id, order_id = lease.key
        storefront = self.storefronts.get(tenant_id)
        with self.engine.begin() as conn:
            self._renew(conn, lease)
            order = states.load(conn, tenant_id, order_id)
            waiting = order is not None and order["status"] in (states.PAID, states.PROCESSING)
            if storefront is None and waiting and self.storefronts.paused(tenant_id):
                raise Deferred("the shop is paused; its paid order waits for it")
            if storefront is None or not waiting:
                if order is None:
                    why = "order gone"
                else:
                    why = f"order is {order['status']}" if not waiting else "shop removed"
                self.jobs.finish_in(conn, lease, "done", finished_at=now_utc(), last_error=why)
                return "skipped"
            if order["status"] == states.PAID:
                states.move(conn, tenant_id, order_id, states.PROCESSING, (states.PAID,))
            delivered = rec.delivered_units(conn, tenant_id, order_id)
            options = catalog.equivalents(conn, tenant_id, order)
        give_up = rec.past(order["paid_at"], self.settings.give_up_after_s)
        for unit in range(1, order["quantity"] + 1):
            if unit in delivered:
                continue
            if unit > 1 and self._status(order) != states.PROCESSING:
                break  # refunded by the merchant meanwhile: buy nothing more
            self._unit(storefront, order, unit, lease, options, give_up)
        return self._finish(storefront, order, lease)

    def _status(self, order: dict) -> str | None:
        with self.engine.connect() as conn:
            return states.load(conn, order["tenant_id"], order["order_id"])["status"]

    # -- one eSIM ---------------------------------------------------------------------------
    def _unit(self, storefront: Storefront, order: dict, unit: int, lease: Lease, options: dict, give_up: bool) -> str:
        reference = rec.reference_for(order, unit)
        with self.engine.connect() as conn:
            history = rec.for_unit(conn, order, unit)
        waiting = []
        # A provider given up on for this eSIM is not asked again: it may have sold it after all.
        given_up = {a["provider"] for a in history if a["outcome"] == rec.ABANDONED}
        for attempt in (a for a in history if a["outcome"] in rec.UNRESOLVED):
            verdict = self._resolve(storefront, order, unit, attempt, lease)
            if verdict == DELIVERED:
                return DELIVERED
            if verdict in ("unknown", reconcile.SETTLING):
                if give_up and verdict == "unknown":  # an eSIM list not yet worth reading is no answer yet
                    self._abandon(storefront, order, unit, attempt)
                    given_up.add(attempt["provider"])
                else:
                    waiting.append(attempt["provider"])
        if waiting:
            raise Deferred(f"unit {unit}: outcome at {', '.join(waiting)} unknown; asking again later")
        skips: list[dict] = []  # breaker and stock skips ride along with the next write
        try:
            for connection in storefront.providers(self.settings.provider_priority):
                if connection.system in given_up:
                    continue
                if self._try(order, unit, connection, options.get(connection.system), reference, lease,
                             skips) == DELIVERED:
                    return DELIVERED
            return FAILED
        finally:
            if skips:
                with self.engine.begin() as conn:
                    self._write_skips(conn, skips)

    def _abandon(self, storefront: Storefront, order: dict, unit: int, attempt: dict) -> None:
        """Let go of an attempt still unconfirmed at the give-up time, before failing over. An
        order the provider created for it (MobiMatter) is cancelled so it holds no stock; the
        attempt's error says whether that worked."""
        provider, created = attempt["provider"], attempt["provider_order_id"]
        why = "outcome still unknown at the give-up time"
        connection = storefront.connection(provider) if created else None
        if connection is not None:
            try:
                if self.clients.get(connection).release(created, "not completed in time; served elsewhere"):
                    why += f"; its order {created} was cancelled"
            except ProviderError as exc:
                why += f"; its order {created} could not be cancelled ({exc}) and may still hold stock"
        with self.engine.begin() as conn:
            rec.finish(conn, attempt["id"], rec.ABANDONED, error=GaveUp(provider, why))
        log.warning("order %s unit %d: %s %s; failing over", order["order_id"], unit, provider, why)

    def _resolve(self, storefront: Storefront, order: dict, unit: int, attempt: dict, lease: Lease) -> str:
        """What became of an attempt whose answer was lost: delivered, absent or unknown (or, while
        the eSIM list cannot show its eSIM yet, settling: unknown but not to be given up on)."""
        connection = storefront.connection(attempt["provider"])
        if connection is None:
            return "unknown"
        client = self.clients.get(connection)
        if client.lists_esims and not attempt["provider_order_id"]:
            try:
                return self.reconciler.resolve(client, order, unit, attempt, lambda conn: self._renew(conn, lease))
            except LeaseLost:
                raise
            except Exception as exc:
                log.info("order %s: eSIM list at %s not read (%s)", order["order_id"], attempt["provider"], exc)
                return "unknown"
        try:
            esim, absent = self._ask(client, attempt)
        except CompletionRefused as exc:  # its order would not complete, and was cancelled: nothing sold
            with self.engine.begin() as conn:
                rec.finish(conn, attempt["id"], rec.FAILED, error=exc)
            return "absent"
        except Exception as exc:
            log.info("order %s: status check at %s failed (%s)", order["order_id"], attempt["provider"], exc)
            return "unknown"
        if esim is not None:
            with self.engine.begin() as conn:
                self._renew(conn, lease)
                rec.finish(conn, attempt["id"], rec.SUCCEEDED, esim=esim)
                rec.store_esim(conn, order, unit, attempt["provider_package_id"] or "", esim)
            return DELIVERED
        if absent:
            with self.engine.begin() as conn:
                rec.finish(conn, attempt["id"], rec.ABSENT)
            return "absent"
        return "unknown"

    def _ask(self, client: Any, attempt: dict) -> tuple[ProvisionedEsim | None, bool]:
        """(the eSIM if it was delivered, whether nothing was sold); an order the provider created
        for us but never completed is ours and paid for by the customer, so it is completed now."""
        status = client.order_status(attempt["reference"], attempt["provider_order_id"])
        if status.state == "created" and status.provider_order_id:
            return client.resume(status.provider_order_id), False
        if status.state == "completed" and status.esim is not None:
            return status.esim, False
        return None, self._absent(status, attempt["provider_order_id"], attempt["started_at"])

    def _absent(self, status: ProviderOrderStatus, provider_order_id: str | None,
                started_at: dt.datetime | None) -> bool:
        """True when the provider says it sold nothing. A search by our reference that finds no
        order is believed only once the purchase has had time to land (twice our timeout after
        it was sent): the provider may still be finishing a request whose answer we lost."""
        if status.state == "failed":
            return True
        settled = provider_order_id is not None or rec.past(started_at, 2 * self.settings.call_timeout_s)
        return status.state == "not_found" and settled

    def _try(self, order: dict, unit: int, connection: TenantConnection, package: catalog.Package | None,
             reference: str, lease: Lease, skips: list[dict]) -> str:
        provider, tenant_id = connection.system, order["tenant_id"]
        if package is None:
            return FAILED
        if package.stock_status == catalog.OUT_OF_STOCK:
            skips.append(self._skip(order, unit, provider, package, reference, "out_of_stock"))
            return FAILED
        breaker = CircuitBreaker(self.breakers, tenant_id, provider, failure_threshold=self.settings.breaker_failures,
                                 reset_after=self.settings.breaker_reset_s)
        if not breaker.allow():  # open: no call at all
            skips.append(self._skip(order, unit, provider, package, reference, "circuit_open"))
            return FAILED
        with self.engine.begin() as conn:
            self._renew(conn, lease)
            self._write_skips(conn, skips)
            attempt_id = rec.start(conn, order, unit, provider, package.provider_package_id, reference)
        client = self.clients.get(connection)
        created: list[str] = []  # the provider's order id, once a two-step order exists

        def keep(provider_order_id: str) -> None:
            self._created(attempt_id, provider_order_id)
            created.append(provider_order_id)

        started = time.perf_counter()
        try:
            esim = client.purchase(package.provider_package_id, reference, order["email"], on_created=keep)
        except Exception as exc:
            latency = (time.perf_counter() - started) * 1000
            if rec.counts_for_breaker(exc):
                breaker.record_failure(exc)
            return self._failed(order, unit, attempt_id, provider, package, client, reference, exc, latency,
                                created[0] if created else None)
        latency = (time.perf_counter() - started) * 1000
        breaker.record_success()
        with self.engine.begin() as conn:
            rec.finish(conn, attempt_id, rec.SUCCEEDED, latency_ms=latency, esim=esim)
            rec.store_esim(conn, order, unit, package.provider_package_id, esim)
        self._count(provider, rec.SUCCEEDED, latency)
        return DELIVERED

    def _created(self, attempt_id: int, provider_order_id: str) -> None:
        """Keep a two-step order's id in its own transaction before it is completed: a worker
        that dies before completing it leaves the next one an order it can find and finish."""
        with self.engine.begin() as conn:
            rec.note_created(conn, attempt_id, provider_order_id)

    def _failed(self, order: dict, unit: int, attempt_id: int, provider: str, package: catalog.Package,
                client: Any, reference: str, exc: Exception, latency: float, created: str | None) -> str:
        if not rec.ambiguous(exc, created=created is not None):
            with self.engine.begin() as conn:
                rec.finish(conn, attempt_id, rec.FAILED, latency_ms=latency, error=exc)
            self._count(provider, rec.error_class(exc), latency)
            return FAILED
        try:
            status = client.order_status(reference, created)
        except Exception:
            status = None
        if status is not None and status.state == "completed" and status.esim is not None:
            with self.engine.begin() as conn:
                rec.finish(conn, attempt_id, rec.SUCCEEDED, latency_ms=latency, esim=status.esim)
                rec.store_esim(conn, order, unit, package.provider_package_id, status.esim)
            self._count(provider, rec.SUCCEEDED, latency)
            return DELIVERED
        absent = status is not None and self._absent(status, created, None)
        with self.engine.begin() as conn:
            rec.finish(conn, attempt_id, rec.FAILED if absent else rec.UNKNOWN, latency_ms=latency, error=exc)
        self._count(provider, rec.error_class(exc), latency)
        if absent:
            return FAILED
        raise Deferred(f"unit {unit}: {provider} may have sold it ({rec.error_class(exc)}); checking again later")

    @staticmethod
    def _skip(order: dict, unit: int, provider: str, package: catalog.Package, reference: str, why: str) -> dict:
        metrics.ATTEMPTS.labels(provider, why).inc()
        return {"order": order, "unit": unit, "provider": provider, "package_id": package.provider_package_id,
                "reference": reference, "outcome": rec.SKIPPED, "error_class": why, "latency_ms": 0.0}

    @staticmethod
    def _write_skips(conn: sa.Connection, skips: list[dict]) -> None:
        for skip in skips:
            rec.start(conn, **skip)
        skips.clear()

    @staticmethod
    def _count(provider: str, outcome: str, latency_ms: float) -> None:
        metrics.ATTEMPTS.labels(provider, outcome).inc()
        metrics.ATTEMPT_SECONDS.labels(provider).observe(latency_ms / 1000)

    # -- the end of a job -------------------------------------------------------------------
    def _finish(self, storefront: Storefront, order: dict, lease: Lease) -> str:
        tenant_id, order_id, quantity = order["tenant_id"], order["order_id"], order["quantity"]
        stripe = storefront.connection("stripe")
        refund = bool((stripe.options if stripe else {}).get("refund_on_failure", self.settings.refund_on_failure))
        with self.engine.begin() as conn:
            if not self.jobs.finish_in(conn, lease, "done", finished_at=now_utc(), last_error=None):
                raise LeaseLost()
            delivered = len(rec.delivered_units(conn, tenant_id, order_id))
            if delivered == quantity:
                target, effects, reason = states.PROVISIONED, ["email_ready", "slack_provisioned"], None
            else:
                target = states.FAILED if delivered == 0 else states.PARTIALLY_PROVISIONED
                effects = (["refund"] if refund else []) + (["email_ready"] if delivered else [])
                effects += ["email_apology", "slack_failed"]
                reason = f"no provider could deliver {quantity - delivered} of {quantity} eSIM(s)"
            if states.move(conn, tenant_id, order_id, target, (states.PROCESSING,), failure_reason=reason):
                states.enqueue_effects(conn, tenant_id, order_id, effects)
            else:
                target = "unchanged"  # refunded by the merchant meanwhile: keep the eSIMs, send nothing
        metrics.ORDERS.labels(target).inc()
        self.on_effects()
        return target
