"""The registry: every provider's descriptor, found in its own module.

A provider module (anywhere in ``resources/``, ``resources/pos/`` or ``resources/esim/``) that
declares ``PROVIDER = ...`` is found here; nothing lists providers by hand. Everything that
needs to know the providers reads this (or the per-kind views it is built from:
``resources.pos.POS_PROVIDERS``, ``resources.esim.ESIM_PROVIDERS``): the connection specs
(``resources.systems``), the POS webhook rules (``commerce.pos_webhooks``), the order formats
(``resources.pos_orders``), the webhook route's description, the demo tenants, the sandbox test.

Adding a POS system: its module (with its ``PROVIDER``), its fake in ``sandbox/`` (found by the
sandbox app), its tests. Nothing else by hand.
"""

from __future__ import annotations

from resources.esim import ESIM_PROVIDERS
from resources.pos import POS_PROVIDERS
from resources.provider import PosProvider, Provider, discover

OTHERS: tuple[Provider, ...] = discover("resources")
PROVIDERS: tuple[Provider, ...] = (*OTHERS, *ESIM_PROVIDERS, *POS_PROVIDERS)
BY_SYSTEM: dict[str, Provider] = {p.system: p for p in PROVIDERS}
assert len(BY_SYSTEM) == len(PROVIDERS), "two provider modules declare the same system"


def webhook_pos() -> tuple[PosProvider, ...]:
    """The POS systems that send webhooks we receive (``/shops/{tenant}/webhooks/pos/{provider}``)."""
    return tuple(p for p in POS_PROVIDERS if p.webhook is not None)
