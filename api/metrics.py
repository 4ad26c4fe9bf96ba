"""Prometheus metrics of the API: requests, Stripe and POS webhook outcomes, checkouts, and the shop's own
(``commerce.metrics``: provisioning, effects, breakers) in one exposition.

Counters live in this process; with several workers set ``PROMETHEUS_MULTIPROC_DIR`` and every
worker's values are summed at scrape time. Breaker state is read from ``circuit_breakers`` when
scraped, so it is the state every worker shares, not one process's view; so are the syncs (run in
Dagster's processes), stuck orders and low stock (``api.warehouse_metrics``).
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from api.warehouse_metrics import collector_for
from commerce.metrics import BREAKER_CODES, BREAKERS, REGISTRY
from warehouse.tables.core import circuit_breakers

REQUESTS = Counter("storehouse_api_requests_total", "HTTP requests answered.", ["method", "route", "status"],
                   registry=REGISTRY)
REQUEST_SECONDS = Histogram("storehouse_api_request_seconds", "Time to answer a request.", ["method", "route"],
                            registry=REGISTRY, buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
WEBHOOKS = Counter("storehouse_stripe_webhooks_total", "Stripe webhook deliveries by outcome.", ["outcome"],
                   registry=REGISTRY)
POS_WEBHOOKS = Counter("storehouse_pos_webhooks_total", "POS webhook deliveries by shop, provider and outcome "
                       "(refused ones are counted here only, never stored).", ["tenant", "provider", "outcome"],
                       registry=REGISTRY)
CHECKOUTS = Counter("storehouse_checkouts_total", "Checkout requests by outcome.", ["outcome"], registry=REGISTRY)


def render(engine: sa.Engine) -> bytes:
    """The exposition text, with breaker gauges refreshed from the shared table and the warehouse's
    families (syncs, stuck orders, low stock) read now."""
    b = circuit_breakers.c
    with engine.connect() as conn:
        for tenant, provider, state in conn.execute(sa.select(b.tenant_id, b.provider, b.state)):
            BREAKERS.labels(tenant, provider).set(BREAKER_CODES.get(state, 0))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    warehouse = CollectorRegistry(auto_describe=False)
    warehouse.register(collector_for(engine))
    return generate_latest(registry) + generate_latest(warehouse)
