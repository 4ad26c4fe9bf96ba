"""Every system a tenant can connect, each with its declared credentials and options.

The declarations live with each provider's client (``CONNECTION`` in its module, named by its
``PROVIDER``); this reads them from the registry (``resources.providers``), for ``storehouse
tenants add`` and for the assets that read connections.
"""

from __future__ import annotations

from resources.connection import ConnectionConfigError, ConnectionSpec
from resources.providers import PROVIDERS
from warehouse.tenants import TenantConnection

SPECS: dict[str, ConnectionSpec] = {p.connection.system: p.connection for p in PROVIDERS}  # derived
SYSTEMS = tuple(sorted(SPECS))


def spec_for(system: str) -> ConnectionSpec:
    spec = SPECS.get(system)
    if spec is None:
        raise ConnectionConfigError(f"unknown system {system!r}; one of: {', '.join(SYSTEMS)}")
    return spec


def check_connection(connection: TenantConnection) -> TenantConnection:
    """The connection, once its base URL, stored credentials and options match its system's declaration."""
    spec_for(connection.system).check(connection.credentials, connection.options, connection.base_url)
    return connection
