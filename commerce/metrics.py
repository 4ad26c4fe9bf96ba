"""Prometheus metrics of the shop's work: payments, provisioning attempts, finished orders, effects, breakers.

Counted in whichever process does the work (an API worker, or the stuck-order asset); the API's
``/metrics`` exposes this registry together with its HTTP counters (``api.metrics``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
BREAKER_CODES = {"closed": 0, "half_open": 1, "open": 2}

ATTEMPTS = Counter("storehouse_provisioning_attempts_total", "eSIM provider calls by provider and outcome.",
                   ["provider", "outcome"], registry=REGISTRY)
ATTEMPT_SECONDS = Histogram("storehouse_provisioning_attempt_seconds", "eSIM provider call latency.", ["provider"],
                            registry=REGISTRY, buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
ORDERS = Counter("storehouse_orders_finished_total", "Orders reaching a fulfilment outcome.", ["status"],
                 registry=REGISTRY)
EFFECTS = Counter("storehouse_order_effects_total", "Emails, Slack notices and refunds by outcome.",
                  ["kind", "outcome"], registry=REGISTRY)
BREAKERS = Gauge("storehouse_provider_breaker_state", "Provider circuit breaker: 0 closed, 1 half-open, 2 open.",
                 ["tenant", "provider"], registry=REGISTRY, multiprocess_mode="mostrecent")
PAYMENTS = Counter("storehouse_payments_total", "Stripe PaymentIntent outcomes received (payment_intent.succeeded "
                   "and payment_intent.payment_failed events, each counted once).", ["outcome"], registry=REGISTRY)
