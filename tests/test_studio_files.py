"""The studio's files through the real app (TestClient, ``create_app``) and the local backend:
attachments of invoices and order files of clients, uploaded by staff, listed and downloaded by
staff and by the client through signed links served at ``/files``; every refusal (size, type,
ownership, tenant, altered or expired link) and every failure (row write, put, commit) leaves
nothing behind. Once on the S3 backend too, against moto's standalone server."""

from __future__ import annotations

import contextlib
import time
import types
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import resources.storage.local as local_module
from api.app import create_app
from people.credentials import Passwords
from people.users import create_key, create_user, grant
from resources.storage import ATTACHMENTS, ORDER_FILES
from resources.storage.local import LocalStorage
from resources.storage.settings import StorageSettings
from tests.api_storefront import settings_for
from tests.s3_server import MotoServer
from warehouse.db import make_engine
from warehouse.tables.studio import studio_activity_logs, studio_attachments, studio_business, studio_clients, \
    studio_invoices, studio_order_files
from warehouse.tenants import add_tenant

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
STL = b"solid cube\n  facet normal 0 0 1\n  endfacet\nendsolid cube\n"
LIMIT = 4096  # the attachments and order-files buckets' limit in these tests
PASSWORDS = Passwords(1024, 1)


@dataclass
class Studio:
    tenant: str
    other: str  # a second studio
    clients: dict[str, int] = field(default_factory=dict)  # a, b (own studio), x (the other's)
    invoices: dict[str, int] = field(default_factory=dict)  # a, a_draft, b, x
    keys: dict[str, str] = field(default_factory=dict)  # caller -> API key

    def auth(self, caller: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[caller]}"}


def make_studio(engine: sa.Engine, tenant_id: str) -> Studio:
    s = Studio(tenant_id, f"{tenant_id}-x")
    with engine.begin() as conn:
        add_tenant(conn, s.tenant, "3D Print Sydney")
        add_tenant(conn, s.other, "Other Prints")
        for tenant, name in ((s.tenant, "3D Print Sydney"), (s.other, "Other Prints")):
            conn.execute(sa.insert(studio_business).values(tenant_id=tenant, name=name))

        def client(name: str, tenant: str) -> int:
            return conn.execute(sa.insert(studio_clients).values(tenant_id=tenant, name=name)
                                .returning(studio_clients.c.id)).scalar_one()

        def invoice(tenant: str, client_id: int, number: int, status: str) -> int:
            return conn.execute(sa.insert(studio_invoices).values(
                tenant_id=tenant, client_id=client_id, number=number, document_number=f"INV-{number:04d}",
                status=status).returning(studio_invoices.c.id)).scalar_one()

        s.clients = {"a": client("Ada", s.tenant), "b": client("Bo", s.tenant), "x": client("Xi", s.other)}
        s.invoices = {"a": invoice(s.tenant, s.clients["a"], 1, "issued"),
                      "a_draft": invoice(s.tenant, s.clients["a"], 2, "draft"),
                      "b": invoice(s.tenant, s.clients["b"], 3, "issued"),
                      "x": invoice(s.other, s.clients["x"], 1, "issued")}

        def user(caller: str, tenant: str, role: str, customer_id: int | None = None) -> None:
            user_id = create_user(conn, PASSWORDS, f"{caller}@{tenant_id}.test", caller, None)
            grant(conn, user_id, tenant, role, customer_id=None if customer_id is None else str(customer_id))
            s.keys[caller] = create_key(conn, user_id, "files").key

        user("admin", s.tenant, "tenant_admin")
        user("staff", s.tenant, "clinic_staff")  # studio.view only
        user("nurse", s.tenant, "nurse")  # no studio permission
        user("ada", s.tenant, "customer", s.clients["a"])
        user("bo", s.tenant, "customer", s.clients["b"])
        user("other_admin", s.other, "tenant_admin")
    return s


def rules(**overrides) -> StorageSettings:
    return StorageSettings(max_upload_bytes={ATTACHMENTS: LIMIT, ORDER_FILES: LIMIT}, signed_url_expiry_s=60,
                           **overrides)


@contextlib.contextmanager
def app_client(warehouse_url: str, engine: sa.Engine, storage) -> TestClient:
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine, storage=storage,
                     storage_settings=rules())
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def world(engine, tenant_id, tmp_path, warehouse_url):
    studio = make_studio(engine, tenant_id)
    storage = LocalStorage(tmp_path / "storage", b"files-test-secret", "http://testserver")
    with app_client(warehouse_url, engine, storage) as client:
        yield studio, storage, client


def attachments_url(s: Studio, invoice: str = "a", tenant: str | None = None) -> str:
    return f"/studios/{tenant or s.tenant}/invoices/{s.invoices[invoice]}/attachments"


def upload(client: TestClient, url: str, headers: dict, name: str, data: bytes, content_type: str) -> httpx.Response:
    return client.post(url, headers=headers, files={"file": (name, data, content_type)})


def rows(engine: sa.Engine, table: sa.Table, tenant_id: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(table.c.tenant_id == tenant_id)
                                              .order_by(table.c.id)).mappings()]


def activity(engine: sa.Engine, tenant_id: str) -> list[tuple[str, str, int]]:
    a = studio_activity_logs.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(a.action, a.actor_kind, a.entity_id)
                                               .where(a.tenant_id == tenant_id).order_by(a.id))]


# -- attachments ---------------------------------------------------------------------------------------

def test_staff_attach_list_download_and_delete(world, engine):
    s, storage, client = world
    added = upload(client, attachments_url(s), s.auth("admin"), "Spec sheet (v2).pdf", PDF, "application/pdf")
    assert added.status_code == 201, added.text
    att = added.json()
    assert att["filename"] == "Spec sheet (v2).pdf" and att["size_bytes"] == len(PDF)
    assert att["content_type"] == "application/pdf" and att["invoice_id"] == s.invoices["a"]
    key = f"{s.tenant}/{s.invoices['a']}/Spec_sheet_v2.pdf"  # the seed's {invoiceId}/{filename}
    assert storage.list(ATTACHMENTS, f"{s.tenant}/") == [(key, len(PDF))]

    listed = client.get(attachments_url(s), headers=s.auth("staff"))  # studio.view lists
    assert listed.status_code == 200 and [a["id"] for a in listed.json()] == [att["id"]]
    link = client.get(f"{attachments_url(s)}/{att['id']}/url", headers=s.auth("staff"))
    assert link.status_code == 200, link.text
    body = link.json()
    assert body["url"].startswith(f"http://testserver/files/attachments/{key}?")
    left = (dt_parse(body["expires_at"]) - time.time())
    assert 55 <= left <= 61
    got = client.get(body["url"])  # no credentials: the link is the permission
    assert got.status_code == 200 and got.content == PDF and got.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''Spec%20sheet%20%28v2%29.pdf" in got.headers["content-disposition"]

    assert client.delete(f"{attachments_url(s)}/{att['id']}", headers=s.auth("staff")).status_code == 403
    gone = client.delete(f"{attachments_url(s)}/{att['id']}", headers=s.auth("admin"))
    assert gone.status_code == 204
    assert storage.list(ATTACHMENTS) == [] and rows(engine, studio_attachments, s.tenant) == []
    assert client.get(body["url"]).status_code == 404  # the link outlives nothing
    again = client.delete(f"{attachments_url(s)}/{att['id']}", headers=s.auth("admin"))
    assert again.status_code == 404 and again.json()["type"].endswith("/attachment-not-found")
    assert [a for a, _, _ in activity(engine, s.tenant)] == ["attachment_added", "attachment_deleted"]
    assert {(k, e) for _, k, e in activity(engine, s.tenant)} == {("staff", s.invoices["a"])}


def dt_parse(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_the_same_name_replaces_the_file_in_place(world, engine):
    s, storage, client = world
    first = upload(client, attachments_url(s), s.auth("admin"), "photo.png", PNG, "image/png")
    second = upload(client, attachments_url(s), s.auth("admin"), "photo.png", PNG + b"v2", "image/png")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["size_bytes"] == len(PNG) + 2
    assert len(rows(engine, studio_attachments, s.tenant)) == 1
    assert storage.get(ATTACHMENTS, f"{s.tenant}/{s.invoices['a']}/photo.png") == PNG + b"v2"
    other = upload(client, attachments_url(s), s.auth("admin"), "notes.txt", b"print in PETG", "text/plain")
    assert other.status_code == 201 and len(rows(engine, studio_attachments, s.tenant)) == 2
    assert [a for a, _, _ in activity(engine, s.tenant)] == ["attachment_added", "attachment_replaced",
                                                             "attachment_added"]


def test_oversize_and_wrong_type_are_refused_and_leave_nothing(world, engine):
    s, storage, client = world
    url, admin = attachments_url(s), s.auth("admin")
    big = upload(client, url, admin, "big.pdf", PDF.ljust(LIMIT + 1, b" "), "application/pdf")
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
    assert big.json()["type"].endswith("/file-too-large") and big.json()["limit"] == LIMIT
    assert upload(client, url, admin, "ok.pdf", PDF.ljust(LIMIT, b" "), "application/pdf").status_code == 201
    exe = upload(client, url, admin, "setup.pdf", b"MZ\x90\x00", "application/pdf")
    assert exe.status_code == 415 and exe.json()["type"].endswith("/unsupported-file-type")
    html = upload(client, url, admin, "page.html", b"<html><script>", "text/html")
    assert html.status_code == 415 and "application/pdf" in html.json()["accepted"]
    # past the route's limit (the bucket's plus the form's envelope): refused on Content-Length, unread
    huge = client.post(url, headers={**admin, "content-type": "multipart/form-data; boundary=x"},
                       content=b"x" * (LIMIT + 70 * 1024))
    assert huge.status_code == 413 and huge.json()["type"].endswith("/body-too-large")

    def stream():  # no Content-Length: counted as it arrives
        for _ in range(200):
            yield b"x" * 1024

    streamed = client.post(url, headers={**admin, "content-type": "multipart/form-data; boundary=x"},
                           content=stream())
    assert streamed.status_code == 413
    assert [k for k, _ in storage.list(ATTACHMENTS)] == [f"{s.tenant}/{s.invoices['a']}/ok.pdf"]
    assert [r["filename"] for r in rows(engine, studio_attachments, s.tenant)] == ["ok.pdf"]
    assert list((storage.root / ".partial").iterdir()) == []


def test_only_upload_routes_take_more_than_the_app_body_limit(world):
    s, _, client = world
    body = b"x" * (100 * 1024)  # above 64 KiB, below the upload routes' limit
    for method, url in (("GET", attachments_url(s)), ("POST", f"/studios/{s.tenant}/invoices/1/void"),
                        ("POST", "/auth/token")):
        answer = client.request(method, url, headers={**s.auth("admin"), "content-type": "application/json"},
                                content=body)
        assert answer.status_code == 413 and answer.json()["type"].endswith("/body-too-large"), (method, url)


def test_the_form_is_read_only_after_the_permission_holds(world):
    """A caller without ``studio.manage`` is refused before their body is parsed (403, not the 400 a
    broken form gets), so nobody can make the API spool a file it would refuse anyway."""
    s, storage, client = world
    broken = {"content-type": "multipart/form-data; boundary=b"}
    body = b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n"  # a part without its name
    for caller in ("nurse", "staff", "ada"):
        answer = client.post(attachments_url(s), headers={**s.auth(caller), **broken}, content=body)
        assert answer.status_code == 403, (caller, answer.status_code)
    assert client.post(attachments_url(s), headers={**s.auth("admin"), **broken}, content=body).status_code == 400
    missing = client.post(attachments_url(s), headers=s.auth("admin"), data={"other": "x"})
    assert missing.status_code == 422 and missing.json()["type"].endswith("/file-missing")
    assert storage.list(ATTACHMENTS) == []


# -- ownership ---------------------------------------------------------------------------------------------

def test_clients_reach_only_their_own_sent_invoices_files(world):
    s, _, client = world
    admin = s.auth("admin")
    mine = upload(client, attachments_url(s, "a"), admin, "mine.pdf", PDF, "application/pdf").json()
    theirs = upload(client, attachments_url(s, "b"), admin, "theirs.pdf", PDF + b"secret", "application/pdf").json()
    draft = upload(client, attachments_url(s, "a_draft"), admin, "draft.pdf", PDF, "application/pdf").json()
    portal = f"/studios/{s.tenant}/portal/invoices"

    listed = client.get(f"{portal}/{s.invoices['a']}/attachments", headers=s.auth("ada"))
    assert listed.status_code == 200 and [a["id"] for a in listed.json()] == [mine["id"]]
    link = client.get(f"{portal}/{s.invoices['a']}/attachments/{mine['id']}/url", headers=s.auth("ada"))
    assert link.status_code == 200 and client.get(link.json()["url"]).content == PDF
    refused = [
        f"{portal}/{s.invoices['b']}/attachments",  # Bo's invoice
        f"{portal}/{s.invoices['b']}/attachments/{theirs['id']}/url",
        f"{portal}/{s.invoices['a']}/attachments/{theirs['id']}/url",  # Bo's file under my invoice
        f"{portal}/{s.invoices['a_draft']}/attachments",  # a draft is the studio's own
        f"{portal}/{s.invoices['a_draft']}/attachments/{draft['id']}/url",
        f"{portal}/{s.invoices['x']}/attachments",  # another studio's invoice
    ]
    for url in refused:
        answer = client.get(url, headers=s.auth("ada"))
        assert answer.status_code == 404 and "secret" not in answer.text, (url, answer.status_code)
    # a client is no staff: the staff routes refuse them for the permission, whatever the invoice
    assert client.get(attachments_url(s, "a"), headers=s.auth("ada")).status_code == 403
    assert upload(client, attachments_url(s, "a"), s.auth("ada"), "x.pdf", PDF, "application/pdf").status_code == 403
    assert client.get(f"{portal}/{s.invoices['b']}/attachments", headers=s.auth("bo")).status_code == 200


def test_another_studios_ids_are_404_and_its_path_403(world, engine):
    s, storage, client = world
    x_url = attachments_url(s, "x", tenant=s.other)
    theirs = upload(client, x_url, s.auth("other_admin"), "x.pdf", PDF, "application/pdf")
    assert theirs.status_code == 201
    x_id = theirs.json()["id"]
    # my own studio's path with the other studio's ids: no such invoice here (404), nothing said of theirs
    for method, url in (("GET", attachments_url(s, "x")), ("GET", f"{attachments_url(s, 'x')}/{x_id}/url"),
                        ("DELETE", f"{attachments_url(s, 'x')}/{x_id}"),
                        ("GET", f"{attachments_url(s, 'a')}/{x_id}/url")):
        answer = client.request(method, url, headers=s.auth("admin"))
        assert answer.status_code == 404, (method, url, answer.status_code)
    again = upload(client, attachments_url(s, "x"), s.auth("admin"), "x.pdf", PDF, "application/pdf")
    assert again.status_code == 404 and storage.list(ATTACHMENTS, f"{s.tenant}/") == []
    # the other studio's own path: I hold nothing there
    assert client.get(x_url, headers=s.auth("admin")).status_code == 403
    assert storage.exists(ATTACHMENTS, f"{s.other}/{s.invoices['x']}/x.pdf")
    assert len(rows(engine, studio_attachments, s.other)) == 1


# -- links ---------------------------------------------------------------------------------------------------

def _altered(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_issued_links_expire_and_cannot_be_altered(world, monkeypatch):
    s, _, client = world
    admin = s.auth("admin")
    mine = upload(client, attachments_url(s, "a"), admin, "mine.pdf", PDF, "application/pdf").json()
    upload(client, attachments_url(s, "b"), admin, "mine.pdf", PDF + b"secret", "application/pdf")
    url = client.get(f"{attachments_url(s)}/{mine['id']}/url", headers=admin).json()["url"]
    assert client.get(url).status_code == 200
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    for link in (_altered(url, "signature", ("A" if signature[0] != "A" else "B") + signature[1:]),
                 _altered(url, "expires", str(int(parse_qs(urlsplit(url).query)["expires"][0]) + 3600)),
                 _altered(url, "filename", "evil.html"),
                 url.replace(f"/{s.invoices['a']}/mine.pdf", f"/{s.invoices['b']}/mine.pdf")):
        refused = client.get(link)
        assert refused.status_code == 403 and b"secret" not in refused.content, link
    # the clock passes the link's expiry (60 s in these rules): the same link is refused
    monkeypatch.setattr(local_module, "time", types.SimpleNamespace(time=lambda: time.time() + 61))
    expired = client.get(url)
    assert expired.status_code == 403 and expired.json()["detail"] == "The link has expired."


# -- failures leave nothing ------------------------------------------------------------------------------------

@contextlib.contextmanager
def failing_engine(warehouse_url: str, when: str):
    """An engine of its own whose statements fail while armed, as a lost database's would (a real
    driver-level failure): ``insert``, the first insert of a studio row; ``after-put``, the first
    query after the activity entry, which the upload makes once its object is stored."""
    engine = make_engine(warehouse_url)
    armed = {"on": False, "logged": False}

    def before_execute(conn, cursor, text, params, context, executemany):
        if not armed["on"]:
            return
        statement = text.lstrip().upper()
        if when == "after-put" and statement.startswith("INSERT INTO STUDIO_ACTIVITY_LOGS"):
            armed["logged"] = True
        elif (statement.startswith("INSERT INTO STUDIO_") if when == "insert"
              else armed["logged"] and statement.startswith("SELECT")):
            armed["logged"] = False
            raise sa.exc.OperationalError(text, params, Exception("the database went away"))

    sa.event.listen(engine, "before_cursor_execute", before_execute)
    try:
        yield engine, armed
    finally:
        engine.dispose()


@pytest.mark.parametrize("when", ["insert", "after-put"])
def test_a_failed_row_write_leaves_no_object(engine, warehouse_url, tenant_id, tmp_path, when):
    s = make_studio(engine, tenant_id)
    storage = LocalStorage(tmp_path, b"k", "http://testserver")
    with failing_engine(warehouse_url, when) as (broken, armed), \
            app_client(warehouse_url, broken, storage) as client:
        armed["on"] = True
        failed = upload(client, attachments_url(s), s.auth("admin"), "a.pdf", PDF, "application/pdf")
        armed["on"] = False
        # the database went away: a 503 to retry (api.problems), its words never shown
        assert failed.status_code == 503 and failed.headers["content-type"] == "application/problem+json"
        assert "went away" not in failed.text
        assert storage.list(ATTACHMENTS) == [] and rows(engine, studio_attachments, s.tenant) == []
        files_url = f"/studios/{s.tenant}/clients/{s.clients['a']}/files"
        armed["on"] = True
        failed = upload(client, files_url, s.auth("admin"), "part.stl", STL, "model/stl")
        armed["on"] = False
        assert failed.status_code == 503
        assert storage.list(ORDER_FILES) == [] and rows(engine, studio_order_files, s.tenant) == []
        assert activity(engine, s.tenant) == []


def test_a_replacement_whose_transaction_fails_puts_the_previous_file_back(engine, warehouse_url, tenant_id,
                                                                          tmp_path):
    s = make_studio(engine, tenant_id)
    storage = LocalStorage(tmp_path, b"k", "http://testserver")
    with failing_engine(warehouse_url, "after-put") as (broken, armed), \
            app_client(warehouse_url, broken, storage) as client:
        first = upload(client, attachments_url(s), s.auth("admin"), "a.pdf", PDF, "application/pdf")
        assert first.status_code == 201
        armed["on"] = True
        failed = upload(client, attachments_url(s), s.auth("admin"), "a.pdf", PDF + b"v2", "application/pdf")
        armed["on"] = False
    assert failed.status_code == 503
    assert storage.get(ATTACHMENTS, f"{s.tenant}/{s.invoices['a']}/a.pdf") == PDF
    assert [r["size_bytes"] for r in rows(engine, studio_attachments, s.tenant)] == [len(PDF)]


def test_a_failed_put_leaves_no_row(world, engine):
    s, storage, client = world
    blocked = storage.root / ATTACHMENTS / s.tenant / str(s.invoices["a"]) / "a.pdf" / "in-the-way"
    blocked.mkdir(parents=True)  # the key's path is a folder: the store refuses to write there
    failed = upload(client, attachments_url(s), s.auth("admin"), "a.pdf", PDF, "application/pdf")
    assert failed.status_code >= 500 and rows(engine, studio_attachments, s.tenant) == []
    assert activity(engine, s.tenant) == []


# -- order files -----------------------------------------------------------------------------------------------

def test_order_files_are_kept_once_per_content_and_name_and_only_for_their_client(world, engine):
    s, storage, client = world
    url = f"/studios/{s.tenant}/clients/{s.clients['a']}/files"
    first = upload(client, url, s.auth("admin"), "Bracket.STL", STL, "application/octet-stream")
    assert first.status_code == 201, first.text
    kept = first.json()
    import hashlib

    assert kept["sha256"] == hashlib.sha256(STL).hexdigest() and kept["content_type"] == "model/stl"
    again = upload(client, url, s.auth("admin"), "Bracket.STL", STL, "application/octet-stream")
    assert again.status_code == 200 and again.json()["id"] == kept["id"]
    renamed = upload(client, url, s.auth("admin"), "Bracket v2.stl", STL, "model/stl")
    assert renamed.status_code == 201 and renamed.json()["id"] != kept["id"]
    keys = [k for k, _ in storage.list(ORDER_FILES)]
    assert len(keys) == 2 and all(k.startswith(f"{s.tenant}/{s.clients['a']}/") for k in keys)
    bos = upload(client, f"/studios/{s.tenant}/clients/{s.clients['b']}/files", s.auth("admin"), "b.stl", STL,
                 "model/stl").json()
    assert upload(client, f"/studios/{s.tenant}/clients/{s.clients['x']}/files", s.auth("admin"), "x.stl", STL,
                  "model/stl").status_code == 404
    assert upload(client, url, s.auth("admin"), "a.exe", b"MZ\x90\x00", "application/octet-stream").status_code == 415

    portal = f"/studios/{s.tenant}/portal/files"
    mine = client.get(portal, headers=s.auth("ada"))
    assert mine.status_code == 200 and [f["id"] for f in mine.json()] == [kept["id"], renamed.json()["id"]]
    link = client.get(f"{portal}/{kept['id']}/url", headers=s.auth("ada"))
    assert link.status_code == 200 and client.get(link.json()["url"]).content == STL
    assert client.get(f"{portal}/{bos['id']}/url", headers=s.auth("ada")).status_code == 404
    assert client.get(f"{url}/{bos['id']}/url", headers=s.auth("admin")).status_code == 404  # wrong client
    assert client.get(url, headers=s.auth("staff")).status_code == 200
    assert client.get(url, headers=s.auth("nurse")).status_code == 403

    assert client.delete(f"{url}/{kept['id']}", headers=s.auth("admin")).status_code == 204
    assert len(storage.list(ORDER_FILES, f"{s.tenant}/{s.clients['a']}/")) == 1
    assert [f["id"] for f in rows(engine, studio_order_files, s.tenant)] == [renamed.json()["id"], bos["id"]]
    assert [a for a, k, _ in activity(engine, s.tenant)].count("order_file_added") == 3
    assert ("order_file_deleted", "staff", s.clients["a"]) in activity(engine, s.tenant)


# -- S3 ---------------------------------------------------------------------------------------------------------------

def test_on_s3_the_link_is_issued_and_downloads(engine, warehouse_url, tenant_id):
    s = make_studio(engine, tenant_id)
    moto = MotoServer().start()
    try:
        storage = moto.storage()
        with app_client(warehouse_url, engine, storage) as client:
            added = upload(client, attachments_url(s), s.auth("admin"), "spec.pdf", PDF, "application/pdf")
            assert added.status_code == 201, added.text
            link = client.get(f"{attachments_url(s)}/{added.json()['id']}/url", headers=s.auth("ada"))
            portal_link = client.get(f"/studios/{s.tenant}/portal/invoices/{s.invoices['a']}/attachments/"
                                     f"{added.json()['id']}/url", headers=s.auth("ada"))
            assert link.status_code == 403 and portal_link.status_code == 200
            url = portal_link.json()["url"]
            assert url.startswith(moto.url) and parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["60"]
            got = httpx.get(url, timeout=10)
            assert got.status_code == 200 and got.content == PDF
            deleted = client.delete(f"{attachments_url(s)}/{added.json()['id']}", headers=s.auth("admin"))
            assert deleted.status_code == 204
            assert storage.list(ATTACHMENTS) == []
    finally:
        moto.stop()


# -- concurrency ------------------------------------------------------------------------------------------------------

def test_concurrent_uploads_of_one_name_leave_one_row_matching_its_object(engine, tenant_id, tmp_path):
    """Eight staff upload ``a.pdf`` at once, each different: one row, and the stored file is the one
    the row describes (the unique key and the row lock; SQLite's writer lock)."""
    from concurrent.futures import ThreadPoolExecutor

    from studio import files

    s = make_studio(engine, tenant_id)
    storage = LocalStorage(tmp_path, b"k", "http://testserver")
    versions = [PDF + b"%" * i for i in range(8)]
    staff = files.Caller("staff")

    def attach(data: bytes):
        return files.add_attachment(engine, storage, rules(), s.tenant, s.invoices["a"], staff, "a.pdf", data,
                                    "application/pdf")

    def keep(data: bytes):
        return files.add_order_file(engine, storage, rules(), s.tenant, s.clients["a"], staff, "m.stl", STL,
                                    "model/stl")

    with ThreadPoolExecutor(8) as pool:
        attached = list(pool.map(attach, versions))
        kept = list(pool.map(keep, versions))
    assert sum(created for _, created in attached) == 1 and len({a["id"] for a, _ in attached}) == 1
    (row,) = rows(engine, studio_attachments, s.tenant)
    assert storage.get(ATTACHMENTS, row["storage_key"]) in versions
    assert len(storage.get(ATTACHMENTS, row["storage_key"])) == row["size_bytes"]
    assert sum(created for _, created in kept) == 1 and len({f["id"] for f, _ in kept}) == 1
    assert len(rows(engine, studio_order_files, s.tenant)) == 1 and len(storage.list(ORDER_FILES)) == 1
