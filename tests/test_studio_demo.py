"""The demo studio: made once (a second run changes nothing), documents in different states, and
its owner and client can sign in and see them through the API; its print shop (materials, printers,
templates) lets its client follow the README's walkthrough: upload, slice, poll, price, quick order,
quote PDF."""

import time

import sqlalchemy as sa
import stripe
from fastapi.testclient import TestClient

from api.app import create_app
from storehouse.demo_people import PASSWORD
from storehouse.demo_studio import MATERIALS, PRINTERS, STUDIO, TEMPLATES, demo_studio
from resources.stripe import webhook_secrets
from studio.business import get_business
from studio.slicing import samples
from studio.slicing.catalog import profile_path
from tests.api_storefront import settings_for
from tests.people_world import bearer, client, sign_in
from tests.slicing_world import requires_slicer
from tests.studio_storage import FolderStorage
from warehouse.tables.studio import studio_invoices, studio_quotes
from warehouse.tables.studio_print import studio_materials, studio_printers, studio_product_templates
from warehouse.tenants import get_connection


def counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).where(t.c.tenant_id == STUDIO)).scalar_one()
                     for t in (studio_quotes, studio_invoices))


def test_the_demo_studio_is_made_once_and_shows_its_documents(engine, warehouse_url, sandbox_reset):
    lines = demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url)
    made = counts(engine)
    assert demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url) == lines
    assert counts(engine) == made == (4, 6)
    with engine.connect() as conn:
        business = get_business(conn, STUDIO)
    assert (business["currency"], business["abn"], str(business["gst_rate"])) == ("AUD", "51 824 753 556", "0.1000")
    assert business["bank_bsb"] and business["bank_account"]
    with client(engine, warehouse_url) as c:
        owner = bearer(sign_in(c, f"owner@{STUDIO}.demo", PASSWORD)["access_token"])
        shown = {q["status"] for q in c.get(f"/studios/{STUDIO}/quotes", headers=owner).json()["items"]}
        assert shown == {"draft", "sent", "declined", "accepted"}
        shown = {i["status"] for i in c.get(f"/studios/{STUDIO}/invoices", headers=owner).json()["items"]}
        assert shown == {"draft", "issued", "overdue", "void", "paid", "partially_paid"}
        money = {i["status"]: (i["amount_paid"], i["balance_due"]) for i in
                 c.get(f"/studios/{STUDIO}/invoices", headers=owner).json()["items"]}
        assert money["paid"][1] == "0.00" and money["paid"][0] != "0.00"  # through the ledger
        assert money["partially_paid"][0] == "150.00" and money["partially_paid"][1] != "0.00"
        me = bearer(sign_in(c, f"client@{STUDIO}.demo", PASSWORD)["access_token"])
        mine = c.get(f"/studios/{STUDIO}/portal/quotes", headers=me).json()["items"]
        assert {q["status"] for q in mine} == {"sent", "accepted"}  # Mia's, and no draft
        assert any(line.startswith("customer") for line in lines)


def test_the_demo_studio_can_take_payments_and_send_email(engine, sandbox_reset):
    """Its Stripe account has one webhook endpoint at the API (a demo run again replaces it) and
    that endpoint's signing secret stored, and it has a Resend account to email from."""
    for _ in range(2):
        demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url)
    with engine.connect() as conn:
        stripe_account, resend = (get_connection(conn, STUDIO, s) for s in ("stripe", "resend"))
    assert stripe_account is not None and resend is not None
    assert stripe_account.base_url == f"{sandbox_reset.url}/stripe" and resend.base_url == f"{sandbox_reset.url}/resend"
    account = stripe.StripeClient(stripe_account.credentials["secret_key"],
                                  base_addresses={"api": stripe_account.base_url})
    endpoints = account.v1.webhook_endpoints.list(params={"limit": 100}).data
    assert [e.url for e in endpoints] == [f"http://127.0.0.1:8000/studios/{STUDIO}/webhooks/stripe"]
    assert len(webhook_secrets(stripe_account)) == 1  # the replaced endpoint's secret is gone


def print_shop(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(t).where(t.c.tenant_id == STUDIO).order_by(t.c.id)).all()
                for t in (studio_materials, studio_printers, studio_product_templates)}


def test_the_demo_studio_has_a_print_shop_once(engine, sandbox_reset):
    """PLA, PETG and TPU with their own shipped profiles; a Prusa MK4 and a larger XL; a standard and
    a rush template. A run again adds nothing, and puts back only what is missing (by name)."""
    demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url)
    made = print_shop(engine)
    materials, printers, templates = made.values()
    assert {m.kind for m in materials} == {"PLA", "PETG", "TPU"} and len(materials) == len(MATERIALS)
    assert all(profile_path(m.profile, None).is_file() for m in materials)
    assert {(p.model, float(p.build_x_mm), float(p.build_y_mm), float(p.build_z_mm)) for p in printers} == {
        ("Original Prusa MK4", 250, 210, 220), ("Original Prusa XL", 360, 360, 360)}
    assert len(templates) == len(TEMPLATES) == 2 and any("Rush" in t.name for t in templates)
    assert all(t.rush_multiplier > 1 and t.minimum_price > 0 for t in templates)
    assert len(PRINTERS) == 2
    demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url)
    assert print_shop(engine) == made
    with engine.begin() as conn:  # a demo warehouse missing one (say, made before the print shop)
        conn.execute(sa.delete(studio_product_templates).where(studio_product_templates.c.tenant_id == STUDIO,
                                                               studio_product_templates.c.name == templates[1].name))
    demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url)
    again = print_shop(engine)
    assert again["studio_materials"] == made["studio_materials"] and again["studio_printers"] == made["studio_printers"]
    assert [t.name for t in again["studio_product_templates"]] == [t.name for t in templates]


@requires_slicer
def test_the_readmes_walkthrough_on_the_demo_studio(engine, warehouse_url, sandbox_reset, tmp_path):
    """README, "Instant quotes from 3D models", Try it: the demo's client lists printers and
    materials, uploads a cube, slices it with PrusaSlicer, polls, prices, quick-orders; the owner
    sends the quote and the client downloads its PDF."""
    demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url)
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=True), engine, storage=FolderStorage(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as c:
        s = f"/studios/{STUDIO}"
        me = bearer(sign_in(c, f"client@{STUDIO}.demo", PASSWORD)["access_token"])
        printers = c.get(f"{s}/printers", headers=me).json()
        assert [p["name"] for p in printers] == [p["name"] for p in PRINTERS] and "hourly_rate" not in printers[0]
        printer, material = printers[0]["id"], c.get(f"{s}/materials", headers=me).json()[0]["id"]
        file = c.post(f"{s}/slicing/files", headers=me,
                      files={"file": ("cube.stl", samples.stl(samples.cube()), "application/octet-stream")})
        assert file.status_code == 201 and file.json()["status"] == "idle", file.text
        file_id = file.json()["id"]
        asked = c.post(f"{s}/slicing/files/{file_id}/slice", headers=me,
                       json={"layerHeight": 0.2, "infill": 20, "printerId": printer, "materialId": material})
        assert asked.status_code == 202, asked.text
        deadline = time.monotonic() + 90
        while (done := c.get(f"{s}/slicing/files/{file_id}", headers=me).json())["status"] != "completed":
            assert time.monotonic() < deadline and done["status"] != "failed", done
            time.sleep(0.2)
        assert done["fallback"] is False and done["metrics"]["grams"] > 3
        lines = c.post(f"{s}/slicing/quote-lines", headers=me, json={"items": [{"fileId": file_id, "quantity": 2}]})
        assert lines.status_code == 200 and lines.json()["lines"][0]["quantity"] == 2, lines.text
        quote = c.post(f"{s}/slicing/quick-order", headers=me, json={"items": [{"fileId": file_id, "quantity": 2}]})
        assert quote.status_code == 201 and quote.json()["status"] == "draft", quote.text
        owner = bearer(sign_in(c, f"owner@{STUDIO}.demo", PASSWORD)["access_token"])
        sent = c.post(f"{s}/quotes/{quote.json()['id']}/send", headers=owner)
        assert sent.status_code == 200 and sent.json()["status"] == "sent", sent.text
        pdf = c.get(f"{s}/portal/quotes/{quote.json()['id']}/pdf", headers=me)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.text[:200]
