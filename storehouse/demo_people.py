"""The demo's staff: one user per role on the demo clinics, and how to sign in as each.

They share one password, printed by the demo: they exist only in the demo's own warehouse.
"""

from __future__ import annotations

import sqlalchemy as sa

from people.credentials import Passwords
from people.roles import ROLE_PERMISSIONS
from people.settings import PeopleSettings
from people.users import create_user, find_user, grant
from warehouse.tables.mx import invoices

CLINICS = ("downtown-medical", "northside-clinic")
PASSWORD = "storehouse-demo-password"


def demo_users(engine: sa.Engine, public_url: str) -> list[str]:
    """Create (or keep) the demo users and grants; the lines telling how to sign in as each."""
    s = PeopleSettings()
    passwords = Passwords(s.argon2_memory_kib, s.argon2_time_cost)
    home = CLINICS[0]
    lines = []
    with engine.begin() as conn:
        customer = conn.execute(sa.select(invoices.c.customer_id).where(
            invoices.c.tenant_id == home, invoices.c.customer_id.is_not(None)).order_by(invoices.c.id).limit(1)
        ).scalar()
        for role in ROLE_PERMISSIONS:
            if role == "customer" and customer is None:
                continue
            email = f"{role.replace('_', '-')}@{home}.demo"
            user = find_user(conn, email)
            user_id = user["id"] if user else create_user(conn, passwords, email, role.replace("_", " ").title(),
                                                          PASSWORD, super_admin=role == "super_admin")
            where = "every tenant"
            if role != "super_admin":
                tenants = CLINICS if role == "investor" else (home,)
                for tenant in tenants:
                    grant(conn, user_id, tenant, role, customer_id=str(customer) if role == "customer" else None)
                where = " and ".join(tenants)
            lines.append(f"{role:<13} {email:<36} on {where}")
    lines.append(f"password (all): {PASSWORD}")
    lines.append(f"sign in: curl -s -d username=nurse@{home}.demo -d password={PASSWORD} {public_url}/auth/token")
    lines.append(f"then:    curl -s -H 'Authorization: Bearer <access_token>' {public_url}/me")
    return lines
