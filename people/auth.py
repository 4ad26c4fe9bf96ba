"""Sign-in and who is asking: passwords to sessions (short-lived access tokens, rotated refresh
tokens), API keys, and the grant lookup every staff request makes.

Access tokens carry only who (``sub``) and which session (``sid``); never roles or permissions.
A request's user, session or key, and grant on the tenant it names come from the database (one
indexed query), remembered by its worker process for at most ``auth_cache_s`` (under a second,
``people.credential_cache``): a revoked session, key or grant is refused by every worker within
that, by the worker that revoked it at once, and an expired one at once by all.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from people import credential_cache
from people.credential_cache import CredentialCache
from people.credentials import Passwords, Signer, key_prefix, new_refresh_token, same_digest, sha256
from people.roles import ALL, effective
from people.settings import PeopleSettings
from warehouse.tables.core import tenants
from warehouse.tables.people import api_keys, spent_refresh_tokens, user_sessions, user_tenant_permissions, users
from warehouse.types import now_utc


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    name: str
    super_admin: bool
    via: str  # "session" or "key"
    session_id: str | None = None


@dataclass(frozen=True)
class Access:
    """A principal's live grant on one tenant."""

    principal: Principal
    tenant_id: str
    role: str
    permissions: frozenset[str]
    customer_id: str | None = None  # set: only this customer's rows

    def allows(self, permission: str) -> bool:
        return ALL in self.permissions or permission in self.permissions


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


class Auth:
    def __init__(self, engine: sa.Engine, secret: bytes, settings: PeopleSettings | None = None) -> None:
        self.engine, self.settings = engine, settings or PeopleSettings()
        self.passwords = Passwords(self.settings.argon2_memory_kib, self.settings.argon2_time_cost)
        self.access_signer = Signer(secret, "access")
        self.invitation_signer = Signer(secret, "invitation")
        self.cache = CredentialCache(self.settings.auth_cache_s, self.settings.auth_cache_size)

    # -- sign-in --------------------------------------------------------------------------
    def sign_in(self, email: str, password: str) -> Tokens | None:
        """Tokens for the right password of an active user; None otherwise (same time either way)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users.c.id, users.c.password_hash, users.c.status)
                               .where(users.c.email == email.strip().lower())).one_or_none()
        if not self.passwords.verify(row.password_hash if row else None, password) or row.status != "active":
            return None
        values: dict = {"last_login_at": now_utc()}
        if self.passwords.needs_rehash(row.password_hash):  # hashed under older cost settings
            values["password_hash"] = self.passwords.hash(password)
        with self.engine.begin() as conn:
            conn.execute(sa.update(users).where(users.c.id == row.id).values(**values))
            return self._new_session(conn, row.id)

    def _new_session(self, conn: sa.Connection, user_id: str) -> Tokens:
        session_id, refresh = str(uuid.uuid4()), new_refresh_token()
        expires = now_utc() + dt.timedelta(seconds=self.settings.refresh_token_s)
        conn.execute(sa.insert(user_sessions).values(id=session_id, user_id=user_id, refresh_sha256=sha256(refresh),
                                                     expires_at=expires))
        return self._tokens(user_id, session_id, refresh)

    def _tokens(self, user_id: str, session_id: str, refresh: str) -> Tokens:
        ttl = self.settings.access_token_s
        return Tokens(self.access_signer.sign({"sub": user_id, "sid": session_id}, ttl), refresh, ttl)

    def refresh(self, refresh_token: str) -> Tokens | None:
        """New tokens for a live session's current refresh token, which is spent (rotated). A spent
        token presented again means it was copied: the whole session is revoked."""
        digest, s = sha256(refresh_token), user_sessions.c
        with self.engine.begin() as conn:
            spent = conn.execute(sa.select(spent_refresh_tokens.c.session_id)
                                 .where(spent_refresh_tokens.c.refresh_sha256 == digest)).scalar_one_or_none()
            if spent:
                conn.execute(sa.update(user_sessions).where(s.id == spent, s.revoked_at.is_(None))
                             .values(revoked_at=now_utc()))
                credential_cache.changed()
                return None
            row = conn.execute(sa.select(s.id, s.user_id).join(users, users.c.id == s.user_id)
                               .where(s.refresh_sha256 == digest, s.revoked_at.is_(None), s.expires_at > now_utc(),
                                      users.c.status == "active")).one_or_none()
            if row is None:
                return None
            fresh = new_refresh_token()
            # Only the request that still finds the old digest rotates it (two racing refreshes: one wins).
            if not conn.execute(sa.update(user_sessions).where(s.id == row.id, s.refresh_sha256 == digest)
                                .values(refresh_sha256=sha256(fresh))).rowcount:
                return None
            conn.execute(sa.insert(spent_refresh_tokens).values(refresh_sha256=digest, session_id=row.id))
            return self._tokens(row.user_id, row.id, fresh)

    def sign_out(self, refresh_token: str | None = None, session_id: str | None = None) -> bool:
        s = user_sessions.c
        where = s.id == session_id if session_id else s.refresh_sha256 == sha256(refresh_token or "")
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(user_sessions).where(where, s.revoked_at.is_(None))
                                .values(revoked_at=now_utc())).rowcount > 0
        credential_cache.changed()
        return done

    # -- who is asking --------------------------------------------------------------------
    def principal(self, bearer: str | None) -> Principal | None:
        return self.authorise(bearer)[0]

    def remembered(self, bearer: str | None, tenant_id: str | None = None
                   ) -> tuple[Principal | None, Access | None] | None:
        """``authorise``'s answer when it needs no database (a bearer it remembers, or one that
        cannot be any); None when it does. Never blocks, so an async dependency may call it."""
        if not bearer or len(bearer) > 4096:
            return None, None
        return self.cache.get((sha256(bearer), tenant_id))

    def authorise(self, bearer: str | None, tenant_id: str | None = None, conn: sa.Connection | None = None
                  ) -> tuple[Principal | None, Access | None]:
        """Who ``bearer`` is and, with ``tenant_id``, their live grant there: remembered, or one
        indexed query (on ``conn`` when given, so a request can read its data on the same connection)."""
        known = self.remembered(bearer, tenant_id)
        if known is not None:
            return known
        digest, read_at = sha256(bearer), credential_cache.generation()
        u, t, g = users.c, tenants.c, user_tenant_permissions.c
        prefix = key_prefix(bearer)
        if prefix:
            k = api_keys.c
            query = (sa.select(u.id, u.email, u.name, u.super_admin, k.id.label("key_id"), k.key_sha256,
                               k.last_used_at).select_from(users).join(api_keys, k.user_id == u.id)
                     .where(k.prefix == prefix, k.revoked_at.is_(None), u.status == "active"))
        else:
            claims = self.access_signer.read(bearer)
            if not claims or not isinstance(claims.get("sub"), str) or not isinstance(claims.get("sid"), str):
                return None, None
            s = user_sessions.c
            query = (sa.select(u.id, u.email, u.name, u.super_admin, s.expires_at.label("session_expires"))
                     .select_from(users).join(user_sessions, s.user_id == u.id)
                     .where(s.id == claims["sid"], u.id == claims["sub"], s.revoked_at.is_(None),
                            s.expires_at > now_utc(), u.status == "active"))
        if tenant_id is not None:
            query = (query.add_columns(t.tenant_id.label("live_tenant"), g.role, g.permissions, g.customer_id,
                                       g.expires_at.label("grant_expires"))
                     .outerjoin(tenants, sa.and_(t.tenant_id == tenant_id, t.status == "active"))
                     .outerjoin(user_tenant_permissions, sa.and_(
                         g.user_id == u.id, g.tenant_id == t.tenant_id, g.is_active.is_(True),
                         sa.or_(g.expires_at.is_(None), g.expires_at > now_utc()))))
        if conn is None:
            with self.engine.connect() as own:
                row = own.execute(query).one_or_none()
        else:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None, None
        ends: list[dt.datetime] = []  # when what the answer was read from stops being valid by itself
        if prefix:
            if not same_digest(row.key_sha256, bearer):
                return None, None
            self._touch(row.key_id, row.last_used_at)
            principal = Principal(row.id, row.email, row.name, bool(row.super_admin), "key")
        else:
            principal = Principal(row.id, row.email, row.name, bool(row.super_admin), "session", claims["sid"])
            ends += [row.session_expires, dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc)]
        if tenant_id is not None and row.live_tenant is None:
            return principal, None  # no such (active) tenant: not remembered, so invented ones cost no memory
        if tenant_id is None:
            answer: tuple[Principal, Access | None] = (principal, None)
        elif principal.super_admin:
            answer = (principal, Access(principal, tenant_id, "super_admin", frozenset({ALL})))
        elif row.role is None:
            answer = (principal, None)
        else:
            answer = (principal, Access(principal, tenant_id, row.role, effective(row.role, row.permissions),
                                        row.customer_id))
            if row.grant_expires is not None:
                ends.append(row.grant_expires)
        now = now_utc()
        self.cache.put((digest, tenant_id), answer, read_at,
                       min((e - now).total_seconds() for e in ends) if ends else None)
        return answer

    def _touch(self, key_id: str, last_used_at: dt.datetime | None) -> None:
        """Record a key's use, at most once per ``key_touch_s`` (not a write per request)."""
        now = now_utc()
        if last_used_at is None or (now - last_used_at).total_seconds() >= self.settings.key_touch_s:
            with self.engine.begin() as conn:
                conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))

    def live_grants(self, principal: Principal) -> list[Access]:
        """Every live grant of the principal (super admins: every active tenant), for ``/me``."""
        g, t = user_tenant_permissions.c, tenants.c
        with self.engine.connect() as conn:
            if principal.super_admin:
                ids = conn.execute(sa.select(t.tenant_id).where(t.status == "active").order_by(t.tenant_id)).scalars()
                return [Access(principal, tid, "super_admin", frozenset({ALL})) for tid in ids]
            rows = conn.execute(
                sa.select(g.tenant_id, g.role, g.permissions, g.customer_id).join(tenants, t.tenant_id == g.tenant_id)
                .where(g.user_id == principal.user_id, g.is_active.is_(True),
                       sa.or_(g.expires_at.is_(None), g.expires_at > now_utc()), t.status == "active")
                .order_by(g.tenant_id)).all()
        return [Access(principal, r.tenant_id, r.role, effective(r.role, r.permissions), r.customer_id) for r in rows]
