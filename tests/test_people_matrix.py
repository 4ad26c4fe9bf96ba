"""The authorisation matrix: every staff route × every role × own tenant, foreign tenant, expired and
revoked grants, live and revoked API keys, no credentials → allowed or refused as the seed's matrix
says, and no foreign row in any answer. Generated from the route table: a route with no rule fails."""

from __future__ import annotations

import re

import pytest

from api.staff import route_table
from people.roles import ROLE_PERMISSIONS, effective
from tests.people_world import bearer, client, make_world, sign_in

PUBLIC = re.compile(r"^/(healthz|readyz|metrics|shops/.*|auth/.*|invitations/accept|staff"  # /staff: a page, no data
                    r"|files/.*"  # the signed link is the authority
                    r"|studios/\{tenant\}/(webhooks/stripe|public/invoices/\{invoice_id\}(/pay)?))$")  # a client's invoice link
# Bodies for the routes that take one; a new such route must add its example here.
BODIES = {
    ("POST", "/studios/{tenant}/invoices/{invoice_id}/attachments"): {},  # multipart: a JSON body is a 422
    ("POST", "/studios/{tenant}/clients/{client_id}/files"): {},
    ("POST", "/me/keys"): {"name": "matrix"},
    ("PUT", "/tenants/{tenant}/invoices/{invoice_id}/data-sent"): {"data_sent": True},
    ("POST", "/tenants/{tenant}/invitations"): {"email": "matrix@example.test", "role": "viewer"},
    ("PATCH", "/tenants/{tenant}/users/{user_id}"): {"expires_at": None},
    ("PUT", "/tenants/{tenant}/connections/{system}"): {"base_url": "http://127.0.0.1:9/slack"},
    ("POST", "/tenants/{tenant}/syncs"): {"mode": "incremental"},
    ("PUT", "/studios/{tenant}/business"): {"phone": "02 9000 0000"},
    ("PUT", "/studios/{tenant}/business/logo"): {},  # JSON, not an image: 415 once authorised
    ("POST", "/studios/{tenant}/clients"): {"name": "Matrix Client"},
    ("PATCH", "/studios/{tenant}/clients/{client_id}"): {"phone": "02 9000 0001"},
    ("POST", "/studios/{tenant}/quotes"): {"client_id": 1, "items": []},
    ("PATCH", "/studios/{tenant}/quotes/{quote_id}"): {"notes": "matrix"},
    ("POST", "/studios/{tenant}/invoices"): {"client_id": 1},
    ("PATCH", "/studios/{tenant}/invoices/{invoice_id}"): {"notes": "matrix"},
    ("POST", "/studios/{tenant}/invoices/{invoice_id}/void"): {},
    ("POST", "/studios/{tenant}/{kind}/{document_id}/messages"): {"body": "matrix"},
    ("POST", "/studios/{tenant}/portal/{kind}/{document_id}/messages"): {"body": "matrix"},
    **{("POST", f"/studios/{{tenant}}/{path}"): {} for path in (  # actions without a body
        "quotes/{quote_id}/send", "quotes/{quote_id}/accept", "quotes/{quote_id}/decline", "quotes/{quote_id}/convert",
        "invoices/{invoice_id}/issue", "invoices/{invoice_id}/send", "portal/quotes/{quote_id}/accept",
        "portal/quotes/{quote_id}/decline")},
    ("POST", "/studios/{tenant}/invoices/{invoice_id}/payments"): {"method": "CASH", "amount": "1.00"},
    ("POST", "/studios/{tenant}/invoices/{invoice_id}/checkout"): {},
    ("POST", "/studios/{tenant}/slicing/files"): {},  # a model is a multipart form: JSON is refused (422)
    ("POST", "/studios/{tenant}/slicing/files/{file_id}/slice"): {"layerHeight": 0.2, "infill": 15},
    ("POST", "/studios/{tenant}/slicing/quote-lines"): {"items": [{"fileId": 4}]},
    ("POST", "/studios/{tenant}/quotes/{quote_id}/email"): {},
    ("POST", "/studios/{tenant}/invoices/{invoice_id}/email"): {},
    ("POST", "/studios/{tenant}/slicing/quick-order"): {"items": [{"fileId": 4}], "clientId": 4},
    ("POST", "/studios/{tenant}/materials"): {"name": "Matrix PLA", "cost_per_kg": "20.00"},
    ("PATCH", "/studios/{tenant}/materials/{material_id}"): {"active": True},
    ("POST", "/studios/{tenant}/printers"): {"name": "Matrix", "hourly_rate": "1", "build_x_mm": 1, "build_y_mm": 1,
                                            "build_z_mm": 1},
    ("PATCH", "/studios/{tenant}/printers/{printer_id}"): {"status": "idle"},
    ("POST", "/studios/{tenant}/product-templates"): {"name": "Matrix"},
    ("PATCH", "/studios/{tenant}/product-templates/{template_id}"): {"active": True},
    ("POST", "/studios/{tenant}/print-jobs"): {"invoice_item_id": 4},
    ("POST", "/studios/{tenant}/print-jobs/{job_id}/start"): {"printer_id": 4},
    ("POST", "/studios/{tenant}/print-jobs/{job_id}/finish"): {},
    ("POST", "/studios/{tenant}/print-jobs/{job_id}/fail"): {"reason": "matrix"},
}
PARAMS = {"transaction_id": "4", "invoice_id": "4", "prefix": "000000000000",
          "attachment_id": "1", "file_id": "1",
          "user_id": "00000000-0000-0000-0000-000000000000", "system": "slack",
          "sync_id": "1", "client_id": "4", "quote_id": "4", "kind": "quotes", "document_id": "4",
          "file_id": "4", "material_id": "4", "printer_id": "4", "template_id": "4", "job_id": "4"}


def staff_routes():
    return [(next(iter(r.methods)), r.path, rule) for r, rule in route_table() if not PUBLIC.match(r.path)]


def test_every_non_public_route_declares_a_rule():
    missing = [(m, p) for m, p, rule in staff_routes() if rule is None]
    assert missing == [], f"routes without an authorisation rule: {missing}"


def expected(rule: str, role: str | None, same_tenant: bool) -> bool:
    """Whether a signed-in caller whose live grant on the own tenant is ``role`` (None: none) may use
    the route on the own tenant (``same_tenant``) or on the foreign one."""
    if rule == "signed-in":
        return True
    if role is None:
        return False
    if role == "super_admin":
        return True
    if rule.startswith("across:"):
        return rule.split(":", 1)[1] in effective(role)
    # "a|client": permission a, or the row's own customer (the world's customer owns no studio invoice)
    return same_tenant and any(r in effective(role) for r in rule.split("|"))


def test_authorisation_matrix(engine, warehouse_url, tenant_id):
    world = make_world(engine, tenant_id)
    with client(engine, warehouse_url) as c:
        headers = {role: bearer(sign_in(c, world.users[role])["access_token"]) for role in ROLE_PERMISSIONS}
        headers.update(expired=bearer(sign_in(c, world.users["expired"])["access_token"]),
                       inactive=bearer(sign_in(c, world.users["inactive"])["access_token"]),
                       key=bearer(world.keys["key"]), revoked_key=bearer(world.keys["revoked_key"]),
                       anonymous={})
        # caller -> the role its live grant on the own tenant gives (None: nothing; unauthenticated callers apart)
        roles = {**{r: r for r in ROLE_PERMISSIONS}, "expired": None, "inactive": None, "key": "clinic_staff"}
        checked, leaks, wrong = 0, [], []
        for method, path, rule in staff_routes():
            body = BODIES.get((method, path))
            if method in ("POST", "PUT", "PATCH") and body is None:
                pytest.fail(f"{method} {path}: add an example body to BODIES")
            for caller, hdrs in headers.items():
                for which, tenant in (("own", world.own), ("foreign", world.foreign)):
                    url = path.format(tenant=tenant, **PARAMS)
                    answer = c.request(method, url, headers=hdrs, json=body)
                    checked += 1
                    if caller in ("anonymous", "revoked_key"):
                        ok = answer.status_code == 401
                    else:
                        allow = expected(rule, roles[caller], which == "own")
                        ok = (answer.status_code not in (401, 403) and answer.status_code < 500) if allow \
                            else answer.status_code == 403
                    if not ok:
                        wrong.append((caller, which, method, path, answer.status_code, answer.text[:120]))
                    if answer.status_code < 300 and "FOREIGN" in answer.text and caller != "super_admin":
                        leaks.append((caller, which, method, path))
                    if answer.status_code >= 400:
                        assert answer.headers["content-type"].startswith("application/problem+json")
    assert wrong == []
    assert leaks == []
    assert checked >= len(staff_routes()) * len(headers) * 2


def test_the_matrix_is_the_seeds():
    assert ROLE_PERMISSIONS["super_admin"] == {"*"}
    assert ROLE_PERMISSIONS["tenant_owner"] == {"sync.manual", "sync.webhook", "config.update", "users.invite",
                                                "users.manage", "data.export"}
    assert ROLE_PERMISSIONS["tenant_admin"] == {"sync.manual", "transactions.view", "invoices.manage", "users.invite"}
    assert ROLE_PERMISSIONS["clinic_staff"] == {"transactions.view", "invoices.view", "data.export"}
    assert ROLE_PERMISSIONS["nurse"] == {"invoices.view", "invoices.update_data_sent"}
    assert ROLE_PERMISSIONS["viewer"] == {"transactions.view", "invoices.view"}
    assert ROLE_PERMISSIONS["investor"] == {"analytics.view", "reports.view"}
    # Overrides add or remove single permissions.
    assert "data.export" in effective("viewer", {"add": ["data.export"]})
    assert "invoices.view" not in effective("nurse", {"remove": ["invoices.view"]})
    assert "invoices.update_data_sent" in effective("tenant_admin")  # invoices.manage covers it
    assert "invoices.update_data_sent" not in effective("viewer") and "data.export" not in effective("nurse")


def test_the_studio_permissions_sit_beside_the_matrix():
    """The studio (seed 002) is no part of seed 003's matrix: its permissions are granted beside it."""
    manage, view = {"studio.manage", "studio.view"}, {"studio.view"}
    assert {role: effective(role) & {"studio.manage", "studio.view", "studio.portal"} for role in ROLE_PERMISSIONS
            if role != "super_admin"} == {
        "tenant_owner": manage, "tenant_admin": manage, "clinic_staff": view, "viewer": view, "nurse": set(),
        "investor": set(), "customer": {"studio.portal"}}
    assert "studio.manage" not in effective("tenant_admin", {"remove": ["studio.manage"]})
    assert "studio.manage" in effective("nurse", {"add": ["studio.manage"]})
