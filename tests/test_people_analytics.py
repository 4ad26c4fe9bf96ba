"""Investors see aggregates across exactly the tenants granted to them, and no customer rows."""

from __future__ import annotations

from people.users import find_user, grant
from tests.people_world import bearer, client, make_world, seed_records, sign_in
from warehouse.tenants import add_tenant


def test_investor_analytics_cover_exactly_the_granted_tenants(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id, n=30)
    third = f"{tenant_id}-z"
    with engine.begin() as conn:
        add_tenant(conn, third, "Third")
    seed_records(engine, third, 3, "THIRD")
    with engine.begin() as conn:
        grant(conn, find_user(conn, world.users["investor"])["id"], third, "investor")
    with client(engine, warehouse_url) as c:
        investor = bearer(sign_in(c, world.users["investor"])["access_token"])
        got = c.get("/analytics", headers=investor)
        assert got.status_code == 200
        body = got.json()
        assert body["tenants"] == sorted([world.own, third])
        own = [d for d in body["payments_daily"] if d["tenant_id"] == world.own]
        # 30 payments an hour apart from 01:00: 23 on the 1st, 7 on the 2nd; every third declined.
        assert [(d["day"], d["payments"]) for d in own] == [("2026-01-01", 23), ("2026-01-02", 7)]
        assert sum(d["approved"] for d in own) == 20
        assert sum(float(d["approved_amount"]) for d in own) == sum(i + 0.5 for i in range(1, 31) if i % 3)
        assert {d["tenant_id"] for d in body["payments_daily"]} == {world.own, third}
        for text in ("OWN", "THIRD", "FOREIGN", "customer"):
            assert text not in got.text
        ranged = c.get("/analytics", headers=investor, params={"since": "2026-01-02"}).json()
        assert [d["day"] for d in ranged["payments_daily"] if d["tenant_id"] == world.own] == ["2026-01-02"]
        assert c.get(f"/tenants/{world.foreign}/analytics", headers=investor).status_code == 403
        assert c.get(f"/tenants/{third}/analytics", headers=investor).json()["tenants"] == [third]
        # Investors read no rows: transactions and invoices are not theirs.
        assert c.get(f"/tenants/{world.own}/transactions", headers=investor).status_code == 403
        staff = bearer(sign_in(c, world.users["clinic_staff"])["access_token"])
        assert c.get("/analytics", headers=staff).status_code == 403
