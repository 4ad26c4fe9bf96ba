"""File storage: one contract, run against both backends (a local folder served by our API, and S3
against moto's standalone server), plus key safety, upload checks, settings, and the download route.

Downloads are real HTTP requests for the links the backends issue: with httpx to the S3 server,
and through the FastAPI app (TestClient, the whole ``create_app``) for the local backend's links.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from api.app import create_app
from resources.storage import (
    ATTACHMENTS, BUCKETS, ORDER_FILES, PDFS, TMP, InvalidKey, NotFound, Storage, StorageError, attachment_key,
    check_key, content_disposition, logo_key, order_file_key, pdf_key, safe_filename, tmp_key,
)
from resources.storage.local import LocalStorage
from resources.storage.s3 import S3Storage
from resources.storage.settings import StorageSettings, storage_from_settings
from resources.storage.uploads import MAX_LOGO_BYTES, TooLarge, UnsupportedType, check_logo, check_upload
from tests.api_storefront import settings_for
from tests.s3_server import MotoServer, free_port

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
STL = b"solid cube\n  facet normal 0 0 1\n  endfacet\nendsolid cube\n"
MOTO_SKIPS_PRESIGN = ("moto's S3 server does not verify presigned URLs (moto 5.2, s3/responses.py: no signature "
                      "or expiry check on GET), where AWS, MinIO and R2 answer 403: the S3 link is checked for "
                      "its X-Amz-Expires and signature, and downloaded, but its refusal cannot be seen here")


@pytest.fixture(scope="session")
def moto():
    server = MotoServer().start()
    yield server
    server.stop()


class Backend:
    """A storage backend and the HTTP client its links are opened with."""

    def __init__(self, name: str, storage: Storage, http) -> None:
        self.name, self.storage, self.http = name, storage, http

    def fetch(self, url: str) -> httpx.Response:
        return self.http.get(url)


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path, warehouse_url, engine):
    if request.param == "local":
        storage = LocalStorage(tmp_path / "storage", b"test-storage-secret", "http://testserver")
        app = create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine, storage=storage)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Backend("local", storage, client)
    else:
        storage = request.getfixturevalue("moto").storage()
        with httpx.Client(timeout=10) as client:
            yield Backend("s3", storage, client)
        storage.close()


# -- the contract ------------------------------------------------------------------------------

def test_put_get_exists_replace(backend):
    s = backend.storage
    assert isinstance(s, Storage)  # the protocol, method for method
    key = attachment_key("t-acme", 41, "Spec sheet.pdf")
    assert not s.exists(ATTACHMENTS, key)
    s.put(ATTACHMENTS, key, PDF, "application/pdf")
    assert s.exists(ATTACHMENTS, key) and s.get(ATTACHMENTS, key) == PDF
    s.put(ATTACHMENTS, key, PDF + b"v2", "application/pdf")  # the same key again replaces it
    assert s.get(ATTACHMENTS, key) == PDF + b"v2"
    assert s.list(ATTACHMENTS, "t-acme/") == [(key, len(PDF) + 2)]
    assert not s.exists(PDFS, key)  # buckets are apart


def test_get_of_a_missing_key_is_not_found(backend):
    with pytest.raises(NotFound):
        backend.storage.get(PDFS, "t-acme/invoice-404.pdf")
    assert not backend.storage.exists(PDFS, "t-acme/invoice-404.pdf")


def test_delete_counts_what_existed_and_leaves_the_rest(backend):
    s = backend.storage
    keys = [tmp_key("t-acme", "7", f"part{i}.stl") for i in range(3)]
    for key in keys:
        s.put(TMP, key, STL, "model/stl")
    assert s.delete(TMP, [keys[0], keys[1], "t-acme/7/never-there/x.stl"]) == 2
    assert [k for k, _ in s.list(TMP)] == [keys[2]]
    assert s.delete(TMP, [keys[0]]) == 0  # again: nothing left to delete, no error
    assert s.get(TMP, keys[2]) == STL


def test_list_is_recursive_sorted_and_scoped_by_prefix(backend):
    s = backend.storage
    mine = sorted(order_file_key("t-acme", 3, name) for name in ("b.stl", "a.3mf"))
    other_client = order_file_key("t-acme", 30, "c.stl")
    other_tenant = order_file_key("t-other", 3, "d.stl")
    for key, size in ((mine[0], 5), (mine[1], 7), (other_client, 1), (other_tenant, 2)):
        s.put(ORDER_FILES, key, b"x" * size, "model/stl")
    assert s.list(ORDER_FILES, "t-acme/3/") == sorted([(mine[0], 5), (mine[1], 7)])
    assert [k for k, _ in s.list(ORDER_FILES, "t-acme/")] == sorted([*mine, other_client])
    assert len(s.list(ORDER_FILES)) == 4 and s.list(ORDER_FILES, "t-none/") == []


def test_a_signed_url_downloads_the_file_with_its_type_and_name(backend):
    s = backend.storage
    key = attachment_key("t-acme", 41, "Spec sheet.pdf")
    s.put(ATTACHMENTS, key, PDF, "application/pdf")
    got = backend.fetch(s.signed_url(ATTACHMENTS, key, expires_s=60, filename="Devis n°3 (final).pdf"))
    assert got.status_code == 200, got.text
    assert got.content == PDF and got.headers["content-type"] == "application/pdf"
    disposition = got.headers["content-disposition"]
    assert disposition == content_disposition("Devis n°3 (final).pdf")
    assert disposition.startswith('attachment; filename="Devis n3 (final).pdf"')
    assert "filename*=UTF-8''Devis%20n%C2%B03%20%28final%29.pdf" in disposition
    plain = backend.fetch(s.signed_url(ATTACHMENTS, key, expires_s=60))  # default: the key's own name
    assert plain.status_code == 200 and 'filename="Spec_sheet.pdf"' in plain.headers["content-disposition"]


def test_an_expired_link_is_refused(backend):
    s = backend.storage
    key = pdf_key("t-acme", "invoice", "INV-0001")
    s.put(PDFS, key, PDF, "application/pdf")
    url = s.signed_url(PDFS, key, expires_s=1)
    if backend.name == "s3":  # the link says so itself; the store enforces it
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Expires"] == ["1"] and query["X-Amz-Signature"]
    assert backend.fetch(url).status_code == 200
    time.sleep(2.1)
    if backend.name == "s3":
        pytest.skip(MOTO_SKIPS_PRESIGN)
    refused = backend.fetch(url)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"] == "The link has expired." and PDF not in refused.content


def _altered(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_an_altered_link_is_refused(backend):
    s = backend.storage
    key, other = attachment_key("t-acme", 41, "mine.pdf"), attachment_key("t-acme", 42, "theirs.pdf")
    s.put(ATTACHMENTS, key, PDF, "application/pdf")
    s.put(ATTACHMENTS, other, PDF + b"secret", "application/pdf")
    url = s.signed_url(ATTACHMENTS, key, expires_s=60, filename="mine.pdf")
    assert backend.fetch(url).status_code == 200
    if backend.name == "s3":
        pytest.skip(MOTO_SKIPS_PRESIGN)
    query = parse_qs(urlsplit(url).query)
    signature, expires = query["signature"][0], int(query["expires"][0])
    tampered = [
        _altered(url, "signature", ("A" if signature[0] != "A" else "B") + signature[1:]),
        _altered(url, "expires", str(expires + 3600)),  # a longer life
        _altered(url, "filename", "evil.html"),
        url.replace("/41/mine.pdf", "/42/theirs.pdf"),  # another file with the same signature
        url.replace("/attachments/", "/pdfs/"),
        url.split("&signature=")[0],  # no signature at all
        _altered(url, "expires", "soon"),
    ]
    for link in tampered:
        refused = backend.fetch(link)
        assert refused.status_code == 403, (link, refused.status_code, refused.text)
        assert refused.headers["content-type"] == "application/problem+json" and b"secret" not in refused.content


BAD_KEYS = ["../escape.pdf", "t/../../escape.pdf", "/etc/passwd", "t//x.pdf", "t/./x.pdf", "a\x00b.pdf", "a\nb",
            "C:/windows/x", "t\\..\\x", "", "t/", "x" * 1025]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_unsafe_keys_are_refused_by_every_operation(backend, key):
    s = backend.storage
    for call in (lambda: s.put(TMP, key, b"x", "text/plain"), lambda: s.get(TMP, key), lambda: s.exists(TMP, key),
                 lambda: s.delete(TMP, [key]), lambda: s.signed_url(TMP, key, expires_s=60)):
        with pytest.raises(InvalidKey):
            call()
    assert s.list(TMP) == []


def test_unknown_buckets_are_refused(backend):
    with pytest.raises(InvalidKey):
        backend.storage.put("secrets", "t/x.pdf", PDF, "application/pdf")
    with pytest.raises(InvalidKey):
        backend.storage.list("../pdfs")


# -- keys and names --------------------------------------------------------------------------------

@pytest.mark.parametrize("given,kept", [
    ("Spec sheet.pdf", "Spec_sheet.pdf"), ("Pièce 2 (final).STL", "Pièce_2_final.STL"),
    ("../../etc/passwd", "passwd"), ("C:\\Users\\kim\\part.3mf", "part.3mf"), (".htaccess", "htaccess"),
    ("..", "file"), ("", "file"), ("a\x00b\r\n.pdf", "a_b.pdf"), ('x"; filename="y.exe', "x_filename_y.exe"),
])
def test_safe_filename_keeps_a_readable_safe_name(given, kept):
    assert safe_filename(given) == kept
    assert check_key(f"t/{safe_filename(given)}")


def test_long_names_keep_their_extension():
    name = safe_filename("a" * 500 + ".stl")
    assert len(name) == 120 and name.endswith(".stl")


def test_key_helpers_follow_the_seed_layout_and_refuse_ids_that_are_paths():
    assert attachment_key("acme", 12, "quote.pdf") == "acme/12/quote.pdf"
    assert pdf_key("acme", "invoice", "INV-0007") == "acme/invoice-INV-0007.pdf"
    first, second = tmp_key("acme", "u9", "m.stl"), tmp_key("acme", "u9", "m.stl")
    assert first != second and first.startswith("acme/u9/") and first.endswith("/m.stl")
    assert order_file_key("acme", 5, "m.3mf").startswith("acme/5/")
    for bad in ("../acme", "acme/other", "", "a\x00"):
        with pytest.raises(InvalidKey):
            attachment_key(bad, 1, "x.pdf")
        with pytest.raises(InvalidKey):
            tmp_key("acme", bad, "x.stl")
        with pytest.raises(InvalidKey):
            logo_key(bad, "image/png")
    assert logo_key("acme", "image/jpeg") == "acme/business/logo.jpg"
    with pytest.raises(InvalidKey):
        logo_key("acme", "image/gif")


def test_content_disposition_cannot_be_split_or_broken_by_a_name():
    value = content_disposition('evil"\r\nSet-Cookie: x=1; .pdf')
    assert "\r" not in value and "\n" not in value and value.count('"') == 2


# -- local backend specifics ---------------------------------------------------------------------------

def test_local_files_live_under_root_bucket_key_and_nothing_partial_is_left(tmp_path):
    s = LocalStorage(tmp_path, b"k", "http://api")
    s.put(PDFS, "acme/quote-Q-1.pdf", PDF, "application/pdf")
    assert (tmp_path / "pdfs" / "acme" / "quote-Q-1.pdf").read_bytes() == PDF
    assert list((tmp_path / ".partial").iterdir()) == []
    s.delete(PDFS, ["acme/quote-Q-1.pdf"])
    assert not (tmp_path / "pdfs" / "acme").exists()  # emptied folders go too


def test_local_readers_see_a_whole_file_while_it_is_replaced(tmp_path):
    s = LocalStorage(tmp_path, b"k", "http://api")
    versions = [bytes([i]) * 2_000_000 for i in range(1, 4)]
    s.put(TMP, "acme/u/big.bin", versions[0], "application/octet-stream")
    stop, seen = threading.Event(), []

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            s.put(TMP, "acme/u/big.bin", versions[i % 3], "application/octet-stream")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            seen.append(s.get(TMP, "acme/u/big.bin"))
    finally:
        stop.set()
        thread.join()
    assert seen and all(data in versions for data in seen)


def test_local_refuses_a_symlink_out_of_its_bucket(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    s = LocalStorage(tmp_path / "store", b"k", "http://api")
    (tmp_path / "store" / "tmp").mkdir(parents=True)
    os.symlink(outside, tmp_path / "store" / "tmp" / "acme")
    with pytest.raises(InvalidKey):
        s.get(TMP, "acme/secret.txt")


def test_the_download_route_answers_404_with_the_s3_backend(moto, warehouse_url, engine):
    storage = moto.storage()
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine, storage=storage)
    with TestClient(app) as client:
        got = client.get("/files/pdfs/acme/x.pdf", params={"expires": "1", "signature": "x"})
    assert got.status_code == 404 and got.headers["content-type"] == "application/problem+json"


def test_the_download_route_refuses_unknown_buckets_and_gone_files(tmp_path, warehouse_url, engine):
    storage = LocalStorage(tmp_path, b"k", "http://testserver")
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine, storage=storage)
    with TestClient(app) as client:
        assert client.get("/files/secrets/acme/x.pdf?expires=1&signature=x").status_code == 422
        storage.put(PDFS, "acme/x.pdf", PDF, "application/pdf")
        url = storage.signed_url(PDFS, "acme/x.pdf", expires_s=60)
        storage.delete(PDFS, ["acme/x.pdf"])
        gone = client.get(url)
    assert gone.status_code == 404 and gone.json()["type"].endswith("/file-not-found")


def test_the_app_signs_local_links_with_the_api_key_and_its_public_url(tmp_path, warehouse_url, engine, monkeypatch):
    monkeypatch.setenv("STOREHOUSE_STORAGE_ROOT", str(tmp_path))
    app = create_app(settings_for(warehouse_url, 8123, worker_enabled=False), engine)
    storage = app.state.storage
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path.resolve()
    storage.put(PDFS, "acme/q.pdf", PDF, "application/pdf")
    url = storage.signed_url(PDFS, "acme/q.pdf", expires_s=app.state.storage_settings.signed_url_expiry_s)
    assert url.startswith("http://127.0.0.1:8123/files/pdfs/acme/q.pdf?")
    with TestClient(app) as client:  # a second app on the same key (another worker) opens it
        other = create_app(settings_for(warehouse_url, 8123, worker_enabled=False), engine)
        assert other.state.storage.signer.signature("pdfs", "acme/q.pdf", 1, None) == \
            storage.signer.signature("pdfs", "acme/q.pdf", 1, None)
        assert client.get(url.replace("http://127.0.0.1:8123", "")).content == PDF


# -- S3 specifics ----------------------------------------------------------------------------------------

def test_s3_creates_its_buckets_once_and_again_without_error(moto):
    settings = moto.settings()
    first, second = S3Storage.from_settings(settings), S3Storage.from_settings(settings)  # the second finds them
    names = {b["Name"] for b in first.client.list_buckets()["Buckets"]}
    assert {settings.s3_bucket_name(b) for b in BUCKETS} <= names
    second.put(PDFS, "acme/x.pdf", PDF, "application/pdf")
    assert first.get(PDFS, "acme/x.pdf") == PDF


def test_s3_client_has_timeouts_and_bounded_retries(moto):
    config = moto.storage(s3_connect_timeout_s=1.5, s3_read_timeout_s=7, s3_max_attempts=4).client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7)
    assert config.retries == {"total_max_attempts": 4, "mode": "standard"}  # the first call and 3 retries


def test_an_unreachable_store_fails_fast_with_a_storage_error():
    port = free_port()  # nothing listens there
    settings = StorageSettings(backend="s3", s3_endpoint_url=f"http://127.0.0.1:{port}", s3_access_key_id="AKIDPROBE",
                               s3_secret_access_key="probe-secret-value", s3_connect_timeout_s=0.5, s3_max_attempts=2)
    storage = storage_from_settings(settings)
    started = time.monotonic()
    with pytest.raises(StorageError) as refused:
        storage.get(PDFS, "acme/x.pdf")
    assert time.monotonic() - started < 10
    assert "probe-secret-value" not in str(refused.value) and "AKIDPROBE" not in str(refused.value)


# -- upload checks -------------------------------------------------------------------------------------

RULES = StorageSettings(max_upload_bytes={ATTACHMENTS: 1000})
RULES_DEFAULT = StorageSettings()


@pytest.mark.parametrize("bucket,data,declared,filename,stored", [
    (ATTACHMENTS, PDF, "application/pdf", "a.pdf", "application/pdf"),
    (ATTACHMENTS, PNG, "image/PNG; charset=binary", "a.png", "image/png"),
    (ATTACHMENTS, PDF, "application/octet-stream", "scan", "application/pdf"),  # read from the bytes
    (ATTACHMENTS, b"\xff\xd8\xff\xe0rest", "image/jpg", "a.jpg", "image/jpeg"),  # an alias
    (ORDER_FILES, STL, "application/octet-stream", "Part.STL", "model/stl"),  # what browsers send for .stl
    (ORDER_FILES, b"PK\x03\x04rest", None, "part.3mf", "model/3mf"),
    (TMP, b"; slicer profile\nlayer_height = 0.2\n", "", "profile.ini", "text/plain"),
])
def test_uploads_that_pass(bucket, data, declared, filename, stored):
    assert check_upload(RULES, bucket, data, content_type=declared, filename=filename) == stored


@pytest.mark.parametrize("bucket,data,declared,filename", [
    (ATTACHMENTS, PDF, "image/png", "a.png"),  # a PDF that says it is a PNG
    (ATTACHMENTS, b"MZ\x90\x00", "application/pdf", "a.pdf"),  # not a PDF at all
    (ATTACHMENTS, b"<html><script>", "text/html", "a.html"),  # not an accepted kind
    (ATTACHMENTS, b"MZ\x90\x00", "application/octet-stream", "setup.exe"),  # nothing tells what it is
    (ATTACHMENTS, b"text\x00\x01binary", "text/plain", "a.txt"),  # binary posing as text
    (PDFS, PNG, "image/png", "a.png"),  # the pdfs bucket holds PDFs only
    (ORDER_FILES, b"not a zip", "model/3mf", "a.3mf"),
])
def test_uploads_refused_for_their_type(bucket, data, declared, filename):
    with pytest.raises(UnsupportedType):
        check_upload(RULES, bucket, data, content_type=declared, filename=filename)


def test_a_logo_is_png_jpeg_or_svg_of_at_most_a_mebibyte():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'
    assert check_logo(RULES_DEFAULT, svg, content_type="image/svg+xml") == "image/svg+xml"
    assert check_logo(RULES_DEFAULT, PNG, content_type="application/octet-stream") == "image/png"  # sniffed
    assert check_logo(RULES_DEFAULT, svg, content_type=None, filename="logo.svg") == "image/svg+xml"
    for data, declared in ((PDF, "application/pdf"), (b"GIF89a", "image/gif"), (PNG, "image/svg+xml"),
                           (b"<html><svg/></html>\x00", "image/svg+xml")):
        with pytest.raises(UnsupportedType):
            check_logo(RULES_DEFAULT, data, content_type=declared)
    with pytest.raises(TooLarge):
        check_logo(RULES_DEFAULT, PNG.ljust(MAX_LOGO_BYTES + 1, b"\x00"), content_type="image/png")
    with pytest.raises(UnsupportedType):  # an SVG is a logo, never an attachment
        check_upload(RULES_DEFAULT, ATTACHMENTS, svg, content_type="image/svg+xml")


def test_uploads_refused_for_their_size():
    check_upload(RULES, ATTACHMENTS, PDF.ljust(1000, b" "), content_type="application/pdf")
    with pytest.raises(TooLarge) as refused:
        check_upload(RULES, ATTACHMENTS, PDF.ljust(1001, b" "), content_type="application/pdf")
    assert refused.value.limit == 1000
    assert RULES.max_upload_bytes[ORDER_FILES] == 100 * 1024 * 1024  # the others keep their defaults


def test_refused_uploads_are_413_and_415_problems(tmp_path, warehouse_url, engine):
    """Through the app's problem handlers, as any upload route that calls check_upload answers."""
    storage = LocalStorage(tmp_path, b"k", "http://testserver")
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine, storage=storage,
                     storage_settings=RULES)

    async def upload(bucket: str, request: Request) -> dict:
        data = await request.body()
        settings = request.app.state.storage_settings
        kind = check_upload(settings, bucket, data, content_type=request.headers.get("content-type"),
                            filename=request.query_params.get("name"))
        key = attachment_key("acme", 1, request.query_params.get("name", "x"))
        request.app.state.storage.put(bucket, key, data, kind)
        return {"key": key, "type": kind}

    app.add_api_route("/upload-check/{bucket}", upload, methods=["POST"])
    with TestClient(app) as client:
        ok = client.post("/upload-check/attachments?name=a b.pdf", content=PDF, headers={"content-type": "application/pdf"})
        assert ok.status_code == 200 and ok.json() == {"key": "acme/1/a_b.pdf", "type": "application/pdf"}
        big = client.post("/upload-check/attachments?name=a.pdf", content=PDF.ljust(1001),
                          headers={"content-type": "application/pdf"})
        assert big.status_code == 413 and big.json()["type"].endswith("/file-too-large") and big.json()["limit"] == 1000
        odd = client.post("/upload-check/attachments?name=a.png", content=PDF, headers={"content-type": "image/png"})
        assert odd.status_code == 415 and "image/png" in odd.json()["accepted"]
        assert odd.headers["content-type"] == "application/problem+json"
    assert storage.list(ATTACHMENTS) == [("acme/1/a_b.pdf", len(PDF))]


# -- settings ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("expiry,valid", [(59, False), (60, True), (300, True), (301, False)])
def test_signed_url_expiry_is_60_to_300_seconds(expiry, valid):
    if valid:
        assert StorageSettings(signed_url_expiry_s=expiry).signed_url_expiry_s == expiry
    else:
        with pytest.raises(ValueError):
            StorageSettings(signed_url_expiry_s=expiry)


def test_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STOREHOUSE_STORAGE_MAX_UPLOAD_BYTES", '{"attachments": 2048}')
    monkeypatch.setenv("STOREHOUSE_STORAGE_ALLOWED_TYPES", '{"attachments": ["application/pdf", "image/jpg"]}')
    monkeypatch.setenv("STOREHOUSE_STORAGE_SIGNED_URL_EXPIRY_S", "120")
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    settings = StorageSettings()
    assert settings.max_upload_bytes[ATTACHMENTS] == 2048 and settings.max_upload_bytes[TMP] == 100 * 1024 * 1024
    assert settings.allowed_types[ATTACHMENTS] == ["application/pdf", "image/jpeg"]
    assert settings.signed_url_expiry_s == 120 and settings.root_path == (tmp_path / "storage").resolve()
    monkeypatch.setenv("STOREHOUSE_STORAGE_MAX_UPLOAD_BYTES", '{"uploads": 1}')
    with pytest.raises(ValueError, match="unknown buckets"):
        StorageSettings()


def test_settings_refuse_half_credentials_and_bad_bucket_names():
    with pytest.raises(ValueError, match="both"):
        StorageSettings(backend="s3", s3_access_key_id="k")
    with pytest.raises(ValueError, match="bucket name"):
        StorageSettings(backend="s3", s3_bucket_prefix="Not_Valid_")
    assert "hunter2" not in repr(StorageSettings(backend="s3", s3_access_key_id="k", s3_secret_access_key="hunter2"))


def test_the_factory_needs_a_key_for_local_links(tmp_path):
    with pytest.raises(ValueError, match="signs its links"):
        storage_from_settings(StorageSettings(root=tmp_path))
    keyed = storage_from_settings(StorageSettings(root=tmp_path, secret_key="s", public_url="https://files.example/"))
    assert isinstance(keyed, LocalStorage) and keyed.root == Path(tmp_path).resolve()
    assert keyed.signed_url(PDFS, "a/b.pdf", expires_s=60).startswith("https://files.example/files/pdfs/a/b.pdf?")
    assert isinstance(storage_from_settings(StorageSettings(root=tmp_path), secret=b"api"), LocalStorage)
