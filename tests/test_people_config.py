"""``config.update``: a tenant's connections and options through the staff API; credentials are
write-only and never reach an answer or the audit log."""

from __future__ import annotations

import sqlalchemy as sa

from tests.people_world import bearer, client, make_world, sign_in
from warehouse.tables.people import audit_log
from warehouse.tenants import get_connection


def test_owner_sets_a_connection_and_never_reads_its_credentials_back(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=2)
    secret = "consumer-secret-value-123"
    with client(engine, warehouse_url) as c:
        owner = bearer(sign_in(c, world.users["tenant_owner"])["access_token"])
        url = f"/tenants/{world.own}/connections"
        body = {"base_url": "https://api.mxmerchant.com", "credentials": {
            "consumer_key": "ck-1", "consumer_secret": secret, "merchant_id": "1000095245"}, "options": {}}
        put = c.put(f"{url}/mx_merchant", json=body, headers=owner)
        assert put.status_code == 200, put.text
        assert put.json()["credential_fields"] == ["consumer_key", "consumer_secret", "merchant_id"]
        listed = c.get(url, headers=owner)
        assert secret not in put.text + listed.text and "ck-1" not in listed.text
        # Options only: the stored credentials stay.
        kept = c.put(f"{url}/mx_merchant", json={"base_url": "https://sandbox.mxmerchant.com"}, headers=owner)
        assert kept.status_code == 200
        with engine.connect() as conn:
            stored = get_connection(conn, world.own, "mx_merchant")
        assert stored.credentials["consumer_secret"] == secret and stored.base_url == "https://sandbox.mxmerchant.com"
        wrong = c.put(f"{url}/mx_merchant", json={**body, "credentials": {"consumer_key": "k", "password": "p"}},
                      headers=owner)
        assert wrong.status_code == 422 and "password" in wrong.json()["detail"] and "'p'" not in wrong.text
        assert c.put(f"{url}/nonsense", json=body, headers=owner).status_code == 422
        assert c.put(f"{url}/mx_merchant", json={"base_url": "file:///etc/passwd"}, headers=owner).status_code == 422
        staff = bearer(sign_in(c, world.users["clinic_staff"])["access_token"])
        assert c.get(url, headers=staff).status_code == 403
        assert c.put(f"{url}/mx_merchant", json=body, headers=staff).status_code == 403
    with engine.connect() as conn:
        logged = conn.execute(sa.select(audit_log.c.detail).where(
            audit_log.c.tenant_id == world.own, audit_log.c.action == "config.update")
            .order_by(audit_log.c.id)).scalars().all()
    assert len(logged) == 2 and secret not in str(logged)
    assert logged[0]["credentials_changed"] == ["consumer_key", "consumer_secret", "merchant_id"]
