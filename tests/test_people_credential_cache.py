"""A worker remembers what a bearer resolved to for ``auth_cache_s`` (people.credential_cache): most
requests skip the lookup, yet a revocation written elsewhere is refused by a single app no later
than ``auth_cache_s`` after its commit, one made through the process at once, and an expiry at once."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
import sqlalchemy as sa

from people.auth import Auth
from people.settings import PeopleSettings
from people.users import find_user, grant, revoke_key
from tests.people_world import PASSWORD, bearer, client, make_world, sign_in
from warehouse.tables.people import api_keys, user_tenant_permissions
from warehouse.types import now_utc

TTL = 0.5


class Lookups:
    """Statements the engine runs that read (or write) ``table``."""

    def __init__(self, engine: sa.Engine, table: str, verb: str = "SELECT") -> None:
        self.engine, self.table, self.verb, self.count = engine, table, verb, 0

    def __enter__(self) -> "Lookups":
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(self.verb) and self.table in statement:
            self.count += 1


def _refused_within_ttl(get, status: int, revoked_at: float) -> None:
    """Every request that started ``TTL`` after the revocation's commit is refused, and one is."""
    while True:
        started = time.monotonic()
        answer = get()
        if answer.status_code == status:
            break
        assert answer.status_code == 200, answer.text
        assert started - revoked_at < TTL, f"allowed {started - revoked_at:.3f} s after the revocation"
    assert all(get().status_code == status for _ in range(5))  # and from then on


@pytest.fixture
def cached(monkeypatch):
    monkeypatch.setenv("STOREHOUSE_PEOPLE_AUTH_CACHE_S", str(TTL))


def test_a_key_revoked_elsewhere_is_refused_within_the_ttl_by_one_app(engine, warehouse_url, tenant_id, cached):
    world = make_world(engine, tenant_id, n=2)
    url, key = f"/tenants/{world.own}/invoices", bearer(world.keys["key"])
    with client(engine, warehouse_url) as c:
        assert c.app.state.people.cache.ttl_s == TTL
        with Lookups(engine, "api_keys") as lookups:
            for _ in range(20):
                assert c.get(url, headers=key).status_code == 200
        assert lookups.count < 10  # remembered, not read per request (20 in well under a second: 1)
        # As another process (the CLI, another worker) revokes it: nothing tells this one.
        with engine.begin() as conn:
            conn.execute(sa.update(api_keys).where(api_keys.c.prefix == world.keys["key"].split("_")[1])
                         .values(revoked_at=now_utc()))
        _refused_within_ttl(lambda: c.get(url, headers=key), 401, time.monotonic())


def test_a_grant_revoked_elsewhere_is_refused_within_the_ttl_by_one_app(engine, warehouse_url, tenant_id, cached):
    world = make_world(engine, tenant_id, n=2)
    url = f"/tenants/{world.own}/transactions"
    with client(engine, warehouse_url) as c:
        token, key = bearer(sign_in(c, world.users["clinic_staff"])["access_token"]), bearer(world.keys["key"])
        assert c.get(url, headers=token).status_code == c.get(url, headers=key).status_code == 200
        with engine.begin() as conn:
            g = user_tenant_permissions.c
            for caller in ("clinic_staff", "machine"):
                conn.execute(sa.update(user_tenant_permissions).values(is_active=False)
                             .where(g.user_id == find_user(conn, world.users[caller])["id"], g.tenant_id == world.own))
        revoked_at = time.monotonic()
        _refused_within_ttl(lambda: c.get(url, headers=token), 403, revoked_at)
        _refused_within_ttl(lambda: c.get(url, headers=key), 403, revoked_at)


def test_revocations_through_the_process_and_expiries_need_no_wait(engine, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    auth = Auth(engine, b"cache-test-secret", PeopleSettings(auth_cache_s=0.9))
    key = world.keys["key"]
    assert auth.authorise(key, world.own)[1].allows("transactions.view")
    with engine.begin() as conn:
        machine = find_user(conn, world.users["machine"])["id"]
        assert revoke_key(conn, machine, key.split("_")[1])
    assert auth.authorise(key, world.own) == (None, None)  # revoked here: forgotten at once

    tokens = auth.sign_in(world.users["viewer"], PASSWORD)
    assert auth.principal(tokens.access_token) is not None
    assert auth.sign_out(refresh_token=tokens.refresh_token)
    assert auth.principal(tokens.access_token) is None

    nurse = auth.sign_in(world.users["nurse"], PASSWORD).access_token
    with engine.begin() as conn:
        grant(conn, find_user(conn, world.users["nurse"])["id"], world.foreign, "viewer",
              expires_at=now_utc() + dt.timedelta(milliseconds=300))
    assert auth.authorise(nurse, world.foreign)[1].role == "viewer"
    time.sleep(0.35)  # past the grant's expiry, well within the cache's 0.9 s
    assert auth.authorise(nurse, world.foreign) == (auth.principal(nurse), None)


def test_the_cache_stays_bounded_and_skips_unknown_bearers_and_tenants(engine, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    auth = Auth(engine, b"cache-test-secret", PeopleSettings(auth_cache_s=0.9, auth_cache_size=3))
    for _ in range(50):
        assert auth.authorise(f"shk_{uuid.uuid4().hex[:12]}_nothing", world.own) == (None, None)
        assert auth.authorise(world.keys["key"], f"nowhere-{uuid.uuid4().hex}")[1] is None
    assert len(auth.cache) == 0
    tokens = [auth.sign_in(world.users[caller], PASSWORD).access_token
              for caller in ("viewer", "nurse", "clinic_staff")] + [world.keys["key"]]
    for bearer_ in tokens:
        for tenant in (world.own, world.foreign, None):
            assert auth.authorise(bearer_, tenant)[0] is not None
    assert len(auth.cache) == 3


def test_a_key_in_use_has_its_last_used_time_written_once_a_while_not_per_request(engine, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    auth = Auth(engine, b"cache-test-secret", PeopleSettings(auth_cache_s=0))  # every request a lookup
    with Lookups(engine, "api_keys", "UPDATE") as touches:
        for _ in range(30):
            assert auth.authorise(world.keys["key"], world.own)[1] is not None
    assert touches.count == 1
    with engine.connect() as conn:
        used = conn.execute(sa.select(api_keys.c.last_used_at)
                            .where(api_keys.c.prefix == world.keys["key"].split("_")[1])).scalar_one()
    assert abs((now_utc() - used).total_seconds()) < 60
