"""Sign-in: passwords (argon2id), access tokens, refresh with rotation, revocation, API keys,
throttled failures, and /me."""

from __future__ import annotations

import datetime as dt
import time

import sqlalchemy as sa

from people.users import find_user, grant
from tests.people_world import PASSWORD, bearer, client, make_world, sign_in
from warehouse.tables.people import api_keys, user_sessions, users
from warehouse.types import now_utc


def test_passwords_are_stored_as_argon2id_and_wrong_ones_refused(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash).where(users.c.email == world.users["nurse"])).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with client(engine, warehouse_url) as c:
        wrong = c.post("/auth/token", data={"username": world.users["nurse"], "password": "not it at all"})
        unknown = c.post("/auth/token", data={"username": "nobody@nowhere.test", "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["type"].endswith("/invalid-credentials")
        tokens = sign_in(c, world.users["nurse"].upper())  # emails are case-insensitive
        assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
        assert c.get("/me", headers=bearer(tokens["access_token"])).status_code == 200
    with engine.connect() as conn:
        row = conn.execute(sa.select(users.c.last_login_at, users.c.password_hash)
                           .where(users.c.email == world.users["nurse"])).one()
    assert row.last_login_at is not None
    # Hashed under cheaper settings (the test world's): re-hashed under the current ones at sign-in.
    assert stored.split("$")[3].startswith("m=1024,") and row.password_hash.split("$")[3].startswith("m=19456,")


def test_failed_sign_ins_are_throttled_per_account_and_per_client(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    with client(engine, warehouse_url) as c:
        target = world.users["viewer"]
        codes = [c.post("/auth/token", data={"username": target, "password": f"guess {i}"}).status_code
                 for i in range(7)]
        assert codes == [401] * 5 + [429] * 2
        throttled = c.post("/auth/token", data={"username": target, "password": PASSWORD})
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1  # even the right one waits
        # The same client, other accounts: its own budget is spent too.
        assert c.post("/auth/token", data={"username": world.users["nurse"], "password": "x"}).status_code == 429
    with client(engine, warehouse_url, trust_forwarded_for=True) as c:
        # Per account: from ever-new clients, one account still gets only its burst of failures.
        target = world.users["investor"]
        codes = [c.post("/auth/token", data={"username": target, "password": f"guess {i}"},
                        headers={"X-Forwarded-For": f"10.1.0.{i}"}).status_code for i in range(7)]
        assert codes == [401] * 5 + [429] * 2
        ok = c.post("/auth/token", data={"username": world.users["nurse"], "password": PASSWORD},
                    headers={"X-Forwarded-For": "10.2.0.1"})
        assert ok.status_code == 200  # another account from another client is not held up


def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    with client(engine, warehouse_url) as c:
        first = sign_in(c, world.users["viewer"])
        second = c.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
        assert second["refresh_token"] != first["refresh_token"]
        assert c.get("/me", headers=bearer(second["access_token"])).status_code == 200
        # The spent token again: refused, and the session it belonged to is over (a copy was stolen).
        replay = c.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert replay.status_code == 401 and replay.headers["content-type"] == "application/problem+json"
        assert c.get("/me", headers=bearer(second["access_token"])).status_code == 401
        assert c.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401


def test_revoking_a_session_refuses_its_access_token_at_once(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    with client(engine, warehouse_url) as c:
        tokens = sign_in(c, world.users["clinic_staff"])
        other = sign_in(c, world.users["clinic_staff"])
        url = f"/tenants/{world.own}/transactions"
        assert c.get(url, headers=bearer(tokens["access_token"])).status_code == 200
        assert c.post("/auth/revoke", json={"refresh_token": tokens["refresh_token"]}).status_code == 204
        assert c.get(url, headers=bearer(tokens["access_token"])).status_code == 401
        assert c.get(url, headers=bearer(other["access_token"])).status_code == 200  # another session lives on
    with engine.connect() as conn:
        stored = conn.execute(sa.select(user_sessions.c.refresh_sha256)).scalars().all()
    assert tokens["refresh_token"] not in stored and len(stored[0]) == 64


def test_expired_access_tokens_and_forged_ones_are_refused(engine, warehouse_url, tenant_id, monkeypatch):
    world = make_world(engine, tenant_id, n=2)
    monkeypatch.setenv("STOREHOUSE_PEOPLE_ACCESS_TOKEN_S", "10")
    with client(engine, warehouse_url) as c:
        tokens = sign_in(c, world.users["viewer"])
        assert tokens["expires_in"] == 10
        auth = c.app.state.people
        claims = auth.access_signer.read(tokens["access_token"])
        stale = auth.access_signer.sign({"sub": claims["sub"], "sid": claims["sid"]}, -1)
        assert c.get("/me", headers=bearer(stale)).status_code == 401
        forged = tokens["access_token"][:-4] + ("AAAA" if not tokens["access_token"].endswith("AAAA") else "BBBB")
        assert c.get("/me", headers=bearer(forged)).status_code == 401
        invite_signed = auth.invitation_signer.sign({"sub": claims["sub"], "sid": claims["sid"]}, 60)
        assert c.get("/me", headers=bearer(invite_signed)).status_code == 401  # another purpose's key


def test_api_keys_are_shown_once_stored_hashed_named_and_revocable(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    with client(engine, warehouse_url) as c:
        session = bearer(sign_in(c, world.users["clinic_staff"])["access_token"])
        made = c.post("/me/keys", json={"name": "nightly export"}, headers=session)
        assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
        key = made.json()["key"]
        assert key.startswith("shk_")
        url = f"/tenants/{world.own}/invoices"
        assert c.get(url, headers=bearer(key)).status_code == 200
        listed = c.get("/me/keys", headers=session).json()
        assert [(k["name"], k["prefix"]) for k in listed] == [("nightly export", made.json()["prefix"])]
        assert listed[0]["last_used_at"] is not None and "key" not in listed[0]
        with engine.connect() as conn:
            assert key not in str(conn.execute(sa.select(api_keys)).all())
        tampered = key[:-2] + ("xy" if not key.endswith("xy") else "zz")
        assert c.get(url, headers=bearer(tampered)).status_code == 401
        assert c.delete(f"/me/keys/{made.json()['prefix']}", headers=session).status_code == 204
        assert c.get(url, headers=bearer(key)).status_code == 401


def test_me_lists_live_grants_with_their_permissions(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    with engine.begin() as conn:
        nurse = find_user(conn, world.users["nurse"])["id"]
        grant(conn, nurse, world.foreign, "viewer", overrides={"add": ["data.export"]})
    with client(engine, warehouse_url) as c:
        me = c.get("/me", headers=bearer(sign_in(c, world.users["nurse"])["access_token"])).json()
        assert me["email"] == world.users["nurse"] and me["super_admin"] is False and me["via"] == "session"
        assert {t["tenant_id"]: (t["role"], t["permissions"]) for t in me["tenants"]} == {
            world.own: ("nurse", ["invoices.update_data_sent", "invoices.view"]),
            world.foreign: ("viewer", ["data.export", "invoices.view", "studio.view", "transactions.view"]),
        }
        expired = c.get("/me", headers=bearer(sign_in(c, world.users["expired"])["access_token"])).json()
        assert expired["tenants"] == []
        with engine.begin() as conn:  # an expiry reached between two requests counts at once
            grant(conn, nurse, world.foreign, "viewer", expires_at=now_utc() + dt.timedelta(milliseconds=300))
        time.sleep(0.4)
        me = c.get("/me", headers=bearer(sign_in(c, world.users["nurse"])["access_token"])).json()
        assert [t["tenant_id"] for t in me["tenants"]] == [world.own]
        admin = c.get("/me", headers=bearer(sign_in(c, world.users["super_admin"])["access_token"])).json()
        assert admin["super_admin"] and {world.own, world.foreign} <= {t["tenant_id"] for t in admin["tenants"]}
