"""What a shop sells, read from the warehouse (``esim_packages`` joined to ``esim_stock``).

Every provider sells the same plans under its own ids, so the customer sees one entry per plan
(area, data, validity): the package of the first provider in failover order that has it in
stock. Its id (``provider:provider_package_id``) is what checkout takes. A package whose stock
was never checked is listed (the provider is the final word at purchase); one known to be out
of stock is not, and checkout refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from warehouse.tables.esim import esim_packages, esim_stock

OUT_OF_STOCK = "out_of_stock"


@dataclass(frozen=True)
class Package:
    provider: str
    provider_package_id: str
    name: str
    country_code: str | None
    region: str | None
    data_mb: int | None
    unlimited: bool
    validity_days: int
    price: Decimal
    currency: str
    stock_status: str | None

    @property
    def package_id(self) -> str:
        return f"{self.provider}:{self.provider_package_id}"

    @property
    def plan(self) -> tuple:
        """What makes two providers' packages the same plan for the customer."""
        return (self.country_code, (self.region or "").lower() or None, self.data_mb, self.unlimited,
                self.validity_days)


def _query(tenant_id: str) -> sa.Select:
    p, s = esim_packages.c, esim_stock.c
    return (
        sa.select(p.provider, p.provider_package_id, p.name, p.country_code, p.region, p.data_mb, p.unlimited,
                  p.validity_days, p.price, p.currency, s.status.label("stock_status"))
        .select_from(esim_packages.outerjoin(esim_stock, sa.and_(
            s.tenant_id == p.tenant_id, s.provider == p.provider, s.provider_package_id == p.provider_package_id)))
        .where(p.tenant_id == tenant_id, p.active.is_(True))
    )


# Built once: checkout reads one package per request.
_FIND = _query(sa.bindparam("f_tenant")).where(esim_packages.c.provider == sa.bindparam("f_provider"),
                                               esim_packages.c.provider_package_id == sa.bindparam("f_package"))


def _packages(conn: sa.Connection, stmt: sa.Select) -> list[Package]:
    return [Package(**row) for row in conn.execute(stmt).mappings()]


def listing(conn: sa.Connection, tenant_id: str, priority: list[str], country: str | None = None) -> list[Package]:
    """One in-stock package per plan, from the highest-priority provider that has it."""
    stmt = _query(tenant_id).where(sa.or_(esim_stock.c.status.is_(None), esim_stock.c.status != OUT_OF_STOCK))
    if country:
        stmt = stmt.where(esim_packages.c.country_code == country.upper())
    rank = {name: i for i, name in enumerate(priority)}
    best: dict[tuple, Package] = {}
    for package in _packages(conn, stmt):
        current = best.get(package.plan)
        if current is None or rank.get(package.provider, 99) < rank.get(current.provider, 99):
            best[package.plan] = package
    return sorted(best.values(), key=lambda p: (p.country_code or "~", p.region or "", p.validity_days,
                                                 p.unlimited, p.data_mb or 0, p.price))


def find(conn: sa.Connection, tenant_id: str, package_id: str) -> Package | None:
    """The active package named ``provider:provider_package_id`` (None when unknown or malformed)."""
    provider, sep, provider_package_id = package_id.partition(":")
    if not sep or not provider or not provider_package_id:
        return None
    row = conn.execute(_FIND, {"f_tenant": tenant_id, "f_provider": provider,
                               "f_package": provider_package_id}).mappings().first()
    return Package(**row) if row else None


def equivalents(conn: sa.Connection, tenant_id: str, order: dict[str, Any]) -> dict[str, Package]:
    """Per provider, the active package selling the order's plan (for failover)."""
    p = esim_packages.c
    stmt = _query(tenant_id).where(
        p.country_code.is_not_distinct_from(order["country_code"]),
        p.data_mb.is_not_distinct_from(order["data_mb"]),
        p.unlimited == bool(order["unlimited"]),
        p.validity_days.is_not_distinct_from(order["validity_days"]),
    )
    region = (order["region"] or "").lower() or None
    out: dict[str, Package] = {}
    for package in _packages(conn, stmt):
        if package.plan[1] != region:
            continue
        # The customer's own package wins; otherwise the first match of that provider.
        mine = (package.provider, package.provider_package_id) == (order["provider"], order["provider_package_id"])
        if package.provider not in out or mine:
            out[package.provider] = package
    return out
