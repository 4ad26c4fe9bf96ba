"""POS and Portaus clients: one module per system, each built for a tenant's connection here.

Each module here (``treez.py`` …) ends with its ``PROVIDER`` (``resources.provider.PosProvider``):
client factory, wire models, connection, call policy, order format, webhooks, sandbox and demo.
``POS_PROVIDERS`` finds them; ``POS_SYSTEMS`` is derived from it. ``client_for(connection)``
builds the client with the provider's call policy (named fields overridden where given: the
Dagster resource ``resources.dagster_resources.PosClientsResource`` passes its settings) and one
retry budget for the client. Account-specific settings (page sizes, locations, rate limits) come
from the connection's options. Every client exposes its ``session`` (the one ``HttpSession``, with
auth already wired) so order submission modules can reuse the same account, token cache and limits.
"""

from __future__ import annotations

from typing import Any

from resources.connection import ConnectionConfigError
from resources.pos.base import CUSTOMERS, INVENTORY, PRODUCTS, PosClient
from resources.pos.portaus import PortausClient
from resources.provider import PosProvider, discover
from warehouse.tenants import TenantConnection

POS_PROVIDERS: tuple[PosProvider, ...] = discover(__name__)  # type: ignore[assignment]
BY_SYSTEM: dict[str, PosProvider] = {p.system: p for p in POS_PROVIDERS}
POS_SYSTEMS: tuple[str, ...] = tuple(BY_SYSTEM)  # add a system by adding its module


def client_for(connection: TenantConnection, **overrides: Any) -> PosClient:
    """The client for a POS (or Portaus) connection, with its provider's call policy (``overrides``
    replace named fields of it; None keeps the provider's)."""
    provider = BY_SYSTEM.get(connection.system)
    if provider is None:
        raise ValueError(f"{connection.system!r} is not a POS system ({', '.join(POS_SYSTEMS)})")
    policy = provider.policy.with_overrides(**overrides)
    try:
        return provider.client(connection.base_url, connection.credentials, connection.options or {}, policy=policy)
    except KeyError as exc:  # name the missing setting, never a value
        raise ConnectionConfigError(f"{connection.system} connection is missing {exc.args[0]!r}") from None


__all__ = ["CUSTOMERS", "INVENTORY", "POS_PROVIDERS", "POS_SYSTEMS", "PRODUCTS", "PortausClient", "PosClient",
           "client_for"]
