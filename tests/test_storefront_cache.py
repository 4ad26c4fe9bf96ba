"""The per-process cache of shop slugs stays bounded whatever slugs callers invent, and a flood
of unknown slugs never pushes a real shop out of it."""

import uuid

import sqlalchemy as sa

from commerce.services import Services
from tests.api_storefront import free_port, settings_for
from warehouse.tables.core import tenants
from warehouse.tenants import add_tenant


def test_thirty_thousand_random_slugs_leave_the_cache_at_its_bound(warehouse_url, engine, tenant_id):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Cached shop")
    settings = settings_for(warehouse_url, free_port(), worker_enabled=False, tenant_cache_s=600)
    services = Services(settings, engine)
    storefronts = services.storefronts
    try:
        assert storefronts.get(tenant_id).name == "Cached shop"
        for i in range(30_000):
            assert storefronts.get(f"x-{uuid.uuid4().hex}") is None  # unknown: remembered as such, briefly
            if i % 1000 == 0:
                assert storefronts.get(tenant_id) is not None
        assert storefronts.cached() == (1, settings.tenant_cache_size)  # each cache at most its bound
        assert settings.tenant_cache_size < 30_000
    finally:
        services.close()


def test_a_flood_of_unknown_slugs_does_not_evict_a_known_storefront(warehouse_url, engine, tenant_id):
    """The shop is not asked for during the flood; afterwards it is still served from the cache
    (the rename made meanwhile is not seen yet), not re-read and decrypted."""
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Cached shop")
    settings = settings_for(warehouse_url, free_port(), worker_enabled=False, tenant_cache_s=600,
                            tenant_cache_size=50)
    services = Services(settings, engine)
    storefronts = services.storefronts
    try:
        assert storefronts.get(tenant_id).name == "Cached shop"
        with engine.begin() as conn:
            conn.execute(sa.update(tenants).where(tenants.c.tenant_id == tenant_id).values(name="Renamed"))
        for _ in range(500):
            assert storefronts.get(f"x-{uuid.uuid4().hex}") is None
        assert storefronts.get(tenant_id).name == "Cached shop"  # still cached: not read again
        assert storefronts.cached() == (1, 50)
        storefronts.forget(tenant_id)
        assert storefronts.get(tenant_id).name == "Renamed"
    finally:
        services.close()
