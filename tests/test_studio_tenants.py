"""Only a studio answers on the studio routes: a tenant becomes one when it has business details
(the demo, or its staff's ``PUT /studios/{tenant}/business``); on any other tenant (a clinic)
every other studio route is 404 ``studio-not-found``, even for its owner."""

import re

from fastapi.routing import APIRoute

from people.users import create_key, create_user, grant
from tests.people_world import PASSWORD, PASSWORDS, client
from warehouse.tenants import add_tenant

OPEN = {("GET", "/studios/{tenant}/business"), ("PUT", "/studios/{tenant}/business")}  # setting up a studio
PAGE = "/studios/{tenant}/public/"  # the client's HTML page: its own 404 (a non-studio has no invoice)


def owner_key(engine, tenant: str) -> dict[str, str]:
    with engine.begin() as conn:
        add_tenant(conn, tenant, "Downtown Clinic")
        user = create_user(conn, PASSWORDS, f"owner@{tenant}.test", "Owner", PASSWORD)
        grant(conn, user, tenant, "tenant_owner")
        return {"Authorization": f"Bearer {create_key(conn, user, 'studio tenants test').key}"}


def studio_routes(app) -> list[tuple[str, str]]:
    return sorted((method, route.path) for route in app.state.routes if isinstance(route, APIRoute)
                  and route.path.startswith("/studios/{tenant}") for method in route.methods)


def test_a_clinic_tenant_has_no_studio_routes_until_it_saves_business_details(engine, warehouse_url, tenant_id):
    owner = owner_key(engine, tenant_id)
    with client(engine, warehouse_url) as c:
        routes = studio_routes(c.app)
        assert len(routes) > 40
        refused = []
        for method, path in routes:
            if (method, path) in OPEN or path.startswith(PAGE):
                continue
            url = re.sub(r"\{[a-z_]+\}", "1", path.replace("{tenant}", tenant_id).replace("{kind}", "invoices"))
            answer = c.request(method, url, headers=owner, json={})
            if answer.status_code != 404 or not answer.json()["type"].endswith("/studio-not-found"):
                refused.append((method, path, answer.status_code))
        assert refused == []
        made = c.post(f"/studios/{tenant_id}/clients", headers=owner, json={"name": "Ada"})
        assert made.status_code == 404 and made.json()["detail"] == f"There is no studio {tenant_id!r}."
        assert c.get(f"/studios/{tenant_id}/business", headers=owner).status_code == 200  # the defaults to start from
        assert c.put(f"/studios/{tenant_id}/business", headers=owner, json={"name": "Clinic Prints"}).status_code == 200
        assert c.post(f"/studios/{tenant_id}/clients", headers=owner, json={"name": "Ada"}).status_code == 201
        assert c.get(f"/studios/{tenant_id}/invoices", headers=owner).status_code == 200
