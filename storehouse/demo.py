"""The demo tenants: real connections to the sandbox's seeded accounts.

Each entry is what `storehouse tenants add` would register for a merchant; pointing a tenant at
the real provider changes only its base URL and credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from resources.pos import POS_PROVIDERS
from warehouse.tenants import add_tenant, get_connection, set_connection


@dataclass(frozen=True)
class Connection:
    system: str
    path: str  # the fake's mount path on the sandbox
    credentials: dict[str, Any] = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoTenant:
    tenant_id: str
    name: str
    connections: list[Connection]


CLINIC_RULES = {
    "botox": "Injectables", "filler": "Injectables", "b12": "Injectables", "semaglutide": "Weight Loss",
    "membership": "Memberships", "consultation": "Consultations", "peel": "Skin Care",
    "hydrafacial": "Skin Care", "laser": "Laser",
}

DEMO_TENANTS: list[DemoTenant] = [
    DemoTenant("downtown-medical", "Downtown Medical", [Connection(
        "mx_merchant", "/mx",
        {"merchant_id": 1000095245, "consumer_key": "downtown-key", "consumer_secret": "downtown-secret"},
        {"category_rules": CLINIC_RULES},
    )]),
    DemoTenant("northside-clinic", "Northside Clinic", [Connection(
        "mx_merchant", "/mx",
        {"merchant_id": 1000095246, "consumer_key": "northside-key", "consumer_secret": "northside-secret"},
        {"category_rules": {**CLINIC_RULES, "iv hydration": "Wellness"}},
    )]),
    # The eSIM shop (seed 001): its three provider accounts and its Slack hook, in failover order.
    DemoTenant("numnaroad", "NumnaRoad", [
        Connection("esimcard", "/esimcard", {"email": "demo@esimcard.test", "password": "demo-password"},
                   {"margin_pct": 35, "round_to": "0.99", "stock_feed_url": "/_sandbox/esimcard/stock"}),
        Connection("mobimatter", "/mobimatter", {"merchant_id": "mm-demo-merchant", "api_key": "mm-demo-key"},
                   {"margin_pct": 35, "round_to": "0.99", "stock_feed_url": "/_sandbox/mobimatter/stock"}),
        Connection("airalo", "/airalo", {"client_id": "airalo-demo-client", "client_secret": "airalo-demo-secret"},
                   {"margin_pct": 35, "round_to": "0.99", "stock_feed_url": "/_sandbox/airalo/stock"}),
        Connection("slack", "/slack", {"hook_path": "/services/T00SANDBOX/B00SANDBOX/sandbox0webhook0token00001"}),
        # Its Stripe account (the webhook secret is added once the endpoint exists: storehouse.demo_storefront).
        Connection("stripe", "/stripe", {"secret_key": "sk_test_numnaroad_demo"}),
        Connection("resend", "/resend", {"api_key": "re_sandbox_storehouse_key"},
                   {"from": "NumnaRoad <orders@numnaroad.test>"}),
    ]),
    # Dispensaries on the POS systems (seed 004) and an SAQ importer on Portaus (seed 000): each POS
    # module names its demo account (PROVIDER.demo), so a new POS brings its own demo tenant.
    *(DemoTenant(p.demo.tenant_id, p.demo.name, [Connection(p.system, p.demo.path, p.demo.credentials,
                                                             p.demo.options)])
      for p in POS_PROVIDERS if p.demo is not None),
]


# Credentials the running services add to a demo connection after it is registered (the Stripe
# endpoints' signing secrets: storehouse.demo_storefront); registering again keeps them.
ADDED_LATER = ("webhook_secret",)


def register_demo_tenants(engine: sa.Engine, sandbox_url: str) -> list[DemoTenant]:
    """Register (or re-register) the demo tenants; what a running `storehouse up` stored in
    them meanwhile (``ADDED_LATER``) is kept, so its Stripe webhooks still verify."""
    with engine.begin() as conn:
        for tenant in DEMO_TENANTS:
            add_tenant(conn, tenant.tenant_id, tenant.name)
            for c in tenant.connections:
                before = get_connection(conn, tenant.tenant_id, c.system)
                kept = {k: before.credentials[k] for k in ADDED_LATER if before and k in before.credentials}
                set_connection(conn, tenant.tenant_id, c.system, f"{sandbox_url}{c.path}",
                               {**c.credentials, **kept}, c.options)
    return DEMO_TENANTS


def webhook_notes(engine: sa.Engine, tenants: list[DemoTenant], public_url: str) -> list[str]:
    """The POS webhook URL of each demo tenant, for when `storehouse api` serves them; a token
    issued now (the first demo on this warehouse) is in these lines and nowhere else."""
    from commerce.pos_webhooks import setup_note
    from warehouse.tenants import get_connection

    with engine.begin() as conn:
        notes = [setup_note(conn, get_connection(conn, t.tenant_id, c.system), public_url)
                 for t in tenants for c in t.connections]
    return [note for note in notes if note]
