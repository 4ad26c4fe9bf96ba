"""A studio for the studio tests: its business details, a client, staff users with an API key
each, and a client who signs in (role customer, ``customer_id`` = their studio client id)."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from people.users import create_key, create_user, grant
from studio import clients
from studio.activity import Actor
from studio.business import save_business
from studio.db import writing
from tests.people_world import PASSWORD, PASSWORDS
from warehouse.tenants import add_tenant

STAFF = Actor("staff")
BUSINESS = dict(name="Print Sydney Test", abn="51 824 753 556", address="1 George St, Sydney NSW 2000",
                email="hello@print.test", bank_name="Test Bank", bank_bsb="062-000", bank_account="12345678",
                bank_account_name="Print Sydney Pty Ltd")


@dataclass
class Studio:
    tenant: str
    client_id: int
    other_client_id: int
    keys: dict[str, str] = field(default_factory=dict)  # role -> API key
    emails: dict[str, str] = field(default_factory=dict)  # role -> email


def make_studio(engine: sa.Engine, tenant: str, roles: tuple[str, ...] = ("tenant_owner", "viewer", "nurse")) -> Studio:
    with engine.begin() as conn:
        add_tenant(conn, tenant, "Print Sydney Test")
    with writing(engine) as conn:
        save_business(conn, tenant, STAFF, **BUSINESS)
        mine = clients.create_client(conn, tenant, STAFF, name="Ada Client", email="ada@client.test")["id"]
        other = clients.create_client(conn, tenant, STAFF, name="Bob Other", email="bob@client.test")["id"]
    studio = Studio(tenant, mine, other)
    with engine.begin() as conn:
        for role in (*roles, "customer", "other_customer"):
            email = f"{role}@{tenant}.test"
            user = create_user(conn, PASSWORDS, email, role, PASSWORD)
            customer = {"customer": str(mine), "other_customer": str(other)}.get(role)
            grant(conn, user, tenant, "customer" if customer else role, customer_id=customer)
            studio.keys[role] = create_key(conn, user, "studio tests").key
            studio.emails[role] = email
    return studio


def items(*prices: str) -> list[dict]:
    return [{"description": f"Part {i}", "quantity": "1", "unit_price": p} for i, p in enumerate(prices, 1)]
