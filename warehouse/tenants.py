"""Tenants and their connections to outside systems.

Credentials are stored encrypted (``warehouse.secrets``): ``set_connection`` seals them and every
read of a connection (``connection_from_row``) opens them, the sync assets' and the shop API's alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from warehouse.db import hold_write_lock
from warehouse.secrets import Keyring, SecretsKeyError, reseal_all, seal, unseal
from warehouse.tables.core import tenant_connections, tenants
from warehouse.upsert import upsert


@dataclass(frozen=True)
class TenantConnection:
    tenant_id: str
    system: str
    base_url: str
    credentials: dict[str, Any] = field(repr=False)
    options: dict[str, Any]

    def __repr__(self) -> str:  # never show credentials
        return f"TenantConnection({self.tenant_id!r}, {self.system!r}, {self.base_url!r})"


def add_tenant(conn: sa.Connection, tenant_id: str, name: str | None = None) -> None:
    """Add the tenant (named ``name``, else its id), or make it active again; a name given
    replaces the old one, no name keeps it."""
    if name is None:
        name = conn.execute(sa.select(tenants.c.name).where(tenants.c.tenant_id == tenant_id)).scalar_one_or_none()
    upsert(conn, tenants, [{"tenant_id": tenant_id, "name": name or tenant_id, "status": "active"}])


def set_connection(
    conn: sa.Connection, tenant_id: str, system: str, base_url: str,
    credentials: dict[str, Any], options: dict[str, Any] | None = None,
) -> None:
    """Store (or replace) a connection, its credentials sealed under the key in force. When other
    connections are stored, that key must open them: a missing key file is then a ``SecretsKeyError``
    naming the setting, never a new key beside the old one (which no rotation could reconcile)."""
    _lock_connections(conn)  # no rotation re-encrypts the rows between this check and the write
    t = tenant_connections.c
    other = conn.execute(sa.select(t.credentials).where(sa.not_(sa.and_(t.tenant_id == tenant_id, t.system == system)))
                         .limit(1)).scalar_one_or_none()
    if other is not None:
        try:
            unseal(other)
        except SecretsKeyError as exc:
            raise SecretsKeyError(f"connections are stored already, so no new key is made for this one: {exc}") from None
    upsert(conn, tenant_connections, [{
        "tenant_id": tenant_id, "system": system, "base_url": base_url,
        "credentials": seal(credentials), "options": options or {},
    }])


def remove_tenant(conn: sa.Connection, tenant_id: str) -> bool:
    """Remove a tenant and its connections; its synced rows stay until purged by the operator, but
    leave the marts at their next build (they carry current tenants only: analytics/macros/tenants.sql)."""
    conn.execute(sa.delete(tenant_connections).where(tenant_connections.c.tenant_id == tenant_id))
    return conn.execute(sa.delete(tenants).where(tenants.c.tenant_id == tenant_id)).rowcount > 0


def active_tenant_ids(conn: sa.Connection) -> list[str]:
    return list(conn.execute(
        sa.select(tenants.c.tenant_id).where(tenants.c.status == "active").order_by(tenants.c.tenant_id)
    ).scalars())


def list_tenants(conn: sa.Connection) -> list[dict[str, Any]]:
    """Tenants with the systems they connect (no credentials)."""
    rows = conn.execute(sa.select(tenants).order_by(tenants.c.tenant_id)).mappings().all()
    systems: dict[str, list[str]] = {}
    for tid, system in conn.execute(sa.select(tenant_connections.c.tenant_id, tenant_connections.c.system)):
        systems.setdefault(tid, []).append(system)
    return [{**row, "systems": sorted(systems.get(row["tenant_id"], []))} for row in rows]


CONNECTION_COLUMNS = tuple(tenant_connections.c[name] for name in ("tenant_id", "system", "base_url", "credentials",
                                                                     "options"))


def connection_from_row(row: sa.Row) -> TenantConnection:
    """A connection as selected with ``CONNECTION_COLUMNS``, its credentials decrypted."""
    tenant_id, system, base_url, sealed, options = row
    return TenantConnection(tenant_id, system, base_url, unseal(sealed), options)


def get_connection(conn: sa.Connection, tenant_id: str, system: str) -> TenantConnection | None:
    t = tenant_connections.c
    row = conn.execute(
        sa.select(*CONNECTION_COLUMNS).where(t.tenant_id == tenant_id, t.system == system)
    ).one_or_none()
    return connection_from_row(row) if row else None


def _lock_connections(conn: sa.Connection) -> None:
    """Keep other writers of ``tenant_connections`` out until this transaction ends: on PostgreSQL
    a table lock that only readers pass (so a connection added meanwhile is not missed by a
    rotation), on SQLite a write transaction begun now rather than at the first write."""
    if conn.dialect.name == "postgresql":
        table = conn.dialect.identifier_preparer.format_table(tenant_connections)
        conn.execute(sa.text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    elif conn.dialect.name == "sqlite":
        hold_write_lock(conn)  # this process's writers first, then SQLite's own lock
        if not conn.connection.driver_connection.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def resealed_credentials(conn: sa.Connection, ring: Keyring) -> dict[tuple[str, str], str]:
    """Every connection's credentials re-encrypted under the ring's first key, by (tenant, system),
    the rows locked until the transaction ends. Nothing is written: a row no key of the ring opens
    is a ``SecretsKeyError`` naming its tenant and system."""
    _lock_connections(conn)
    t = tenant_connections.c
    rows = {(tid, system): token for tid, system, token in conn.execute(
        sa.select(t.tenant_id, t.system, t.credentials).order_by(t.tenant_id, t.system).with_for_update())}
    return reseal_all(rows, ring, lambda key: f"tenant {key[0]}'s {key[1]} connection")


def store_credentials(conn: sa.Connection, sealed: dict[tuple[str, str], str]) -> None:
    t = tenant_connections.c
    for (tid, system), token in sealed.items():
        conn.execute(sa.update(tenant_connections).where(t.tenant_id == tid, t.system == system)
                     .values(credentials=token))


def reseal_credentials(conn: sa.Connection, ring: Keyring) -> int:
    """Re-encrypt every connection's credentials under the ring's first key; returns how many.
    Every row is opened before any is written."""
    sealed = resealed_credentials(conn, ring)
    store_credentials(conn, sealed)
    return len(sealed)


def connected_systems(conn: sa.Connection, tenant_id: str) -> list[str]:
    t = tenant_connections.c
    return list(conn.execute(sa.select(t.system).where(t.tenant_id == tenant_id).order_by(t.system)).scalars())


def tenants_with(conn: sa.Connection, system: str) -> list[str]:
    t = tenant_connections.c
    return list(conn.execute(
        sa.select(t.tenant_id).join(tenants, tenants.c.tenant_id == t.tenant_id)
        .where(t.system == system, tenants.c.status == "active").order_by(t.tenant_id)
    ).scalars())
