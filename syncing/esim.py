"""The eSIM catalog and stock syncs the ``esim/*`` assets run, one provider at a time (seed 001).

* ``sync_packages``: the provider's whole catalog (all or nothing), priced by the connection's
  ``MarginRule``, upserted into ``esim_packages``; packages it no longer lists become inactive.
* ``sync_stock``: units per active package from the provider's stock feed into ``esim_stock``,
  collecting the ``Crossing``s Slack must hear about. A crossing is stored un-alerted and marked
  alerted (``mark_alerted``) only once Slack has it, so an undelivered alert is sent next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

import sqlalchemy as sa

from resources.esim.client import EsimClientBase
from resources.http import ProviderError
from syncing.deletions import gone_rows, mark_gone
from syncing.result import SyncResult
from syncing.stream import Stream, StreamWriter
from warehouse.tables.esim import esim_packages, esim_stock
from warehouse.tenants import TenantConnection
from warehouse.types import utc_now
from warehouse.upsert import upsert

LOW_STOCK = 10
PACKAGES = Stream("packages", esim_packages, ("provider_package_id",))  # gone: marked inactive
CENT = Decimal("0.01")


@dataclass(frozen=True)
class MarginRule:
    """A provider connection's pricing: cost plus ``margin_pct``, rounded up to end in ``round_to``."""

    margin_pct: Decimal = Decimal(30)
    round_to: Decimal | None = Decimal("0.99")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "MarginRule":
        pct, ending = options.get("margin_pct", cls.margin_pct), options.get("round_to", cls.round_to)
        try:
            rule = cls(Decimal(str(pct)), None if ending in (None, "") else Decimal(str(ending)))
        except ArithmeticError:  # not a number at all
            rule = None
        # Prices are whole cents: Stripe charges minor units, and checkout refuses a session whose
        # charge differs from the order total, so an ending like 0.995 could never be paid for.
        if rule is None or not Decimal(0) <= rule.margin_pct <= 1000 or not Decimal(0) <= (rule.round_to or 0) < 1 \
                or (rule.round_to is not None and rule.round_to != rule.round_to.quantize(CENT)):
            raise ValueError(f"margin rule needs 0 <= margin_pct <= 1000 and a whole-cent 0 <= round_to < 1; "
                             f"got {pct!r}, {ending!r}")
        return rule


def storefront_price(cost: Decimal, rule: MarginRule) -> Decimal:
    """The shop's price: never below cost plus margin (4.12 with round_to 0.99 → 4.99)."""
    raw = cost * (1 + rule.margin_pct / 100)
    if rule.round_to is None:
        return raw.quantize(CENT, rounding=ROUND_CEILING)
    return (raw - rule.round_to).to_integral_value(rounding=ROUND_CEILING) + rule.round_to


def stock_status(available: int, threshold: int = LOW_STOCK) -> str:
    return "out_of_stock" if available <= 0 else "low" if available < threshold else "in_stock"


def needs_alert(previous: dict | None, status: str) -> bool:
    """Tell Slack on entering low, and again on selling out; never twice for the same crossing."""
    if status == "in_stock":
        return False
    if previous is None or not previous["low_alerted"]:
        return True
    return status == "out_of_stock" and previous["status"] != "out_of_stock"


def sync_packages(engine: sa.Engine, client: EsimClientBase, connection: TenantConnection,
                  run_id: str | None) -> SyncResult:
    """Upsert the provider's packages with prices; deactivate those it no longer lists."""
    rule, tenant, provider = MarginRule.from_options(connection.options), connection.tenant_id, connection.system
    packages = list(client.iter_packages())  # all or nothing: half a catalog must not deactivate the rest
    rows = [{**p.model_dump(exclude={"provider"}), "tenant_id": tenant, "provider": provider,
             "price": storefront_price(p.cost, rule), "active": True} for p in packages]
    stats = SyncResult(rows=len(rows) + len(client.rejected))
    writer = StreamWriter(engine, tenant, f"esim_packages:{provider}", esim_packages, PACKAGES.key, stats, run_id)
    c = esim_packages.c
    mine = sa.and_(c.tenant_id == tenant, c.provider == provider, c.active.is_(True))
    with engine.begin() as conn:
        known = conn.execute(sa.select(sa.func.count()).select_from(esim_packages).where(mine)).scalar_one()
        if not rows and known:
            raise ProviderError(provider, f"listed no packages; keeping the {known} known ones")
        writer.write_in(conn, rows, client.rejected)  # a package quarantined before and readable now is released
        # A package listed but unreadable (quarantined) is not gone; one without an id blinds the run.
        unread = {str(r.source_id) for r in client.rejected if r.source_id}
        blind = len(unread) != len(client.rejected)
        seen = {(r["provider_package_id"],) for r in rows}
        gone, _ = gone_rows(conn, PACKAGES, [mine], seen, None, 1.0, None if blind else unread)
        deactivated = mark_gone(conn, PACKAGES, [mine], gone, {"active": False, "updated_at": utc_now()})
        if blind:
            stats.extra["deactivation_withheld"] = "a quarantined package had no id"
    stats.api_calls, stats.extra["deactivated"] = client.calls, deactivated
    return stats


# -- stock ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Crossing:
    provider: str
    package_id: str
    name: str
    available: int
    status: str


def stock_join(outer: bool = False) -> sa.Join:
    """Packages with their stock rows (outer: also packages that have none yet)."""
    p, s = esim_packages.c, esim_stock.c
    on = sa.and_(s.tenant_id == p.tenant_id, s.provider == p.provider, s.provider_package_id == p.provider_package_id)
    return esim_packages.join(esim_stock, on, isouter=outer)


def sync_stock(engine: sa.Engine, client: EsimClientBase, connection: TenantConnection, now: datetime,
               crossings: list[Crossing]) -> SyncResult:
    """Stock of the provider's active packages; a crossing is stored un-alerted until Slack has it."""
    levels = client.stock_levels()
    if levels is None:
        raise ProviderError(connection.system, "the connection names no stock feed (option stock_feed_url)")
    tenant, provider = connection.tenant_id, connection.system
    threshold = int(connection.options.get("low_stock_threshold", LOW_STOCK))
    p, s = esim_packages.c, esim_stock.c
    query = (sa.select(p.provider_package_id, p.name, s.status, s.low_alerted, s.status_since)
             .select_from(stock_join(True)).where(p.tenant_id == tenant, p.provider == provider, p.active.is_(True)))
    rows, missing = [], 0
    with engine.begin() as conn:
        current = conn.execute(query).all()
        for package_id, name, previous, alerted, since in current:
            missing += package_id not in levels
            available = levels.get(package_id, 0)  # not in the feed: nothing we can sell
            status = stock_status(available, threshold)
            alert = needs_alert(None if previous is None else {"status": previous, "low_alerted": alerted}, status)
            if alert:
                crossings.append(Crossing(provider, package_id, name, available, status))
            rows.append({"tenant_id": tenant, "provider": provider, "provider_package_id": package_id,
                         "available": available, "status": status, "checked_at": now,
                         "low_alerted": status != "in_stock" and bool(alerted) and not alert,
                         "status_since": since if previous == status else now})
        written = upsert(conn, esim_stock, rows).written if rows else 0
    stats = SyncResult(api_calls=client.calls, rows=len(rows), rows_written=written)
    stats.extra.update(crossings=sum(c.provider == provider for c in crossings), missing_from_feed=missing)
    return stats


def stock_message(tenant: str, crossings: list[Crossing], limit: int = 15) -> str:
    out = sum(c.status == "out_of_stock" for c in crossings)
    lines = [f":warning: {tenant}: {len(crossings) - out} eSIM package(s) now low on stock, {out} sold out"]
    for c in sorted(crossings, key=lambda c: (c.available, c.provider, c.name))[:limit]:
        lines.append(f"• {c.provider} · {c.name} (`{c.package_id}`): {c.available} left")
    if len(crossings) > limit:
        lines.append(f"… and {len(crossings) - limit} more")
    return "\n".join(lines)


def mark_alerted(engine: sa.Engine, tenant: str, crossings: list[Crossing]) -> None:
    s = esim_stock.c
    with engine.begin() as conn:
        for provider in {c.provider for c in crossings}:
            ids = [c.package_id for c in crossings if c.provider == provider]
            conn.execute(sa.update(esim_stock).where(s.tenant_id == tenant, s.provider == provider,
                                                     s.provider_package_id.in_(ids)).values(low_alerted=True))
