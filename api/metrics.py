"""Prometheus metrics of the API: requests, webhook outcomes, provisioning, effects, breakers.

Counters live in this process; with several workers set ``PROMETHEUS_MULTIPROC_DIR`` and every
worker's values are summed at scrape time. Breaker state is read from ``circuit_breakers`` when
scraped, so it is the state every worker shares, not one process's view.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from warehouse.tables.core import circuit_breakers

REGISTRY = CollectorRegistry(auto_describe=True)
BREAKER_CODES = {"closed": 0, "half_open": 1, "open": 2}

REQUESTS = Counter("storehouse_api_requests_total", "HTTP requests answered.", ["method", "route", "status"],
                   registry=REGISTRY)
REQUEST_SECONDS = Histogram("storehouse_api_request_seconds", "Time to answer a request.", ["method", "route"],
                            registry=REGISTRY, buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
WEBHOOKS = Counter("storehouse_stripe_webhooks_total", "Stripe webhook deliveries by outcome.", ["outcome"],
                   registry=REGISTRY)
ATTEMPTS = Counter("storehouse_provisioning_attempts_total", "eSIM provider calls by provider and outcome.",
                   ["provider", "outcome"], registry=REGISTRY)
ATTEMPT_SECONDS = Histogram("storehouse_provisioning_attempt_seconds", "eSIM provider call latency.", ["provider"],
                            registry=REGISTRY, buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
ORDERS = Counter("storehouse_orders_finished_total", "Orders reaching a fulfilment outcome.", ["status"],
                 registry=REGISTRY)
EFFECTS = Counter("storehouse_order_effects_total", "Emails, Slack notices and refunds by outcome.",
                  ["kind", "outcome"], registry=REGISTRY)
CHECKOUTS = Counter("storehouse_checkouts_total", "Checkout requests by outcome.", ["outcome"], registry=REGISTRY)
BREAKERS = Gauge("storehouse_provider_breaker_state", "Provider circuit breaker: 0 closed, 1 half-open, 2 open.",
                 ["tenant", "provider"], registry=REGISTRY, multiprocess_mode="mostrecent")


def render(engine: sa.Engine) -> bytes:
    """The exposition text, with breaker gauges refreshed from the shared table."""
    b = circuit_breakers.c
    with engine.connect() as conn:
        for tenant, provider, state in conn.execute(sa.select(b.tenant_id, b.provider, b.state)):
            BREAKERS.labels(tenant, provider).set(BREAKER_CODES.get(state, 0))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
