"""The PDF routes: staff download (``studio.view``) and send (``studio.manage``); a signed-in client
downloads their own documents only, drafts excepted; content type, file name, ETag revalidation."""

from __future__ import annotations

import shutil

import httpx
import pytest
import sqlalchemy as sa

from people.users import find_user
from tests.api_storefront import RESEND_KEY
from tests.people_world import bearer, client, make_world, sign_in
from tests.studio_pdf_world import FolderStorage, make_studio
from warehouse.tables.studio import studio_activity_logs
from warehouse.tenants import set_connection

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")


def test_staff_and_client_download(engine, warehouse_url, tenant_id, tmp_path, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path / "home"))
    world = make_world(engine, tenant_id, n=2)
    with engine.connect() as conn:
        customer_id = find_user(conn, world.users["customer"])["id"]
    own = make_studio(engine, world.own, client_user_id=customer_id, number=1)
    drafts = make_studio(engine, world.own, client_user_id=customer_id, number=2, status="draft", quote_status="draft")
    someone_else = make_studio(engine, world.own, number=3)
    with client(engine, warehouse_url) as c:
        c.app.state.storage = FolderStorage(tmp_path / "store")
        viewer = bearer(sign_in(c, world.users["tenant_owner"])["access_token"])  # studio.manage: studio.view
        base = f"/tenants/{world.own}/studio"
        got = c.get(f"{base}/invoices/{own.invoice_id}/pdf", headers=viewer)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "application/pdf" and got.content.startswith(b"%PDF-")
        assert got.headers["content-disposition"] == 'inline; filename="invoice-INV-0001.pdf"'
        etag = got.headers["etag"]
        same = c.get(f"{base}/invoices/{own.invoice_id}/pdf", headers={**viewer, "If-None-Match": etag})
        assert same.status_code == 304 and same.content == b""
        saved = c.get(f"{base}/quotes/{own.quote_id}/pdf?download=true", headers=viewer)
        assert saved.headers["content-disposition"] == 'attachment; filename="quote-Q-0001.pdf"'
        assert (tmp_path / "home" / "pdf-cache" / world.own).is_dir()
        assert c.app.state.storage.exists("pdfs", f"{world.own}/invoice-INV-0001.pdf")

        # Staff without studio.view, and the other tenant's staff, are refused; unknown ids are 404.
        for role in ("clinic_staff", "viewer", "tenant_admin"):
            staff = bearer(sign_in(c, world.users[role])["access_token"])
            assert c.get(f"{base}/invoices/{own.invoice_id}/pdf", headers=staff).status_code == 403
        assert c.get(f"/tenants/{world.foreign}/studio/invoices/{own.invoice_id}/pdf",
                     headers=viewer).status_code == 403
        missing = c.get(f"{base}/invoices/{own.invoice_id + 999}/pdf", headers=viewer)
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"

        # The client: their own issued documents, not their drafts, not another client's.
        me = bearer(sign_in(c, world.users["customer"])["access_token"])
        assert c.get(f"{base}/invoices/{own.invoice_id}/pdf", headers=me).status_code == 200
        assert c.get(f"{base}/quotes/{own.quote_id}/pdf", headers=me).status_code == 200
        for path in (f"invoices/{drafts.invoice_id}", f"quotes/{drafts.quote_id}",
                     f"invoices/{someone_else.invoice_id}", f"quotes/{someone_else.quote_id}"):
            assert c.get(f"{base}/{path}/pdf", headers=me).status_code == 404, path
        assert c.get(f"{base}/quotes/{drafts.quote_id}/pdf", headers=viewer).status_code == 200  # staff see drafts
        assert c.post(f"{base}/invoices/{own.invoice_id}/send", json={}, headers=me).status_code == 403


def test_send_through_the_api(engine, warehouse_url, tenant_id, sandbox_reset, tmp_path, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path / "home"))
    world = make_world(engine, tenant_id, n=2)
    studio = make_studio(engine, world.own)
    httpx.put(f"{sandbox_reset.url}/_sandbox/resend/limits", json={"emails": {"limit": 1000, "window_s": 1}})
    with client(engine, warehouse_url) as c:
        admin = bearer(sign_in(c, world.users["tenant_owner"])["access_token"])
        url = f"/tenants/{world.own}/studio/invoices/{studio.invoice_id}/send"
        refused = c.post(url, json={}, headers=admin)
        assert refused.status_code == 409 and refused.json()["type"].endswith("no-email-connection")
        with engine.begin() as conn:
            set_connection(conn, world.own, "resend", f"{sandbox_reset.url}/resend", {"api_key": RESEND_KEY},
                           {"from": "3D Print Sydney <hello@3dprint.example>"})
        sent = c.post(url, json={"message": "Thanks again."}, headers=admin)
        assert sent.status_code == 200, sent.text
        body = sent.json()
        assert body["filename"] == "invoice-INV-0042.pdf" and body["to"] == "ada@engines.example"
        assert body["already_sent"] is False
        again = c.post(url, json={"message": "Thanks again."}, headers=admin)
        assert again.json() == {**body, "already_sent": True}
        elsewhere = c.post(url, json={"to": "accounts@engines.example"}, headers={**admin, "Idempotency-Key": "k1"})
        assert elsewhere.status_code == 200 and elsewhere.json()["to"] == "accounts@engines.example"
        reused = c.post(url, json={"to": "other@engines.example"}, headers={**admin, "Idempotency-Key": "k1"})
        assert reused.status_code == 200 and reused.json()["already_sent"] is True  # the key names the first send
        bad = c.post(url, json={"to": "not an address"}, headers=admin)
        assert bad.status_code == 422
        for role in ("viewer", "tenant_admin", "customer"):
            caller = bearer(sign_in(c, world.users[role])["access_token"])
            assert c.post(url, json={}, headers=caller).status_code == 403
    emails = httpx.get(f"{sandbox_reset.url}/_sandbox/resend/emails").json()["emails"]
    mine = [e for e in emails if e["subject"] == "Invoice INV-0042 from 3D Print Sydney"]
    assert [e["to"] for e in mine] == [["ada@engines.example"], ["accounts@engines.example"]]
    assert all(e["attachments"][0]["filename"] == "invoice-INV-0042.pdf" for e in mine)
    with engine.connect() as conn:
        a = studio_activity_logs.c
        actors = conn.execute(sa.select(a.actor_kind, a.actor_id).where(a.tenant_id == world.own)).all()
        admin_id = find_user(conn, world.users["tenant_owner"])["id"]
    assert actors == [("staff", admin_id), ("staff", admin_id)]
