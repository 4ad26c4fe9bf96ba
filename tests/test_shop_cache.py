"""The per-process cache of shop slugs stays bounded whatever slugs callers invent."""

import uuid

from shop.services import Services
from tests.api_shop import free_port, settings_for
from warehouse.tenants import add_tenant


def test_thirty_thousand_random_slugs_leave_the_cache_at_its_bound(warehouse_url, engine, tenant_id):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Cached shop")
    settings = settings_for(warehouse_url, free_port(), worker_enabled=False, tenant_cache_s=600)
    services = Services(settings, engine)
    shops = services.shops
    try:
        assert shops.get(tenant_id).name == "Cached shop"
        for i in range(30_000):
            assert shops.get(f"x-{uuid.uuid4().hex}") is None  # unknown: remembered as such, briefly
            if i % 1000 == 0:
                assert shops.get(tenant_id) is not None  # in use: kept while the strangers come and go
        assert len(shops) == settings.tenant_cache_size < 30_000
        assert tenant_id in shops._cache  # the least recently used left first, not the shop in use
    finally:
        services.close()
