"""The print shop's staff routes (issue 14): materials, printers and pricing templates (list,
create, change, retire; names unique per studio; profiles only shipped ones), and print jobs per
invoice line: queued → printing → done / failed on a printer whose status follows."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from people.users import create_user, grant
from studio.activity import Actor
from studio.clients import create_client
from studio.db import writing
from studio.invoices import create_invoice, issue_invoice
from tests.api_storefront import settings_for
from tests.people_world import PASSWORD, PASSWORDS, bearer, sign_in
from tests.studio_storage import FolderStorage
from warehouse.tables.studio import studio_business, studio_invoice_items
from warehouse.tenants import add_tenant


@pytest.fixture
def world(engine, warehouse_url, tenant_id, tmp_path):
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, "Print studio")
        add_tenant(conn, f"{tenant_id}-x", "Another studio")
        for tenant in (tenant_id, f"{tenant_id}-x"):  # a tenant is a studio once it has business details
            conn.execute(sa.insert(studio_business).values(tenant_id=tenant, name=f"{tenant} studio"))
        users = {}
        for who, role, tenant in (("owner", "tenant_owner", tenant_id), ("viewer", "viewer", tenant_id),
                                  ("other", "tenant_owner", f"{tenant_id}-x")):
            email = f"{who}@{tenant_id}.test"
            grant(conn, create_user(conn, PASSWORDS, email, who, PASSWORD), tenant, role)
            users[who] = email
    with writing(engine) as conn:
        client = create_client(conn, tenant_id, Actor("staff", None), name="Ada")["id"]
        invoice = create_invoice(conn, tenant_id, client, [
            {"description": "3D print: cube.stl", "quantity": 2, "unit_price": "20.00", "discount_percent": 0,
             "tax_rate": None}], Actor("staff", None))
        issue_invoice(conn, tenant_id, invoice, Actor("staff", None))  # a draft's lines are not printed
        item = conn.execute(sa.select(studio_invoice_items.c.id).where(
            studio_invoice_items.c.tenant_id == tenant_id, studio_invoice_items.c.invoice_id == invoice)).scalar_one()
    app = create_app(settings_for(warehouse_url, 8000), engine, storage=FolderStorage(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as c:
        headers = {who: bearer(sign_in(c, email)["access_token"]) for who, email in users.items()}
        yield c, headers, f"/studios/{tenant_id}", f"/studios/{tenant_id}-x", item


def test_materials_printers_and_templates(world):
    c, h, base, other, _ = world
    made = c.post(f"{base}/materials", headers=h["owner"], json={"name": "PETG blue", "kind": "PETG",
                                                                 "cost_per_kg": "32.50", "density_g_cm3": "1.27"})
    assert made.status_code == 201, made.text
    material = made.json()
    assert material["active"] is True and D(material["cost_per_kg"]) == D("32.50")
    taken = c.post(f"{base}/materials", headers=h["owner"], json={"name": "PETG blue", "cost_per_kg": "1"})
    assert taken.status_code == 409 and taken.headers["content-type"].startswith("application/problem+json")
    bad = c.post(f"{base}/materials", headers=h["owner"], json={"name": "X", "cost_per_kg": "1",
                                                                "profile": "../../etc/passwd"})
    assert bad.status_code == 422
    assert c.post(f"{base}/materials", headers=h["viewer"], json={"name": "Y", "cost_per_kg": "1"}).status_code == 403
    assert c.get(f"{base}/materials", headers=h["viewer"]).json() == [material]
    changed = c.patch(f"{base}/materials/{material['id']}", headers=h["owner"], json={"active": False})
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert c.get(f"{base}/materials", headers=h["owner"]).json() == []
    assert len(c.get(f"{base}/materials?include_retired=true", headers=h["owner"]).json()) == 1
    assert c.patch(f"{base}/materials/{material['id']}", headers=h["owner"], json={"name": None}).status_code == 422
    # another studio sees none of it and cannot change it
    assert c.get(f"{other}/materials", headers=h["other"]).json() == []
    assert c.patch(f"{other}/materials/{material['id']}", headers=h["other"], json={"active": True}).status_code == 404

    printer = c.post(f"{base}/printers", headers=h["owner"], json={
        "name": "MK4", "hourly_rate": "4.00", "build_x_mm": 250, "build_y_mm": 210, "build_z_mm": 220}).json()
    assert printer["status"] == "idle" and D(printer["build_z_mm"]) == 220
    assert c.patch(f"{base}/printers/{printer['id']}", headers=h["owner"],
                   json={"status": "printing"}).status_code == 422  # the jobs' to set
    assert c.patch(f"{base}/printers/{printer['id']}", headers=h["owner"],
                   json={"status": "maintenance"}).json()["status"] == "maintenance"
    assert c.post(f"{base}/printers", headers=h["owner"], json={
        "name": "Flat", "hourly_rate": "1", "build_x_mm": 0, "build_y_mm": 1, "build_z_mm": 1}).status_code == 422

    template = c.post(f"{base}/product-templates", headers=h["owner"], json={
        "name": "Standard", "setup_fee": "5.00", "margin_percent": "40", "minimum_price": "15.00",
        "rush_multiplier": "1.5"}).json()
    assert D(template["rush_multiplier"]) == D("1.5")
    assert c.post(f"{base}/product-templates", headers=h["owner"], json={
        "name": "Cheap", "rush_multiplier": "0.5"}).status_code == 422
    assert D(c.patch(f"{base}/product-templates/{template['id']}", headers=h["owner"],
                   json={"minimum_price": "12.00"}).json()["minimum_price"]) == 12


def test_print_jobs_move_and_printer_status_follows(world):
    c, h, base, other, item = world
    printer = c.post(f"{base}/printers", headers=h["owner"], json={
        "name": "MK4", "hourly_rate": "4.00", "build_x_mm": 250, "build_y_mm": 210, "build_z_mm": 220}).json()
    second = c.post(f"{base}/printers", headers=h["owner"], json={
        "name": "MK3", "hourly_rate": "3.00", "build_x_mm": 250, "build_y_mm": 210, "build_z_mm": 210}).json()
    assert c.post(f"{other}/print-jobs", headers=h["other"], json={"invoice_item_id": item}).status_code == 404
    assert c.post(f"{base}/print-jobs", headers=h["owner"], json={"invoice_item_id": item,
                                                                  "printer_id": 2**40}).status_code == 404
    jobs = [c.post(f"{base}/print-jobs", headers=h["owner"], json={
        "invoice_item_id": item, "printer_id": printer["id"], "quantity": 1, "estimated_s": 5400, "grams": "24.5"})
        for _ in range(2)]
    assert all(j.status_code == 201 for j in jobs), jobs[0].text
    # the line sold 2: a third print of it is refused
    more = c.post(f"{base}/print-jobs", headers=h["owner"], json={"invoice_item_id": item})
    assert more.status_code == 409 and "too many" in more.json()["detail"]
    first, then = (j.json() for j in jobs)
    assert first["status"] == "queued" and D(first["grams"]) == D("24.5")
    status = c.get(f"{base}/printers/{printer['id']}/status", headers=h["viewer"]).json()
    assert status["status"] == "idle" and status["queued_jobs"] == 2 and status["current_job"] is None

    started = c.post(f"{base}/print-jobs/{first['id']}/start", headers=h["owner"], json={"printer_id": printer["id"]})
    assert started.status_code == 200 and started.json()["status"] == "printing" and started.json()["started_at"]
    # one job at a time on a printer; a printing printer's status is not staff's to change
    busy = c.post(f"{base}/print-jobs/{then['id']}/start", headers=h["owner"], json={"printer_id": printer["id"]})
    assert busy.status_code == 409 and busy.headers["content-type"].startswith("application/problem+json")
    assert c.patch(f"{base}/printers/{printer['id']}", headers=h["owner"], json={"status": "offline"}
                   ).status_code == 409
    status = c.get(f"{base}/printers/{printer['id']}/status", headers=h["viewer"]).json()
    assert status["status"] == "printing" and status["current_job"]["id"] == first["id"]
    assert status["queued_jobs"] == 1
    assert c.post(f"{base}/print-jobs/{first['id']}/start", headers=h["owner"],
                  json={"printer_id": second["id"]}).status_code == 409  # printing already

    done = c.post(f"{base}/print-jobs/{first['id']}/finish", headers=h["owner"])
    assert done.status_code == 200 and done.json()["status"] == "done" and done.json()["finished_at"]
    assert c.post(f"{base}/print-jobs/{first['id']}/finish", headers=h["owner"]).status_code == 409
    assert c.get(f"{base}/printers/{printer['id']}/status", headers=h["viewer"]).json()["status"] == "idle"

    c.post(f"{base}/print-jobs/{then['id']}/start", headers=h["owner"], json={"printer_id": second["id"]})
    failed = c.post(f"{base}/print-jobs/{then['id']}/fail", headers=h["owner"], json={"reason": "spaghetti"})
    assert failed.json()["status"] == "failed" and failed.json()["failure_reason"] == "spaghetti"
    assert c.get(f"{base}/printers/{second['id']}/status", headers=h["viewer"]).json()["status"] == "idle"
    listed = c.get(f"{base}/printers/{printer['id']}/jobs", headers=h["viewer"]).json()
    assert [j["id"] for j in listed] == [first["id"]]  # the second job moved to the other printer
    assert [j["id"] for j in c.get(f"{base}/printers/{second['id']}/jobs?status=failed",
                                   headers=h["viewer"]).json()] == [then["id"]]
    assert c.get(f"{base}/print-jobs/{first['id']}", headers=h["other"]).status_code == 403
    assert c.get(f"{other}/print-jobs/{first['id']}", headers=h["other"]).status_code == 404
    assert c.post(f"{base}/print-jobs/{first['id']}/fail", headers=h["viewer"], json={"reason": "x"}).status_code == 403
