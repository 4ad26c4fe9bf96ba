"""Users of a tenant: invitations by email (the sandbox's Resend, over HTTP) with a signed, expiring
link, limited to what the inviter's role may grant; role and expiry changes; revocation; the audit log."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse

import httpx
import sqlalchemy as sa

from people.users import find_user
from tests.api_storefront import RESEND_KEY
from tests.people_world import bearer, client, make_world, sign_in
from warehouse.tables.people import invitations
from warehouse.tenants import set_connection
from warehouse.types import now_utc


def _link_token(sandbox_url: str, email: str) -> str:
    got = httpx.get(f"{sandbox_url}/_sandbox/resend/emails").json()["emails"]
    (mail,) = [e for e in got if email in e["to"]]
    link = next(word for word in mail["text"].split() if "/invitations/accept?token=" in word)
    return parse_qs(urlparse(link).query)["token"][0]


def test_invitation_by_email_to_a_new_account(engine, warehouse_url, tenant_id, sandbox_reset):
    world = make_world(engine, tenant_id, n=2)
    httpx.put(f"{sandbox_reset.url}/_sandbox/resend/limits", json={"emails": {"limit": 1000, "window_s": 1}})
    with engine.begin() as conn:
        set_connection(conn, world.own, "resend", f"{sandbox_reset.url}/resend", {"api_key": RESEND_KEY},
                       {"from": "Clinic <staff@clinic.test>", "rate_limit": None})
    with client(engine, warehouse_url) as c:
        admin = bearer(sign_in(c, world.users["tenant_admin"])["access_token"])
        url = f"/tenants/{world.own}/invitations"
        # A tenant_admin may grant only clinic_staff, nurse and viewer, and no permission it lacks.
        refused = c.post(url, json={"email": "boss@new.test", "role": "tenant_owner"}, headers=admin)
        assert refused.status_code == 403 and "may grant only" in refused.json()["detail"]
        assert c.post(url, json={"email": "n@new.test", "role": "nurse", "permissions": {"add": ["data.export"]}},
                      headers=admin).status_code == 403
        assert c.post(url, json={"email": "n@new.test", "role": "nurse", "permissions": {"add": ["nope"]}},
                      headers=admin).status_code == 422
        email = f"new-nurse@{tenant_id}.test"
        made = c.post(url, json={"email": email, "role": "nurse"}, headers=admin)
        assert made.status_code == 201, made.text
        token = _link_token(sandbox_reset.url, email)
        shown = c.get("/invitations/accept", params={"token": token}).json()
        assert (shown["tenant"], shown["role"], shown["email"]) == ("Downtown Medical", "nurse", email)
        assert c.post("/invitations/accept", json={"token": token + "x", "password": "0123456789"}).status_code == 404
        done = c.post("/invitations/accept", json={"token": token, "name": "Nina", "password": "a fine password"})
        assert done.status_code == 201 and done.json()["new_account"] is True
        assert c.post("/invitations/accept", json={"token": token, "password": "a fine password"}).status_code == 404
        me = c.get("/me", headers=bearer(sign_in(c, email, "a fine password")["access_token"])).json()
        assert [(t["tenant_id"], t["role"]) for t in me["tenants"]] == [(world.own, "nurse")]
        # A customer of the tenant, invited to the portal: the grant names which customer they are.
        owner = bearer(sign_in(c, world.users["tenant_owner"])["access_token"])
        assert c.post(url, json={"email": f"client@{tenant_id}.test", "role": "customer"},
                      headers=owner).status_code == 422
        assert c.post(url, json={"email": f"client@{tenant_id}.test", "role": "customer", "customer_id": "7001"},
                      headers=admin).status_code == 403  # not a role a tenant_admin grants
        assert c.post(url, json={"email": f"client@{tenant_id}.test", "role": "customer", "customer_id": "7001"},
                      headers=owner).status_code == 201
        client_token = _link_token(sandbox_reset.url, f"client@{tenant_id}.test")
        assert c.post("/invitations/accept", json={"token": client_token, "password": "client password"}
                      ).status_code == 201
        portal = c.get("/me", headers=bearer(sign_in(c, f"client@{tenant_id}.test", "client password")["access_token"]))
        assert [(t["role"], t["customer_id"]) for t in portal.json()["tenants"]] == [("customer", "7001")]
        # Resend failing: 502, and no invitation is left behind.
        httpx.put(f"{sandbox_reset.url}/_sandbox/faults/resend", json={"fail_next_5xx": 20})
        failed = c.post(url, json={"email": f"unlucky@{tenant_id}.test", "role": "viewer"}, headers=admin)
        httpx.delete(f"{sandbox_reset.url}/_sandbox/faults")
        assert failed.status_code == 502 and failed.json()["type"].endswith("/email-failed")
        with engine.connect() as conn:
            assert conn.execute(sa.select(invitations.c.id).where(
                invitations.c.email == f"unlucky@{tenant_id}.test")).first() is None
        # An expired link is refused even though its invitation is still open.
        again = c.post(url, json={"email": f"late@{tenant_id}.test", "role": "viewer"}, headers=admin).json()
        stale = c.app.state.people.invitation_signer.sign({"inv": again["id"]}, -1)
        assert c.post("/invitations/accept", json={"token": stale, "password": "0123456789"}).status_code == 404
    with engine.connect() as conn:
        row = conn.execute(sa.select(invitations).where(invitations.c.id == again["id"])).mappings().one()
    assert row["accepted_at"] is None and row["expires_at"] > now_utc()


def test_invitations_need_an_email_connection(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    with client(engine, warehouse_url) as c:
        owner = bearer(sign_in(c, world.users["tenant_owner"])["access_token"])
        answer = c.post(f"/tenants/{world.own}/invitations", json={"email": "a@b.test", "role": "viewer"},
                        headers=owner)
        assert answer.status_code == 409 and answer.json()["type"].endswith("/no-email-connection")


def test_owner_changes_role_and_expiry_revokes_and_reads_the_audit_log(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=4)
    with engine.connect() as conn:
        viewer_id = find_user(conn, world.users["viewer"])["id"]
    with client(engine, warehouse_url) as c:
        owner = bearer(sign_in(c, world.users["tenant_owner"])["access_token"])
        viewer = bearer(sign_in(c, world.users["viewer"])["access_token"])
        base = f"/tenants/{world.own}/users"
        listed = {u["email"]: u for u in c.get(base, headers=owner).json()}
        assert listed[world.users["viewer"]]["role"] == "viewer" and listed[world.users["expired"]]["live"] is False
        assert c.get(f"/tenants/{world.own}/invoices/4", headers=viewer).json()["data_sent"] is False
        assert c.put(f"/tenants/{world.own}/invoices/4/data-sent", json={"data_sent": True},
                     headers=viewer).status_code == 403
        changed = c.patch(f"{base}/{viewer_id}", json={"role": "nurse"}, headers=owner)
        assert changed.status_code == 200 and changed.json()["role"] == "nurse"
        assert c.put(f"/tenants/{world.own}/invoices/4/data-sent", json={"data_sent": True},
                     headers=viewer).status_code == 200  # the same token: the new role counts at once
        past = (now_utc() - dt.timedelta(seconds=1)).isoformat()
        assert c.patch(f"{base}/{viewer_id}", json={"expires_at": past}, headers=owner).status_code == 200
        assert c.get(f"/tenants/{world.own}/invoices", headers=viewer).status_code == 403
        assert c.patch(f"{base}/{viewer_id}", json={"expires_at": None}, headers=owner).json()["expires_at"] is None
        assert c.get(f"/tenants/{world.own}/invoices", headers=viewer).status_code == 200
        assert c.delete(f"{base}/{viewer_id}", headers=owner).status_code == 204
        assert c.get(f"/tenants/{world.own}/invoices", headers=viewer).status_code == 403
        assert c.delete(f"{base}/{viewer_id}", headers=owner).status_code == 404
        assert c.patch(f"{base}/{viewer_id}", json={"role": "emperor"}, headers=owner).status_code == 403
        admin = bearer(sign_in(c, world.users["tenant_admin"])["access_token"])
        assert c.get(f"/tenants/{world.own}/audit", headers=admin).status_code == 403  # owners read it
        log = c.get(f"/tenants/{world.own}/audit", headers=owner).json()
        actions = [e["action"] for e in log]
        assert actions[:4] == ["revoke", "grant.expiry", "grant.expiry", "invoices.update_data_sent"]
        assert "grant" in actions and all(e["tenant_id"] == world.own for e in log)
        assert log[0]["detail"] == {"user_id": viewer_id} and log[0]["actor_id"] is not None
        foreign = c.get(f"/tenants/{world.foreign}/audit", headers=owner)
        assert foreign.status_code == 403
