"""Users, their grants per tenant and their API keys: the services behind ``storehouse users`` and
the staff API's user routes. Every grant and revocation is written to the audit log, and makes
this process's workers forget what they remembered of credentials (``people.credential_cache``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from people import audit, credential_cache
from people.credentials import NewKey, Passwords, new_api_key
from people.roles import ROLE_PERMISSIONS, check_overrides, effective
from warehouse.tables.core import tenants
from warehouse.tables.people import api_keys, user_sessions, user_tenant_permissions, users
from warehouse.types import now_utc


class PeopleError(ValueError):
    """A refusal a caller can show as it is (the CLI exits 2, the API answers 4xx)."""

    def __init__(self, message: str, status: int = 422, kind: str = "invalid-request") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


def normal_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise PeopleError(f"{email[:64]!r} is not an email address")
    return email


def find_user(conn: sa.Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(users).where(users.c.email == email.strip().lower())).mappings().one_or_none()
    return dict(row) if row else None


def get_user(conn: sa.Connection, user_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).mappings().one_or_none()
    return dict(row) if row else None


def create_user(conn: sa.Connection, passwords: Passwords, email: str, name: str, password: str | None,
                *, super_admin: bool = False, actor_id: str | None = None) -> str:
    email = normal_email(email)
    if find_user(conn, email):
        raise PeopleError(f"a user {email} exists already", 409, "user-exists")
    if password is not None and len(password) < 10:
        raise PeopleError("a password needs at least 10 characters")
    user_id = str(uuid.uuid4())
    conn.execute(sa.insert(users).values(id=user_id, email=email, name=name.strip() or email,
                                         password_hash=passwords.hash(password) if password else None,
                                         super_admin=super_admin))
    if super_admin:
        audit.record(conn, actor_id, None, "grant", user=email, role="super_admin")
    return user_id


def set_password(conn: sa.Connection, passwords: Passwords, user_id: str, password: str) -> None:
    if len(password) < 10:
        raise PeopleError("a password needs at least 10 characters")
    conn.execute(sa.update(users).where(users.c.id == user_id).values(password_hash=passwords.hash(password)))


def list_users(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(users.c.id, users.c.email, users.c.name, users.c.status, users.c.super_admin,
                                  users.c.created_at, users.c.last_login_at).order_by(users.c.email)).mappings()
    return [dict(r) for r in rows]


def tenant_exists(conn: sa.Connection, tenant_id: str) -> bool:
    return conn.execute(sa.select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)).first() is not None


def grant(conn: sa.Connection, user_id: str, tenant_id: str, role: str, *, overrides: dict | None = None,
          expires_at: dt.datetime | None = None, customer_id: str | None = None,
          actor_id: str | None = None) -> None:
    """Give ``user_id`` ``role`` on ``tenant_id`` (replacing any role it had there: one per tenant)."""
    if role not in ROLE_PERMISSIONS or role == "super_admin":
        raise PeopleError(f"unknown tenant role {role!r}; roles: "
                          f"{', '.join(r for r in ROLE_PERMISSIONS if r != 'super_admin')}")
    if (role == "customer") != bool(customer_id):
        raise PeopleError("a customer grant names the customer (customer_id), and only a customer grant does")
    try:
        overrides = check_overrides(overrides)
    except ValueError as exc:
        raise PeopleError(str(exc)) from None
    if not tenant_exists(conn, tenant_id):
        raise PeopleError(f"there is no tenant {tenant_id!r}", 404, "tenant-not-found")
    g = user_tenant_permissions.c
    values = dict(role=role, permissions=overrides, customer_id=customer_id, granted_by=actor_id,
                  granted_at=now_utc(), expires_at=expires_at, is_active=True, updated_at=now_utc())
    done = conn.execute(sa.update(user_tenant_permissions).where(g.user_id == user_id, g.tenant_id == tenant_id)
                        .values(**values)).rowcount
    if not done:
        conn.execute(sa.insert(user_tenant_permissions).values(id=str(uuid.uuid4()), user_id=user_id,
                                                               tenant_id=tenant_id, **values))
    audit.record(conn, actor_id, tenant_id, "grant", user_id=user_id, role=role, overrides=overrides,
                 expires_at=expires_at.isoformat() if expires_at else None)
    credential_cache.changed()  # a role replaced may hold less


def revoke(conn: sa.Connection, user_id: str, tenant_id: str, *, actor_id: str | None = None) -> bool:
    g = user_tenant_permissions.c
    done = conn.execute(sa.update(user_tenant_permissions)
                        .where(g.user_id == user_id, g.tenant_id == tenant_id, g.is_active.is_(True))
                        .values(is_active=False, updated_at=now_utc())).rowcount > 0
    if done:
        audit.record(conn, actor_id, tenant_id, "revoke", user_id=user_id)
        credential_cache.changed()
    return done


def set_expiry(conn: sa.Connection, user_id: str, tenant_id: str, expires_at: dt.datetime | None,
               *, actor_id: str | None = None) -> bool:
    g = user_tenant_permissions.c
    done = conn.execute(sa.update(user_tenant_permissions).where(g.user_id == user_id, g.tenant_id == tenant_id)
                        .values(expires_at=expires_at, updated_at=now_utc())).rowcount > 0
    if done:
        audit.record(conn, actor_id, tenant_id, "grant.expiry", user_id=user_id,
                     expires_at=expires_at.isoformat() if expires_at else None)
        credential_cache.changed()
    return done


def grants_of(conn: sa.Connection, user_id: str) -> list[dict[str, Any]]:
    """Every grant of the user, live or not, with its effective permissions and whether it is live."""
    g = user_tenant_permissions.c
    now = now_utc()
    rows = conn.execute(sa.select(user_tenant_permissions, tenants.c.name.label("tenant_name"))
                        .join(tenants, tenants.c.tenant_id == g.tenant_id)
                        .where(g.user_id == user_id).order_by(g.tenant_id)).mappings()
    return [{**dict(r), "live": bool(r["is_active"]) and (r["expires_at"] is None or r["expires_at"] > now),
             "effective": sorted(effective(r["role"], r["permissions"]))} for r in rows]


def tenant_users(conn: sa.Connection, tenant_id: str) -> list[dict[str, Any]]:
    g = user_tenant_permissions.c
    now = now_utc()
    rows = conn.execute(
        sa.select(users.c.id.label("user_id"), users.c.email, users.c.name, users.c.status, g.role, g.permissions,
                  g.granted_by, g.granted_at, g.expires_at, g.is_active, g.customer_id)
        .join(users, users.c.id == g.user_id).where(g.tenant_id == tenant_id).order_by(users.c.email)).mappings()
    return [{**dict(r), "live": bool(r["is_active"]) and (r["expires_at"] is None or r["expires_at"] > now)}
            for r in rows]


def create_key(conn: sa.Connection, user_id: str, name: str, *, actor_id: str | None = None) -> NewKey:
    if not name.strip() or len(name) > 100:
        raise PeopleError("an API key needs a name of 1 to 100 characters")
    key = new_api_key()
    conn.execute(sa.insert(api_keys).values(id=str(uuid.uuid4()), user_id=user_id, name=name.strip(),
                                            prefix=key.prefix, key_sha256=key.digest))
    audit.record(conn, actor_id or user_id, None, "key.create", user_id=user_id, name=name, prefix=key.prefix)
    return key


def list_keys(conn: sa.Connection, user_id: str) -> list[dict[str, Any]]:
    k = api_keys.c
    rows = conn.execute(sa.select(k.id, k.name, k.prefix, k.created_at, k.last_used_at, k.revoked_at)
                        .where(k.user_id == user_id).order_by(k.created_at)).mappings()
    return [dict(r) for r in rows]


def revoke_key(conn: sa.Connection, user_id: str, prefix: str, *, actor_id: str | None = None) -> bool:
    k = api_keys.c
    done = conn.execute(sa.update(api_keys).where(k.user_id == user_id, k.prefix == prefix, k.revoked_at.is_(None))
                        .values(revoked_at=now_utc())).rowcount > 0
    if done:
        audit.record(conn, actor_id or user_id, None, "key.revoke", user_id=user_id, prefix=prefix)
        credential_cache.changed()
    return done


def revoke_sessions(conn: sa.Connection, user_id: str) -> int:
    s = user_sessions.c
    done = conn.execute(sa.update(user_sessions).where(s.user_id == user_id, s.revoked_at.is_(None))
                        .values(revoked_at=now_utc())).rowcount
    credential_cache.changed()
    return done
