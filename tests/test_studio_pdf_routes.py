"""The PDF routes: staff download (``studio.view``) and email (``studio.manage``); a client signed in
to the portal downloads their own documents only (their studio client id), drafts excepted; content
type, file name, ETag revalidation; emailing a draft sends it through its lifecycle first, and the
invoice email carries the client's invoice page link."""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from tests.api_storefront import RESEND_KEY
from tests.people_world import client
from tests.studio_world import items, make_studio
from warehouse.tables.studio import studio_activity_logs, studio_clients
from warehouse.tenants import set_connection

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")


def _auth(studio, role: str) -> dict:
    return {"Authorization": f"Bearer {studio.keys[role]}"}


def _make(c, studio, kind: str, client_id: int, *, send: bool) -> dict:
    base, owner = f"/studios/{studio.tenant}", _auth(studio, "tenant_owner")
    made = c.post(f"{base}/{kind}", headers=owner, json={"client_id": client_id, "items": items("100.00", "20.00")})
    assert made.status_code == 201, made.text
    doc = made.json()
    if send:
        assert c.post(f"{base}/{kind}/{doc['id']}/send", headers=owner).status_code == 200
    return doc


def test_staff_and_client_download(engine, warehouse_url, tenant_id, tmp_path, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path / "home"))
    studio = make_studio(engine, tenant_id, roles=("tenant_owner", "viewer", "nurse"))
    foreign = make_studio(engine, f"{tenant_id}-b", roles=("tenant_owner",))
    with client(engine, warehouse_url) as c:
        own_quote = _make(c, studio, "quotes", studio.client_id, send=True)
        own_invoice = _make(c, studio, "invoices", studio.client_id, send=True)
        draft = _make(c, studio, "invoices", studio.client_id, send=False)
        theirs = _make(c, studio, "invoices", studio.other_client_id, send=True)
        base, viewer = f"/studios/{studio.tenant}", _auth(studio, "viewer")
        got = c.get(f"{base}/invoices/{own_invoice['id']}/pdf", headers=viewer)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "application/pdf" and got.content.startswith(b"%PDF-")
        number = own_invoice["document_number"]
        assert got.headers["content-disposition"] == f'inline; filename="invoice-{number}.pdf"'
        etag = got.headers["etag"]
        same = c.get(f"{base}/invoices/{own_invoice['id']}/pdf", headers={**viewer, "If-None-Match": etag})
        assert same.status_code == 304 and same.content == b""
        saved = c.get(f"{base}/quotes/{own_quote['id']}/pdf?download=true", headers=viewer)
        assert saved.headers["content-disposition"] == \
            f'attachment; filename="quote-{own_quote["document_number"]}.pdf"'
        assert (tmp_path / "home" / "pdf-cache" / studio.tenant).is_dir()
        assert c.app.state.storage.exists("pdfs", f"{studio.tenant}/invoice-{number}.pdf")
        assert c.get(f"{base}/invoices/{draft['id']}/pdf", headers=viewer).status_code == 200  # staff see drafts

        # Staff without studio.view, the portal's client and another studio's staff are refused.
        for role in ("nurse", "customer"):
            assert c.get(f"{base}/invoices/{own_invoice['id']}/pdf", headers=_auth(studio, role)).status_code == 403
        assert c.get(f"{base}/invoices/{own_invoice['id']}/pdf",
                     headers=_auth(foreign, "tenant_owner")).status_code == 403
        missing = c.get(f"{base}/invoices/{own_invoice['id'] + 999}/pdf", headers=viewer)
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"

        # The client, in the portal: their own sent documents; not their draft, not another client's.
        me, portal = _auth(studio, "customer"), f"{base}/portal"
        mine = c.get(f"{portal}/invoices/{own_invoice['id']}/pdf", headers=me)
        assert mine.status_code == 200 and mine.content == got.content and mine.headers["etag"] == etag
        assert c.get(f"{portal}/quotes/{own_quote['id']}/pdf", headers=me).status_code == 200
        for path in (f"invoices/{draft['id']}", f"invoices/{theirs['id']}"):
            refused = c.get(f"{portal}/{path}/pdf", headers=me)
            assert refused.status_code == 404 and refused.json()["type"].endswith("invoice-not-found"), path
        assert c.get(f"{portal}/invoices/{theirs['id']}/pdf", headers=_auth(studio, "other_customer")).status_code == 200
        assert c.get(f"{portal}/invoices/{own_invoice['id']}/pdf", headers=viewer).status_code == 403  # staff: no portal
        assert c.post(f"{base}/invoices/{own_invoice['id']}/email", json={}, headers=me).status_code == 403


def _connect_resend(engine, tenant: str, sandbox) -> None:
    with engine.begin() as conn:
        set_connection(conn, tenant, "resend", f"{sandbox.url}/resend", {"api_key": RESEND_KEY},
                       {"from": "Print Sydney Test <hello@print.test>"})


def test_email_a_draft_invoice(engine, warehouse_url, tenant_id, sandbox_reset, tmp_path, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path / "home"))
    studio = make_studio(engine, tenant_id, roles=("tenant_owner", "viewer"))
    httpx.put(f"{sandbox_reset.url}/_sandbox/resend/limits", json={"emails": {"limit": 1000, "window_s": 1}})
    with client(engine, warehouse_url) as c:
        admin, base = _auth(studio, "tenant_owner"), f"/studios/{studio.tenant}"
        invoice = _make(c, studio, "invoices", studio.client_id, send=False)
        url = f"{base}/invoices/{invoice['id']}/email"

        # Refused before anything changes: no email connection (409), then no address (422).
        refused = c.post(url, json={}, headers=admin)
        assert refused.status_code == 409 and refused.json()["type"].endswith("no-email-connection")
        _connect_resend(engine, studio.tenant, sandbox_reset)
        with engine.begin() as conn:
            conn.execute(sa.update(studio_clients).where(studio_clients.c.id == studio.client_id).values(email=None))
        no_address = c.post(url, json={}, headers=admin)
        assert no_address.status_code == 422 and no_address.json()["type"].endswith("no-address")
        assert c.get(f"{base}/invoices/{invoice['id']}", headers=admin).json()["status"] == "draft"
        with engine.begin() as conn:
            conn.execute(sa.update(studio_clients).where(studio_clients.c.id == studio.client_id)
                         .values(email="ada@client.test"))

        # A draft is issued and sent first, so the emailed PDF carries its dates and its link.
        sent = c.post(url, json={"message": "Thanks again."}, headers=admin)
        assert sent.status_code == 200, sent.text
        body = sent.json()
        number = invoice["document_number"]
        assert body["filename"] == f"invoice-{number}.pdf" and body["to"] == "ada@client.test"
        assert body["already_sent"] is False
        now = c.get(f"{base}/invoices/{invoice['id']}", headers=admin).json()
        assert now["status"] == "issued" and now["issue_date"] and now["due_date"] and now["sent_at"]
        again = c.post(url, json={"message": "Thanks again."}, headers=admin)
        assert again.json() == {**body, "already_sent": True}
        elsewhere = c.post(url, json={"to": "accounts@client.test"}, headers={**admin, "Idempotency-Key": "k1"})
        assert elsewhere.status_code == 200 and elsewhere.json()["to"] == "accounts@client.test"
        reused = c.post(url, json={"to": "other@client.test"}, headers={**admin, "Idempotency-Key": "k1"})
        assert reused.status_code == 200 and reused.json()["already_sent"] is True  # the key names the first send
        assert c.post(url, json={"to": "not an address"}, headers=admin).status_code == 422
        for role in ("viewer", "customer"):
            assert c.post(url, json={}, headers=_auth(studio, role)).status_code == 403
        page = c.app.state.studio_payments.links.page_url(studio.tenant, invoice["id"])
        opened = c.get(urlsplit(page).path + "?" + urlsplit(page).query)
        assert opened.status_code == 200 and number in opened.text  # the emailed link opens the invoice page
    emails = httpx.get(f"{sandbox_reset.url}/_sandbox/resend/emails").json()["emails"]
    mine = [e for e in emails if e["subject"] == f"Invoice {number} from Print Sydney Test"]
    assert [e["to"] for e in mine] == [["ada@client.test"], ["accounts@client.test"]]
    assert all(e["attachments"][0]["filename"] == f"invoice-{number}.pdf" for e in mine)
    assert all(page in e["text"] and "Thanks again." in mine[0]["text"] for e in mine)
    with engine.connect() as conn:
        a = studio_activity_logs.c
        logged = conn.execute(sa.select(a.action, a.actor_kind).where(
            a.tenant_id == studio.tenant, a.entity_type == "invoice", a.entity_id == invoice["id"]).order_by(a.id)).all()
    assert [x for x, _ in logged] == ["created", "issued", "sent", "emailed", "emailed"]
    assert {kind for _, kind in logged} == {"staff"}


def test_email_a_sent_quote_and_a_draft_quote(engine, warehouse_url, tenant_id, sandbox_reset, tmp_path, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path / "home"))
    studio = make_studio(engine, tenant_id, roles=("tenant_owner",))
    httpx.put(f"{sandbox_reset.url}/_sandbox/resend/limits", json={"emails": {"limit": 1000, "window_s": 1}})
    _connect_resend(engine, studio.tenant, sandbox_reset)
    with client(engine, warehouse_url) as c:
        admin, base = _auth(studio, "tenant_owner"), f"/studios/{studio.tenant}"
        sent = _make(c, studio, "quotes", studio.client_id, send=True)
        draft = _make(c, studio, "quotes", studio.client_id, send=False)
        for quote in (sent, draft):
            answer = c.post(f"{base}/quotes/{quote['id']}/email", json={}, headers=admin)
            assert answer.status_code == 200, answer.text
            now = c.get(f"{base}/quotes/{quote['id']}", headers=admin).json()
            assert now["status"] == "sent" and now["valid_until"] and now["sent_at"]
        assert c.post(f"{base}/quotes/999999/email", json={}, headers=admin).status_code == 404
    with engine.connect() as conn:
        a = studio_activity_logs.c
        actions = conn.execute(sa.select(a.action).where(a.tenant_id == studio.tenant, a.entity_type == "quote",
                                                         a.entity_id == draft["id"]).order_by(a.id)).scalars().all()
    assert actions == ["created", "sent", "emailed"]


def _noise_png(size: int) -> bytes:
    """A PNG that does not compress (random pixels): ``size`` x ``size`` pixels, ~3 bytes each."""
    import io
    import os

    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(out, "PNG")
    return out.getvalue()


def test_upload_the_logo(engine, warehouse_url, tenant_id, tmp_path, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path / "home"))
    studio = make_studio(engine, tenant_id, roles=("tenant_owner", "viewer"))
    png = _noise_png(200)
    assert 64 * 1024 < len(png) < 1024 * 1024  # above the API's usual body cap, within the logo's
    with client(engine, warehouse_url) as c:
        owner, base = _auth(studio, "tenant_owner"), f"/studios/{studio.tenant}"
        invoice = _make(c, studio, "invoices", studio.client_id, send=True)
        pdf = f"{base}/invoices/{invoice['id']}/pdf"
        before = c.get(pdf, headers=owner).headers["etag"]
        put = c.put(f"{base}/business/logo", content=png, headers={**owner, "Content-Type": "image/png"})
        assert put.status_code == 200, put.text
        assert put.json()["logo_key"] == f"{studio.tenant}/business/logo.png"
        storage = c.app.state.storage
        assert storage.get("attachments", f"{studio.tenant}/business/logo.png") == png
        with_logo = c.get(pdf, headers=owner)
        assert with_logo.headers["etag"] != before  # the PDF is printed again, with the logo

        svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60"><rect width="120" height="60"/></svg>'
        put = c.put(f"{base}/business/logo", content=svg, headers={**owner, "Content-Type": "image/svg+xml"})
        assert put.status_code == 200 and put.json()["logo_key"] == f"{studio.tenant}/business/logo.svg"
        assert not storage.exists("attachments", f"{studio.tenant}/business/logo.png")  # the old one is gone
        assert c.get(pdf, headers=owner).headers["etag"] not in (before, with_logo.headers["etag"])

        refused = {
            "a GIF": (b"GIF89a" + bytes(64), "image/gif", 415),
            "not the PNG it claims": (b"<svg></svg>", "image/png", 415),
            "too large": (_noise_png(700), "image/png", 413),
        }
        for why, (data, kind, status) in refused.items():
            answer = c.put(f"{base}/business/logo", content=data, headers={**owner, "Content-Type": kind})
            assert answer.status_code == status, (why, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        assert c.put(f"{base}/business/logo", content=png,
                     headers={**_auth(studio, "viewer"), "Content-Type": "image/png"}).status_code == 403
        assert c.get(f"{base}/business", headers=owner).json()["logo_key"].endswith("logo.svg")
        # The rest of the API keeps its own cap.
        big = c.put(f"{base}/business", content=b"{" + b" " * 70_000 + b"}",
                    headers={**owner, "Content-Type": "application/json"})
        assert big.status_code == 413
