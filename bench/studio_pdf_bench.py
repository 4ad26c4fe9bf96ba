"""Benchmark: the studio's invoice PDFs (issue 13, "Figures").

For a 1-line and a 40-line invoice (logo, payment link and QR code), in the same run, rounds
interleaved (and which goes first alternating) so load hits both alike:

1. our render, ``studio.pdf.render.render(kind, view)``: the template filled, the QR code drawn
   (its per-link memo cleared first), the fingerprint taken, WeasyPrint printing it;
2. the ceiling: WeasyPrint alone on a bare template of the same size (the very HTML our render
   printed, kept as a string: no data work), same options (target: ours ≥ 0.8× its speed);
3. a miss through the cache (``DocumentPdfs.get`` with nothing cached: read the document, render,
   keep in storage and the local folder, mark the row), and a fetch from storage with no local copy
   (another host's first request);
4. the cached PDF served: ``DocumentPdfs.get`` on a local hit (the document read, its fingerprint
   compared, the file read), and the same through the API route (in-process ASGI, an owner's token).

    python bench/studio_pdf_bench.py                 # SQLite
    python bench/studio_pdf_bench.py --pg --rounds 40
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_PG, load_avg, machine, scratch_pg  # noqa: E402

import sqlalchemy as sa  # noqa: E402
from PIL import Image  # noqa: E402

from resources.warehouse import engine_for  # noqa: E402
from studio.pdf.cache import DocumentPdfs  # noqa: E402
from studio.pdf.render import fingerprint, html, qr_data_uri, render, write_pdf  # noqa: E402
from resources.storage import logo_key  # noqa: E402
from resources.storage.local import LocalStorage  # noqa: E402
from studio.pdf.view import LOGO_BUCKET  # noqa: E402
from tests.studio_pdf_world import make_studio  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402
from warehouse.tables.studio import studio_invoices  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def logo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (480, 160), (20, 90, 160)).save(out, "PNG")
    return out.getvalue()


def pay(tenant_id: str, invoice_id: int) -> str:
    return f"https://studio.example/pay/{tenant_id}/{invoice_id}?token=Vq3y0bS1cXbq2p9mT4wZ"


def run(url: str, rounds: int, work: Path) -> None:
    upgrade(url)
    engine = engine_for(url)
    storage = LocalStorage(work / "store", b"studio-pdf-bench", "http://127.0.0.1:9190")
    studios = {}
    for n in (1, 40):
        tenant = f"bench-pdf-{n}-{int(time.time())}"
        storage.put(LOGO_BUCKET, logo_key(tenant, "image/png"), logo(), "image/png")
        lines = [(f"Part {i:02d}: PETG bracket, 0.2 mm layers, 30 % infill", "2", f"{10 + i}.50", "5" if i % 3 else "0")
                 for i in range(1, n + 1)]
        studios[n] = make_studio(engine, tenant, lines=lines, logo_key=logo_key(tenant, "image/png"), paid="10.00")
    pdfs = DocumentPdfs(engine, storage, work / "cache", payment_url=pay)
    views = {n: pdfs.view(s.tenant_id, "invoice", s.invoice_id)[0] for n, s in studios.items()}
    bare = {n: html("invoice", v) for n, v in views.items()}
    ids = {n: fingerprint("invoice", v) for n, v in views.items()}
    for n in views:  # warm: fonts, templates, WeasyPrint's caches
        render("invoice", views[n])
        write_pdf(bare[n], ids[n])

    ours = {n: [] for n in views}
    ceiling = {n: [] for n in views}
    miss = {n: [] for n in views}
    fetched = {n: [] for n in views}
    for i in range(rounds):
        for n, view in views.items():
            def mine():
                qr_data_uri.cache_clear()  # the first render for this link: its QR code drawn too
                ours[n].append(timed(lambda: render("invoice", view)))

            def theirs():
                ceiling[n].append(timed(lambda: write_pdf(bare[n], ids[n])))

            for step in ((mine, theirs) if i % 2 == 0 else (theirs, mine)):  # neither always goes first
                step()
            s = studios[n]
            forget(engine, s)  # nothing anywhere: rendered
            shutil.rmtree(work / "cache", ignore_errors=True)
            miss[n].append(timed(lambda: expect(pdfs.get(s.tenant_id, "invoice", s.invoice_id), "rendered")))
            shutil.rmtree(work / "cache", ignore_errors=True)  # another host: from storage
            fetched[n].append(timed(lambda: expect(pdfs.get(s.tenant_id, "invoice", s.invoice_id), "storage")))

    hits = {n: [] for n in views}
    for _ in range(max(rounds * 5, 100)):
        for n, s in studios.items():
            hits[n].append(timed(lambda: pdfs.get(s.tenant_id, "invoice", s.invoice_id)))
    for n, s in studios.items():
        assert pdfs.get(s.tenant_id, "invoice", s.invoice_id).source == "local"

    route = served_by_api(engine, url, studios[40], storage, work, rounds)

    print(f"machine: {machine()}  load: {load_avg()}")
    print(f"database: {engine.dialect.name}; {rounds} rounds, interleaved; times in ms")
    for n in views:
        size = len(bare[n].encode())
        o50, c50 = statistics.median(ours[n]), statistics.median(ceiling[n])
        print(f"\n{n}-line invoice (HTML {size:,} bytes, PDF {len(render('invoice', views[n])):,} bytes)")
        print(f"  render (ours)            p50 {o50:7.1f}  p95 {pct(ours[n], 0.95):7.1f}")
        print(f"  WeasyPrint, bare HTML    p50 {c50:7.1f}  p95 {pct(ceiling[n], 0.95):7.1f}")
        print(f"  ours / ceiling speed     {c50 / o50:.2f}x  (target >= 0.8x)")
        print(f"  miss via cache (read, render, store, mark)  p50 {statistics.median(miss[n]):7.1f}  "
              f"p95 {pct(miss[n], 0.95):7.1f}")
        print(f"  from storage, no local copy (another host)  p50 {statistics.median(fetched[n]):7.1f}  "
              f"p95 {pct(fetched[n], 0.95):7.1f}")
        print(f"  cached PDF served (DocumentPdfs.get, local hit)  p50 {statistics.median(hits[n]):6.2f}  "
              f"p95 {pct(hits[n], 0.95):6.2f}")
    print(f"\ncached 40-line PDF through GET /studios/{{t}}/invoices/{{id}}/pdf (in-process ASGI, token): "
          f"p50 {statistics.median(route):.2f}  p95 {pct(route, 0.95):.2f}")


def forget(engine, studio) -> None:
    """The row no longer names a stored PDF: the next get renders."""
    with engine.begin() as conn:
        conn.execute(sa.update(studio_invoices).where(studio_invoices.c.id == studio.invoice_id)
                     .values(pdf_fingerprint=None))


def expect(pdf, source: str):
    assert pdf.source == source, (pdf.source, source)
    return pdf


def served_by_api(engine, url: str, studio, storage, work: Path, rounds: int) -> list[float]:
    """The cached PDF through the route, authorised (an owner's access token)."""
    import os

    from people.users import create_user, grant
    from tests.people_world import PASSWORDS, PASSWORD, bearer, client, sign_in

    os.environ["STOREHOUSE_HOME"] = str(work / "home")
    with engine.begin() as conn:
        email = f"owner@{studio.tenant_id}.bench"
        grant(conn, create_user(conn, PASSWORDS, email, "Owner", PASSWORD), studio.tenant_id, "tenant_owner")
    out = []
    with client(engine, url) as c:
        c.app.state.storage = storage
        headers = bearer(sign_in(c, email)["access_token"])
        path = f"/studios/{studio.tenant_id}/invoices/{studio.invoice_id}/pdf"
        assert c.get(path, headers=headers).status_code == 200  # rendered once
        for _ in range(max(rounds * 5, 100)):
            start = time.perf_counter()
            answer = c.get(path, headers=headers)
            out.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200 and answer.content.startswith(b"%PDF-")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", nargs="?", const=DEFAULT_PG, help="a scratch database on this PostgreSQL server")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-pdf-bench-") as tmp:
        work = Path(tmp)
        with (scratch_pg(args.pg) if args.pg else contextlib.nullcontext(f"sqlite:///{work / 'w.db'}")) as url:
            run(url, args.rounds, work)


if __name__ == "__main__":
    main()
