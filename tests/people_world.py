"""A small world for the staff API tests: two tenants with MX transactions and invoices, and a user
per role on the first (plus an expired grant, a revoked grant, a live and a revoked API key)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from people.credentials import Passwords
from people.roles import ROLE_PERMISSIONS
from people.users import create_key, create_user, grant, revoke, revoke_key
from tests.api_storefront import settings_for
from warehouse.tables.mx import invoice_lines, invoices, transactions
from warehouse.tables.studio import studio_business
from warehouse.tenants import add_tenant
from warehouse.types import now_utc

PASSWORD = "correct horse battery"
PASSWORDS = Passwords(1024, 1)  # the tests' own users: cheap hashes (the API verifies any argon2id hash)
CUSTOMER_ID = 7001
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def seed_records(engine: sa.Engine, tenant_id: str, n: int, marker: str) -> None:
    """``n`` transactions an hour apart; every other one linked to an invoice with two lines.
    Invoices alternate between customer ``CUSTOMER_ID`` and another; names carry ``marker``."""
    tx, inv, lines = [], [], []
    for i in range(1, n + 1):
        linked = i % 2 == 0
        if linked:
            inv.append(dict(tenant_id=tenant_id, id=i, invoice_number=f"INV-{i}", status="Paid", total_amount="30.00",
                            customer_id=CUSTOMER_ID if i % 4 == 0 else 9000 + i, customer_name=f"{marker} {i}",
                            invoice_date=START + dt.timedelta(hours=i), line_count=2, primary_product="Botox"))
            lines += [dict(tenant_id=tenant_id, invoice_id=i, line_id=j, product_name=name, quantity="1", price=price,
                           total_amount=price) for j, (name, price) in enumerate((("Botox", "20.00"),
                                                                                   ("Filler", "10.00")), 1)]
        tx.append(dict(tenant_id=tenant_id, id=i, merchant_id=1, amount=f"{i}.50",
                       status="Approved" if i % 3 else "Declined", created_at=START + dt.timedelta(hours=i),
                       customer_name=f"{marker} {i}", invoice_number=f"INV-{i}" if linked else None,
                       invoice_id=i if linked else None, has_invoice=linked,
                       product_category="Injectables" if linked else None))
    with engine.begin() as conn:
        if inv:
            conn.execute(sa.insert(invoices), inv)
            conn.execute(sa.insert(invoice_lines), lines)
        conn.execute(sa.insert(transactions), tx)


@dataclass
class World:
    own: str
    foreign: str
    users: dict[str, str] = field(default_factory=dict)  # caller -> email
    keys: dict[str, str] = field(default_factory=dict)  # caller -> API key


def make_world(engine: sa.Engine, tenant_id: str, n: int = 12) -> World:
    world = World(tenant_id, f"{tenant_id}-x")
    with engine.begin() as conn:
        add_tenant(conn, world.own, "Downtown Medical")
        add_tenant(conn, world.foreign, "Northside Clinic")
        for tenant in (world.own, world.foreign):  # studios too, so the matrix reaches the studio routes
            conn.execute(sa.insert(studio_business).values(tenant_id=tenant, name=f"{tenant} studio"))
    seed_records(engine, world.own, n, "OWN")
    seed_records(engine, world.foreign, n, "FOREIGN")
    with engine.begin() as conn:
        def user(caller: str, **kw) -> str:
            email = f"{caller}@{tenant_id}.test"
            world.users[caller] = email
            return create_user(conn, PASSWORDS, email, caller, PASSWORD, **kw)

        user("super_admin", super_admin=True)
        for role in ROLE_PERMISSIONS:
            if role != "super_admin":
                grant(conn, user(role), world.own, role,
                      customer_id=str(CUSTOMER_ID) if role == "customer" else None)
        grant(conn, user("expired"), world.own, "clinic_staff", expires_at=now_utc() - dt.timedelta(seconds=1))
        inactive = user("inactive")
        grant(conn, inactive, world.own, "tenant_admin")
        revoke(conn, inactive, world.own)
        machine = user("machine")
        grant(conn, machine, world.own, "clinic_staff")
        world.keys["key"] = create_key(conn, machine, "live").key
        revoked = create_key(conn, machine, "revoked")
        revoke_key(conn, machine, revoked.prefix)
        world.keys["revoked_key"] = revoked.key
    return world


def client(engine: sa.Engine, warehouse_url: str, **overrides) -> TestClient:
    settings = settings_for(warehouse_url, 8000, worker_enabled=False, **overrides)
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def sign_in(c: TestClient, email: str, password: str = PASSWORD) -> dict:
    answer = c.post("/auth/token", data={"username": email, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
