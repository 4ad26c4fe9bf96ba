"""A purchase whose answer was lost, found again in the provider account's eSIM list (eSIM Card).

eSIM Card keeps no reference of ours and has no order lookup, so a purchase whose answer was
lost (the worker killed between the purchase and our write, or a timeout after sending) cannot
be asked about. What its account can tell is every eSIM it holds, when each was bought and with
which package (``my-esims``). An eSIM of the attempt's package, bought after the attempt
started and claimed by no order of the tenant, is taken to be that purchase; when the list
holds none, nothing was sold and the unit may be bought again. eSIMs of one package are alike,
so which of several such eSIMs an attempt takes does not matter: that each is taken once does.

Timing. A live purchase has its answer written within one provider timeout of the eSIM being
made, so only eSIMs bought more than two timeouts ago are taken (one still in flight is left to
its buyer), and an attempt is judged only three timeouts (and the clock allowance) after it
started (its eSIM, if any, is then old enough to be seen). Until then it is ``SETTLING``: unknown, and never given up on.

Claims are made under a per-tenant lock (PostgreSQL advisory lock; on SQLite the single writer
taken by the first statement), rechecking what is claimed, so two workers never hand out one
eSIM twice. An eSIM of the package bought in the window that no order claims and no other open
attempt could still claim is recorded in ``unclaimed_esims`` and alerted to the shop's Slack
once (the ``slack_unclaimed`` effect of the order being reconciled): never silently left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any, Callable

import sqlalchemy as sa

from commerce import attempts as rec
from commerce import orders as states
from commerce.orders import insert_ignore
from resources.esim import AccountEsim, EsimProviderClient
from warehouse.tables.esim import esim_packages
from warehouse.tables.orders import order_esims, provisioning_attempts, unclaimed_esims
from warehouse.types import now_utc

log = logging.getLogger("storehouse.commerce.reconcile")
DELIVERED, ABSENT, SETTLING, UNKNOWN = "delivered", "absent", "settling", "unknown"
CLOCK_SKEW_S = 5.0  # the provider stamps whole seconds, on its own clock


class Reconciler:
    def __init__(self, engine: sa.Engine, provider_timeout_s: float) -> None:
        self.engine, self.timeout_s = engine, provider_timeout_s

    def resolve(self, client: EsimProviderClient, order: dict[str, Any], unit: int, attempt: dict[str, Any],
                renew: Callable[[sa.Connection], None]) -> str:
        """``DELIVERED`` (an eSIM found and stored for the unit), ``ABSENT`` (nothing was sold),
        ``SETTLING`` (too early to tell) or ``UNKNOWN`` (the package cannot be matched)."""
        if not rec.past(attempt["started_at"], 3 * self.timeout_s + CLOCK_SKEW_S):
            return SETTLING
        tenant_id, provider = order["tenant_id"], attempt["provider"]
        with self.engine.connect() as conn:
            name = package_name(conn, tenant_id, provider, attempt["provider_package_id"])
        if name is None:
            return UNKNOWN  # the package left the catalog: its eSIMs cannot be told from others
        since = attempt["started_at"] - dt.timedelta(seconds=CLOCK_SKEW_S)
        horizon = now_utc() - dt.timedelta(seconds=2 * self.timeout_s)
        listed = sorted((s for s in client.esims_bought_since(since)
                         if s.package_name == name and s.bundles == 1 and s.bought_at <= horizon),
                        key=lambda s: (s.bought_at, s.provider_order_id))
        ids = [s.provider_order_id for s in listed]
        with self.engine.connect() as conn:
            claimed = claimed_ids(conn, tenant_id, provider, ids)
        verdict = ABSENT
        for sim in listed:
            if sim.provider_order_id in claimed:
                continue
            esim = client.order_status(attempt["reference"], sim.provider_order_id).esim
            if esim is None:
                continue
            with self.engine.begin() as conn:
                serialise(conn, tenant_id, provider, attempt["id"])
                renew(conn)
                claimed = claimed_ids(conn, tenant_id, provider, ids)
                if sim.provider_order_id in claimed:
                    continue  # another worker took it meanwhile
                rec.finish(conn, attempt["id"], rec.SUCCEEDED, esim=esim)
                rec.store_esim(conn, order, unit, attempt["provider_package_id"] or "", esim)
                claimed.add(sim.provider_order_id)
            log.warning("order %s unit %d: lost %s purchase found in the account's eSIM list (%s)",
                        order["order_id"], unit, provider, sim.provider_order_id)
            verdict = DELIVERED
            break
        if verdict == ABSENT:
            with self.engine.begin() as conn:
                serialise(conn, tenant_id, provider, attempt["id"])
                renew(conn)
                rec.finish(conn, attempt["id"], rec.ABSENT)
        self._record_unclaimed(order, attempt, [s for s in listed if s.provider_order_id not in claimed])
        return verdict

    def _record_unclaimed(self, order: dict[str, Any], attempt: dict[str, Any], left: list[AccountEsim]) -> None:
        """Record (and alert once) the eSIMs of the window that nothing can claim any more."""
        if not left:
            return
        tenant_id, provider = order["tenant_id"], attempt["provider"]
        with self.engine.begin() as conn:
            serialise(conn, tenant_id, provider, attempt["id"])
            claimed = claimed_ids(conn, tenant_id, provider, [s.provider_order_id for s in left])
            a = provisioning_attempts.c
            open_starts = list(conn.execute(sa.select(a.started_at).where(
                a.tenant_id == tenant_id, a.provider == provider, a.outcome.in_(rec.UNRESOLVED),
                a.provider_order_id.is_(None), a.provider_package_id == attempt["provider_package_id"],
                a.id != attempt["id"])).scalars())
            skew = dt.timedelta(seconds=CLOCK_SKEW_S)
            orphans = [s for s in left if s.provider_order_id not in claimed
                       and not any(started - skew <= s.bought_at for started in open_starts)]
            recorded = [s for s in orphans if insert_ignore(conn, unclaimed_esims, {
                "tenant_id": tenant_id, "provider": provider, "provider_order_id": s.provider_order_id[:128],
                "iccid": (s.iccid or "")[:22] or None, "package_name": (s.package_name or "")[:300] or None,
                "bought_at": s.bought_at, "order_id": order["order_id"]})]
            if recorded:
                states.enqueue_effects(conn, tenant_id, order["order_id"], ["slack_unclaimed"])
        for sim in recorded:
            log.error("tenant %s: %s eSIM %s (bought %s) is claimed by no order; recorded in unclaimed_esims",
                      tenant_id, provider, sim.provider_order_id, sim.bought_at)


def package_name(conn: sa.Connection, tenant_id: str, provider: str, package_id: str | None) -> str | None:
    p = esim_packages.c
    return conn.execute(sa.select(p.name).where(p.tenant_id == tenant_id, p.provider == provider,
                                                p.provider_package_id == package_id)).scalar_one_or_none()


def claimed_ids(conn: sa.Connection, tenant_id: str, provider: str, ids: list[str]) -> set[str]:
    """Those of the provider's eSIM ``ids`` some order of the tenant holds (delivered, or kept on
    an attempt: bought but unusable, or being completed), or already recorded as unclaimed."""
    if not ids:
        return set()
    e, a, u = order_esims.c, provisioning_attempts.c, unclaimed_esims.c
    held = sa.union(
        sa.select(e.provider_order_id).where(e.tenant_id == tenant_id, e.provider == provider,
                                             e.provider_order_id.in_(ids)),
        sa.select(a.provider_order_id).where(a.tenant_id == tenant_id, a.provider == provider,
                                             a.provider_order_id.in_(ids)),
        sa.select(u.provider_order_id).where(u.tenant_id == tenant_id, u.provider == provider,
                                             u.provider_order_id.in_(ids)),
    )
    return set(conn.execute(held).scalars())


def serialise(conn: sa.Connection, tenant_id: str, provider: str, attempt_id: int) -> None:
    """Hold the tenant's reconciliation lock at this provider for the rest of the transaction.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: a no-op write to the attempt takes
    the database's single write lock now, before anything is read.
    """
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"reconcile:{tenant_id}:{provider}".encode()).digest()[:8], "big",
                             signed=True)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        return
    conn.execute(sa.update(provisioning_attempts).where(provisioning_attempts.c.id == attempt_id)
                 .values(outcome=provisioning_attempts.c.outcome))
