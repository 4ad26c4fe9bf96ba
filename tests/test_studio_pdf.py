"""Quote and invoice PDFs (issue 13, "PDFs"): real PDFs rendered by WeasyPrint, read back with
poppler-utils (``pdftotext`` for the words, ``pdftoppm`` for a page image); the cache (local copy,
storage, never stale, one render for concurrent requests); emailing through the sandbox's Resend."""

from __future__ import annotations

import io
import shutil
import subprocess
import threading

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from resources.email import ResendClient
from resources.storage import PDFS, StorageError, logo_key
from studio.pdf.cache import DocumentPdfs
from studio.pdf.render import render
from studio.pdf.sending import send_document
from studio.pdf.view import LOGO_BUCKET, load
from tests.api_storefront import RESEND_KEY
from tests.studio_pdf_world import ABN, CountingStorage, make_studio
from warehouse.tables.studio import studio_activity_logs, studio_business, studio_invoice_items, studio_invoices

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                reason="needs poppler-utils (pdftotext, pdftoppm): apt-get install poppler-utils "
                                       "(.ci/run installs it)")
PAY = "http://127.0.0.1:9150/studio/pay/{tenant}/{invoice}?token=s3cret"


def pay_link(tenant_id: str, invoice_id: int) -> str:
    return PAY.format(tenant=tenant_id, invoice=invoice_id)


def text_of(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True, timeout=60)
    return out.stdout.decode()


def page_image(pdf: bytes, dpi: int = 40) -> Image.Image:
    out = subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-", ], input=pdf,
                         capture_output=True, check=True, timeout=60)
    return Image.open(io.BytesIO(out.stdout)).convert("RGB")


def red_pixels(image: Image.Image) -> int:
    return sum(1 for r, g, b in image.getdata() if r > 200 and g < 60 and b < 60)


@pytest.fixture
def storage(tmp_path) -> CountingStorage:
    return CountingStorage(tmp_path / "store")


@pytest.fixture
def pdfs(engine, storage, tmp_path) -> DocumentPdfs:
    return DocumentPdfs(engine, storage, tmp_path / "pdf-cache", payment_url=pay_link)


def test_invoice_pdf_shows_numbers_totals_gst_abn_bank_and_the_payment_link(engine, pdfs, tenant_id):
    studio = make_studio(engine, tenant_id)
    pdf = pdfs.get(tenant_id, "invoice", studio.invoice_id)
    assert pdf.filename == "invoice-INV-0042.pdf" and pdf.data.startswith(b"%PDF-")
    text = text_of(pdf.data)
    words = " ".join(text.split())
    for expected in ("Tax invoice", "INV-0042", f"ABN {ABN}", "3D Print Sydney", "Ada Lovelace", "Analytical Engines",
                     "Prototype housing, PETG, 0.2 mm", "A$145.50", "10%", "A$26.19", "A$261.90",
                     "Subtotal A$406.00", "Discount −A$29.10", "GST A$37.69", "Total (AUD) A$414.59",
                     "Paid −A$100.00", "Balance due A$314.59", "Due date 15 December 2026",
                     "BSB: 032-000", "Account: 123 456", "Reference: INV-0042", "Thank you for your business."):
        assert expected in words, expected
    assert pay_link(tenant_id, studio.invoice_id) in words
    assert "Pay the balance of A$314.59" in words


def test_quote_pdf_has_its_number_and_validity_and_no_payment_link(engine, pdfs, tenant_id):
    studio = make_studio(engine, tenant_id)
    pdf = pdfs.get(tenant_id, "quote", studio.quote_id)
    assert pdf.filename == "quote-Q-0042.pdf"
    words = " ".join(text_of(pdf.data).split())
    assert "Quote number Q-0042" in words and "Valid until 20 December 2026" in words
    assert "Total (AUD) A$414.59" in words and f"ABN {ABN}" in words
    assert "Balance due" not in words and "Pay online" not in words.upper() and "token=" not in words


def test_a_paid_invoice_prints_no_link(engine, pdfs, tenant_id):
    studio = make_studio(engine, tenant_id, paid="414.59", status="paid")
    words = " ".join(text_of(pdfs.get(tenant_id, "invoice", studio.invoice_id).data).split())
    assert "Balance due A$0.00" in words and "token=" not in words


def test_page_is_a4_and_not_blank(engine, pdfs, tenant_id):
    studio = make_studio(engine, tenant_id)
    image = page_image(pdfs.get(tenant_id, "invoice", studio.invoice_id).data)
    width, height = image.size
    assert abs(height / width - 297 / 210) < 0.01
    dark = sum(1 for r, g, b in image.getdata() if r + g + b < 300)
    assert dark > 0.01 * width * height  # text, rules and the QR code


def test_forty_lines_flow_onto_a_second_page_with_every_line(engine, pdfs, tenant_id):
    lines = [(f"Part {i:02d}, PLA", "1", f"{i}.00", "0") for i in range(1, 41)]
    studio = make_studio(engine, tenant_id, lines=lines, paid="0")
    pdf = pdfs.get(tenant_id, "invoice", studio.invoice_id)
    text = text_of(pdf.data)
    assert all(f"Part {i:02d}, PLA" in text for i in range(1, 41))
    pages = text.count("\f")
    assert pages >= 2 and f"Page {pages} of {pages}" in text
    assert "Total (AUD) A$902.00" in " ".join(text.split())  # 820 + 82 GST


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 60), (255, 0, 0)).save(out, "PNG")
    return out.getvalue()


def _jpg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 60), (255, 0, 0)).save(out, "JPEG", quality=95)
    return out.getvalue()


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="120" height="60">'
       b'<rect width="120" height="60" fill="#ff0000"/></svg>')


@pytest.mark.parametrize("kind", ["png", "jpg", "svg", "missing", "not-an-image"])
def test_logo_png_jpg_svg_or_none(engine, storage, pdfs, tenant_id, kind):
    types = {"png": "image/png", "jpg": "image/jpeg", "svg": "image/svg+xml"}
    key = logo_key(tenant_id, types[kind]) if kind in types else f"{tenant_id}/business/logo.{kind}"
    content = {"png": _png(), "jpg": _jpg(), "svg": SVG, "not-an-image": b"GIF89a..."}.get(kind)
    if content is not None:
        storage.put(LOGO_BUCKET, key, content, "application/octet-stream")
    studio = make_studio(engine, tenant_id, logo_key=key)
    pdf = pdfs.get(tenant_id, "quote", studio.quote_id)  # a quote: no QR code beside the logo
    assert "Q-0042" in text_of(pdf.data)
    red = red_pixels(page_image(pdf.data))
    if kind in ("png", "jpg", "svg"):
        assert red > 200, f"the {kind} logo is not on the page"
    else:
        assert red == 0


def test_a_logo_pointing_elsewhere_fetches_nothing(engine, storage, pdfs, tenant_id, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png())
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="120" '
           f'height="60"><image xlink:href="file://{secret}" width="120" height="60"/></svg>').encode()
    storage.put(LOGO_BUCKET, f"{tenant_id}/logo.svg", svg, "image/svg+xml")
    studio = make_studio(engine, tenant_id, logo_key=f"{tenant_id}/logo.svg")
    assert red_pixels(page_image(pdfs.get(tenant_id, "quote", studio.quote_id).data)) == 0


def test_render_is_pure_same_view_same_bytes(engine, tenant_id):
    studio = make_studio(engine, tenant_id)
    with engine.connect() as conn:
        view, _ = load(conn, None, tenant_id, "invoice", studio.invoice_id, payment_url=pay_link)
    assert render("invoice", view) == render("invoice", view)
    with pytest.raises(ValueError):
        render("quote", view)


def test_cache_local_then_storage_and_never_stale(engine, storage, pdfs, tenant_id, tmp_path):
    studio = make_studio(engine, tenant_id)
    first = pdfs.get(tenant_id, "invoice", studio.invoice_id)
    assert first.source == "rendered" and storage.exists(PDFS, f"{tenant_id}/invoice-INV-0042.pdf")
    with engine.connect() as conn:
        row = conn.execute(sa.select(studio_invoices).where(studio_invoices.c.id == studio.invoice_id)).mappings().one()
    assert (row["pdf_key"], row["pdf_revision"], row["pdf_fingerprint"]) == (
        f"{tenant_id}/invoice-INV-0042.pdf", 1, first.fingerprint)

    again = pdfs.get(tenant_id, "invoice", studio.invoice_id)
    assert again.source == "local" and again.data == first.data and storage.puts == 1

    elsewhere = DocumentPdfs(engine, storage, tmp_path / "another-host", payment_url=pay_link)  # another host
    got = elsewhere.get(tenant_id, "invoice", studio.invoice_id)
    assert got.source == "storage" and got.data == first.data
    assert elsewhere.get(tenant_id, "invoice", studio.invoice_id).source == "local"

    # The document changes (a line's price, totals, revision): both hosts print the new one.
    with engine.begin() as conn:
        it = studio_invoice_items.c
        conn.execute(sa.update(studio_invoice_items).where(it.invoice_id == studio.invoice_id, it.position == 3)
                     .values(description="Overnight courier, interstate"))
        conn.execute(sa.update(studio_invoices).where(studio_invoices.c.id == studio.invoice_id)
                     .values(revision=studio_invoices.c.revision + 1))
    changed = pdfs.get(tenant_id, "invoice", studio.invoice_id)
    assert changed.source == "rendered" and "Overnight courier, interstate" in text_of(changed.data)
    seen = elsewhere.get(tenant_id, "invoice", studio.invoice_id)
    assert seen.source == "storage" and seen.data == changed.data
    assert len(list((tmp_path / "pdf-cache" / tenant_id).glob("*.pdf"))) == 1  # the old copy is gone

    # Business details and the logo change no document's revision, and still refresh every PDF.
    with engine.begin() as conn:
        conn.execute(sa.update(studio_business).where(studio_business.c.tenant_id == tenant_id)
                     .values(abn="11 222 333 444"))
    assert "ABN 11 222 333 444" in text_of(pdfs.get(tenant_id, "invoice", studio.invoice_id).data)
    storage.put(LOGO_BUCKET, f"{tenant_id}/logo.png", _png(), "image/png")
    with engine.begin() as conn:
        conn.execute(sa.update(studio_business).where(studio_business.c.tenant_id == tenant_id)
                     .values(logo_key=f"{tenant_id}/logo.png"))
    with_logo = pdfs.get(tenant_id, "invoice", studio.invoice_id)
    assert with_logo.source == "rendered" and red_pixels(page_image(with_logo.data)) > 200
    storage.put(LOGO_BUCKET, f"{tenant_id}/logo.png", SVG.replace(b"#ff0000", b"#0000ff"), "image/svg+xml")
    new_logo = elsewhere.get(tenant_id, "invoice", studio.invoice_id)  # same key, new bytes
    assert new_logo.source == "rendered" and red_pixels(page_image(new_logo.data)) == 0


def test_a_wrong_copy_in_storage_is_never_served(engine, storage, pdfs, tenant_id, tmp_path):
    studio = make_studio(engine, tenant_id)
    good = pdfs.get(tenant_id, "invoice", studio.invoice_id)
    other = make_studio(engine, f"{tenant_id}-b", number=42)
    wrong = pdfs.get(other.tenant_id, "invoice", other.invoice_id)
    storage.put(PDFS, f"{tenant_id}/invoice-INV-0042.pdf", wrong.data, "application/pdf")  # e.g. a render race
    got = DocumentPdfs(engine, storage, tmp_path / "fresh", payment_url=pay_link).get(tenant_id, "invoice",
                                                                                         studio.invoice_id)
    assert got.source == "rendered" and got.data == good.data


def test_concurrent_requests_render_once_and_agree(engine, pdfs, tenant_id):
    studio = make_studio(engine, tenant_id)
    results, barrier = [], threading.Barrier(6)

    def fetch():
        barrier.wait()
        results.append(pdfs.get(tenant_id, "invoice", studio.invoice_id))

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 6 and len({r.data for r in results}) == 1
    assert [r.source for r in results].count("rendered") == 1


def test_tenant_and_client_scoping(engine, pdfs, tenant_id):
    studio = make_studio(engine, tenant_id)
    drafts = make_studio(engine, tenant_id, number=43, status="draft", quote_status="draft")
    assert pdfs.get(f"{tenant_id}-other", "invoice", studio.invoice_id) is None
    assert pdfs.get(tenant_id, "invoice", studio.invoice_id + 10_000) is None
    assert pdfs.get(tenant_id, "invoice", studio.invoice_id, client_id=studio.client_id) is not None
    assert pdfs.get(tenant_id, "invoice", studio.invoice_id, client_id=drafts.client_id) is None  # another client's
    assert pdfs.get(tenant_id, "quote", drafts.quote_id, client_id=drafts.client_id) is None  # a draft
    assert pdfs.get(tenant_id, "quote", drafts.quote_id) is not None  # the studio sees its drafts


def test_send_attaches_the_pdf_once_and_logs_it(engine, pdfs, tenant_id, sandbox_reset):
    studio = make_studio(engine, tenant_id)
    httpx.put(f"{sandbox_reset.url}/_sandbox/resend/limits", json={"emails": {"limit": 1000, "window_s": 1}})
    resend = ResendClient(f"{sandbox_reset.url}/resend", RESEND_KEY, "3D Print Sydney <hello@3dprint.example>")
    try:
        first = send_document(pdfs, resend.send, tenant_id, "invoice", studio.invoice_id)
        assert not first.already and first.to == "ada@engines.example"
        # A retry, and two at once: nothing more is sent or logged.
        again = send_document(pdfs, resend.send, tenant_id, "invoice", studio.invoice_id)
        assert again.already and again.email_id == first.email_id
        results, barrier = [], threading.Barrier(2)

        def twin():
            barrier.wait()
            results.append(send_document(pdfs, resend.send, tenant_id, "quote", studio.quote_id,
                                         message="As discussed."))

        threads = [threading.Thread(target=twin) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(r.already for r in results) == [False, True]
        assert len({r.email_id for r in results}) == 1
        # Sending again on purpose: another idempotency key.
        third = send_document(pdfs, resend.send, tenant_id, "invoice", studio.invoice_id,
                              idempotency_key="resend-after-call")
        assert not third.already and third.email_id != first.email_id
    finally:
        resend.close()
    emails = [e for e in httpx.get(f"{sandbox_reset.url}/_sandbox/resend/emails").json()["emails"]
              if e["to"] == ["ada@engines.example"]]
    assert len(emails) == 3
    invoice_mail = emails[0]
    assert invoice_mail["subject"] == "Invoice INV-0042 from 3D Print Sydney"
    assert [a["filename"] for a in invoice_mail["attachments"]] == ["invoice-INV-0042.pdf"]
    assert invoice_mail["attachments"][0]["size"] == len(pdfs.get(tenant_id, "invoice", studio.invoice_id).data)
    assert pay_link(tenant_id, studio.invoice_id) in invoice_mail["text"]
    assert "As discussed." in emails[1]["text"] and emails[1]["attachments"][0]["filename"] == "quote-Q-0042.pdf"
    with engine.connect() as conn:
        a = studio_activity_logs.c
        logged = conn.execute(sa.select(a.entity_type, a.action).where(a.tenant_id == tenant_id)
                              .order_by(a.id)).all()
        sent_at = conn.execute(sa.select(studio_invoices.c.sent_at)
                               .where(studio_invoices.c.id == studio.invoice_id)).scalar_one()
    assert logged == [("invoice", "emailed"), ("quote", "emailed"), ("invoice", "emailed")]
    assert sent_at is not None


def test_send_without_an_address_is_refused(engine, pdfs, tenant_id):
    from studio.pdf.sending import SendRefused
    from warehouse.tables.studio import studio_clients

    studio = make_studio(engine, tenant_id)
    with engine.begin() as conn:
        conn.execute(sa.update(studio_clients).where(studio_clients.c.id == studio.client_id).values(email=None))

    def never(email, key):
        raise AssertionError("nothing may be sent")

    with pytest.raises(SendRefused):
        send_document(pdfs, never, tenant_id, "quote", studio.quote_id)



def test_fonts_are_embedded_dejavu(engine, pdfs, tenant_id, tmp_path):
    studio = make_studio(engine, tenant_id)
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdfs.get(tenant_id, "invoice", studio.invoice_id).data)
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True, timeout=60).stdout.decode()
    fonts = listing.splitlines()[2:]
    assert fonts and all("DejaVu" in f and f.split()[-5] == "yes" for f in fonts), listing  # emb column: yes


class FailingStorage(CountingStorage):
    """The real local backend with its writes failing (a store that is down)."""

    def put(self, bucket, key, data, content_type):
        raise StorageError("store unreachable")


def test_storage_down_serves_the_local_copy_and_keeps_it_later(engine, tenant_id, tmp_path):
    studio = make_studio(engine, tenant_id)
    down = DocumentPdfs(engine, FailingStorage(tmp_path / "store"), tmp_path / "cache", payment_url=pay_link)
    first = down.get(tenant_id, "invoice", studio.invoice_id)
    assert first.source == "rendered" and "INV-0042" in text_of(first.data)
    with engine.connect() as conn:
        assert conn.execute(sa.select(studio_invoices.c.pdf_fingerprint)
                            .where(studio_invoices.c.id == studio.invoice_id)).scalar_one() is None
    back = CountingStorage(tmp_path / "store")
    up = DocumentPdfs(engine, back, tmp_path / "cache", payment_url=pay_link)
    again = up.get(tenant_id, "invoice", studio.invoice_id)
    assert again.source == "local" and again.data == first.data
    assert back.get(PDFS, f"{tenant_id}/invoice-INV-0042.pdf") == first.data
    with engine.connect() as conn:
        assert conn.execute(sa.select(studio_invoices.c.pdf_fingerprint)
                            .where(studio_invoices.c.id == studio.invoice_id)).scalar_one() == first.fingerprint
