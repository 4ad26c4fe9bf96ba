"""Quick orders end to end over HTTP (issue 14): upload a generated cube → slice with the real
PrusaSlicer → metrics → price → quick order → a draft quote with the priced line, whose PDF shows
the line and the total (pdftotext); the model kept as the client's order file on that quote and
its tmp file marked ordered. Refusals: not sliced, another client's file, another studio's, twice."""

from __future__ import annotations

import shutil
import subprocess
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from people.users import create_user, grant
from studio.activity import Actor
from studio.clients import create_client
from studio.db import writing
from studio.pdf import render, view
from studio.slicing import samples
from tests.api_storefront import settings_for
from tests.people_world import PASSWORD, PASSWORDS, bearer, sign_in
from tests.slicing_world import make_studio, requires_slicer
from tests.studio_storage import FolderStorage
from warehouse.tables.studio import studio_order_files
from warehouse.tables.studio_print import studio_tmp_files
from warehouse.tenants import add_tenant

PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture
def world(engine, warehouse_url, tenant_id, tmp_path, monkeypatch):
    monkeypatch.setenv("SLICER_DISABLE", "0")
    monkeypatch.setenv("STUDIO_SLICING_POLL_S", "0.1")
    ids = make_studio(engine, tenant_id)
    with writing(engine) as conn:
        ids["client"] = create_client(conn, tenant_id, Actor("staff", None), name="Ada Client")["id"]
        ids["client2"] = create_client(conn, tenant_id, Actor("staff", None), name="Bob Client")["id"]
    with engine.begin() as conn:
        add_tenant(conn, f"{tenant_id}-x", "Another studio")
        users = {}
        for who, role, tenant, customer in (("owner", "tenant_owner", tenant_id, None),
                                            ("viewer", "viewer", tenant_id, None),
                                            ("client", "customer", tenant_id, str(ids["client"])),
                                            ("client2", "customer", tenant_id, str(ids["client2"])),
                                            ("other", "tenant_owner", f"{tenant_id}-x", None)):
            email = f"{who}@{tenant_id}.test"
            grant(conn, create_user(conn, PASSWORDS, email, who, PASSWORD), tenant, role, customer_id=customer)
            users[who] = email
    storage = FolderStorage(tmp_path)
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=True), engine, storage=storage)
    with TestClient(app, raise_server_exceptions=False) as c:
        headers = {who: bearer(sign_in(c, email)["access_token"]) for who, email in users.items()}
        yield c, headers, ids, f"/studios/{tenant_id}/slicing", storage


def upload(c, headers, base, name, data):
    made = c.post(f"{base}/files", headers=headers, files={"file": (name, data, "application/octet-stream")})
    assert made.status_code == 201, made.text
    return made.json()


def slice_done(c, headers, base, file_id, ids, seconds=120):
    asked = c.post(f"{base}/files/{file_id}/slice", headers=headers, json={
        "layerHeight": 0.2, "infill": 20, "printerId": ids["printer"], "materialId": ids["material"]})
    assert asked.status_code == 202, asked.text
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = c.get(asked.headers["Location"], headers=headers).json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"not sliced in {seconds} s: {body}")


def pdf_text(engine, storage, tenant_id, quote_id) -> str:
    """The quote's PDF as text. The route moves to ``/studios/{tenant}/quotes/{id}/pdf`` on another
    branch; this renders it with the very functions the route uses (``studio.pdf``)."""
    with engine.connect() as conn:
        shown, _ = view.load(conn, storage, tenant_id, "quote", quote_id)
    data = render.render("quote", shown)
    assert data.startswith(b"%PDF")
    return subprocess.run([PDFTOTEXT, "-layout", "-", "-"], input=data, capture_output=True, timeout=60,
                          check=True).stdout.decode()


@requires_slicer
@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext is not installed (apt-get install poppler-utils)")
def test_upload_slice_price_quick_order_and_pdf(world, engine, tenant_id):
    c, h, ids, base, storage = world
    file = upload(c, h["client"], base, "cube.stl", samples.stl(samples.cube()))
    done = slice_done(c, h["client"], base, file["id"], ids)
    assert done["status"] == "completed" and done["fallback"] is False, done
    grams, seconds = done["metrics"]["grams"], done["metrics"]["timeSec"]
    assert grams > 3 and seconds > 600
    [priced] = c.post(f"{base}/quote-lines", headers=h["client"],
                      json={"items": [{"fileId": file["id"], "quantity": 2}]}).json()["lines"]
    # the price by hand: 30/kg, 4/h, setup 5, margin 40 %, minimum 15
    cents = Decimal("0.01")
    cost = (Decimal(str(grams)) / 1000 * 30).quantize(cents) + (Decimal(seconds) / 3600 * 4).quantize(cents) + 5
    by_hand = max(cost + (cost * Decimal("0.4")).quantize(cents), Decimal(15))
    assert Decimal(priced["unit_price"]) == by_hand

    # not sliced yet: refused; another client: not found; a viewer cannot order
    idle = upload(c, h["client"], base, "cylinder.stl", samples.stl(samples.cylinder()))
    order = {"items": [{"fileId": idle["id"]}]}
    refused = c.post(f"{base}/quick-order", headers=h["client"], json=order)
    assert refused.status_code == 409 and refused.json()["type"].endswith("not-sliced")
    assert refused.headers["content-type"].startswith("application/problem+json")
    order = {"items": [{"fileId": file["id"], "quantity": 2}], "notes": "Quick order"}
    assert c.post(f"{base}/quick-order", headers=h["client2"], json=order).status_code == 404
    other = c.post(f"/studios/{tenant_id}-x/slicing/quick-order", headers=h["other"],
                   json={**order, "clientId": ids["client"]})
    assert other.status_code == 404
    assert c.post(f"{base}/quick-order", headers=h["viewer"], json={**order, "clientId": ids["client"]}
                  ).status_code == 403
    # staff cannot order one client's upload for another client
    assert c.post(f"{base}/quick-order", headers=h["owner"], json={**order, "clientId": ids["client2"]}
                  ).status_code == 404
    assert c.post(f"{base}/quick-order", headers=h["owner"], json=order).status_code == 422  # no client named

    # the client orders for themselves, with a key: a retry finds the same quote
    key = {**h["client"], "Idempotency-Key": "order-1"}
    made = c.post(f"{base}/quick-order", headers=key, json=order)
    assert made.status_code == 201, made.text
    quote = made.json()
    again = c.post(f"{base}/quick-order", headers=key, json=order)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == quote["id"]
    assert quote["status"] == "draft" and quote["client_id"] == ids["client"]
    [line] = quote["items"]
    assert Decimal(line["unit_price"]) == Decimal(priced["unit_price"]) and Decimal(line["quantity"]) == 2
    assert "cube.stl" in line["description"] and "0.2 mm layers" in line["description"]
    assert "20% infill" in line["description"] and f"{grams:.0f} g" in line["description"]
    # ordered once: a new order of the same model is refused
    twice = c.post(f"{base}/quick-order", headers=h["owner"], json={**order, "clientId": ids["client"]})
    assert twice.status_code == 409 and twice.json()["type"].endswith("already-ordered")

    with engine.connect() as conn:
        [kept] = conn.execute(sa.select(studio_order_files).where(studio_order_files.c.tenant_id == tenant_id)).all()
        meta = conn.execute(sa.select(studio_tmp_files.c.metadata).where(studio_tmp_files.c.id == file["id"])
                            ).scalar_one()
    assert kept.client_id == ids["client"] and kept.quote_id == quote["id"] and kept.filename == "cube.stl"
    assert storage.get("order-files", kept.storage_key) == storage.get("tmp", c.app.state.slicing.get(
        tenant_id, file["id"])["storage_key"])
    assert meta["ordered"]["quoteId"] == quote["id"] and meta["ordered"]["orderFileId"] == kept.id
    assert c.get(f"{base}/files/{file['id']}", headers=h["client"]).json()["ordered"]["quoteId"] == quote["id"]
    log = c.get(f"/studios/{tenant_id}/quotes/{quote['id']}/activity", headers=h["owner"]).json()
    assert [e["action"] for e in log][-1] == "quick_order"
    # the draft the client made is theirs to see in the portal (drafts staff make stay hidden)
    mine = c.get(f"/studios/{tenant_id}/portal/quotes/{quote['id']}", headers=h["client"])
    assert mine.status_code == 200 and mine.json()["status"] == "draft"
    assert quote["id"] in [q["id"] for q in c.get(f"/studios/{tenant_id}/portal/quotes", headers=h["client"]).json()["items"]]
    assert c.get(f"/studios/{tenant_id}/portal/quotes/{quote['id']}", headers=h["client2"]).status_code == 404

    text = pdf_text(engine, storage, tenant_id, quote["id"])
    assert "cube.stl" in text and quote["document_number"] in text
    total = Decimal(quote["total"])
    assert f"{total:,.2f}" in text, text


def test_staff_quick_order_for_a_client_and_refusals(world, engine, tenant_id):
    """Staff order for a client with the slicer disabled (the flagged estimate prices it too)."""
    c, h, ids, base, storage = world
    c.app.state.slicing.settings = c.app.state.slicing.settings.model_copy(update={"disable": True})
    file = upload(c, h["owner"], base, "cube.stl", samples.stl(samples.cube()))
    done = slice_done(c, h["owner"], base, file["id"], ids)
    assert done["status"] == "completed" and done["fallback"] is True
    twice = {"items": [{"fileId": file["id"]}, {"fileId": file["id"]}], "clientId": ids["client"]}
    assert c.post(f"{base}/quick-order", headers=h["owner"], json=twice).status_code == 422
    unknown = c.post(f"{base}/quick-order", headers=h["owner"], json={"items": [{"fileId": file["id"]}],
                                                                       "clientId": 2**40})
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("client-not-found")
    made = c.post(f"{base}/quick-order", headers=h["owner"], json={"items": [{"fileId": file["id"]}],
                                                                    "clientId": ids["client2"], "rush": True})
    assert made.status_code == 201, made.text
    [line] = made.json()["items"]
    assert "(estimated)" in line["description"] and "rush" in line["description"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(studio_order_files).where(
            studio_order_files.c.tenant_id == tenant_id, studio_order_files.c.client_id == ids["client2"])
        ).scalar_one() == 1

    # a new model beside one ordered already: refused whole, nothing left behind
    fresh = upload(c, h["owner"], base, "tube.stl", samples.stl(samples.tube()))
    slice_done(c, h["owner"], base, fresh["id"], ids)
    objects = sorted(p for p in (storage.root / "order-files").rglob("*") if p.is_file())
    quotes_before = c.get(f"/studios/{tenant_id}/quotes", headers=h["owner"]).json()["items"]
    both = c.post(f"{base}/quick-order", headers=h["owner"], json={
        "items": [{"fileId": fresh["id"]}, {"fileId": file["id"]}], "clientId": ids["client2"]})
    assert both.status_code == 409 and both.json()["type"].endswith("already-ordered")
    assert sorted(p for p in (storage.root / "order-files").rglob("*") if p.is_file()) == objects
    assert c.get(f"/studios/{tenant_id}/quotes", headers=h["owner"]).json()["items"] == quotes_before
    assert c.get(f"{base}/files/{fresh['id']}", headers=h["owner"]).json()["ordered"] is None
