"""Stored PDFs of quotes and invoices: rendered once per change, never served stale.

A document's PDF is kept twice, as the seed does: in storage (bucket ``pdfs``, key
``{tenant}/{kind}-{number}.pdf``) for durability, and in a local folder for speed. Freshness is
decided by the view's fingerprint (:func:`studio.pdf.render.fingerprint`: lines, totals, payments,
business details, logo bytes, payment link, templates), beside the row's ``revision``:

* the local copy's name carries the fingerprint, so a local hit is right by construction, whatever
  another worker or host rendered since;
* the row's ``pdf_revision`` and ``pdf_fingerprint`` say what storage holds; a copy fetched from
  storage is used only if its PDF /ID is that fingerprint (two renders racing to the same key
  cannot leave a wrong copy that passes);
* otherwise it is rendered. Renders of one view are deterministic, so two at once (threads,
  workers, hosts) give identical bytes; within a process they are also collapsed into one.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from resources.storage import PDFS, Storage, StorageError, pdf_key
from studio.pdf.render import fingerprint, render, shows
from studio.pdf.view import TABLES, DocumentView, PaymentUrl, StoredPdf, load, safe_number

log = logging.getLogger("storehouse.studio.pdf")


@dataclass(frozen=True)
class Pdf:
    filename: str  # quote-{number}.pdf / invoice-{number}.pdf
    data: bytes
    fingerprint: str
    view: DocumentView
    source: str  # where it came from this time: local, storage or rendered


class _Flights:
    """One lock per key while in use: concurrent requests for one PDF wait for one render."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple, list] = {}  # key -> [lock, users]

    @contextmanager
    def hold(self, key: tuple) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


class DocumentPdfs:
    """PDFs of one warehouse's studio documents (tenant-scoped on every call)."""

    def __init__(self, engine: sa.Engine, storage: Storage | None, cache_dir: Path, *,
                 payment_url: PaymentUrl | None = None, max_renders: int = 2) -> None:
        self.engine, self.storage, self.cache_dir = engine, storage, Path(cache_dir)  # storage None: local only
        self.payment_url = payment_url  # studio.links.InvoiceLinks.page_url: the client's invoice page
        self._flights = _Flights()
        # Renders are CPU-bound (the GIL held most of the time): more at once than a couple only
        # queues them inside WeasyPrint with their memory held, and starves the API's other requests.
        self._renders = threading.BoundedSemaphore(max_renders)

    def view(self, tenant_id: str, kind: str, doc_id: int, *, client_id: int | None = None
             ) -> tuple[DocumentView, StoredPdf] | None:
        with self.engine.connect() as conn:
            return load(conn, self.storage, tenant_id, kind, doc_id, payment_url=self.payment_url,
                        client_id=client_id)

    def get(self, tenant_id: str, kind: str, doc_id: int, *, client_id: int | None = None) -> Pdf | None:
        """The document's current PDF (None: no such document for this tenant, or for the studio
        client ``client_id``, drafts excepted)."""
        found = self.view(tenant_id, kind, doc_id, client_id=client_id)
        if found is None:
            return None
        view, stored = found
        digest = fingerprint(kind, view)
        local = self._local_path(tenant_id, view, digest)
        key = pdf_key(tenant_id, kind, safe_number(view.number))
        in_storage = stored.key == key and stored.revision == view.revision and stored.fingerprint == digest
        data = _read(local)
        if data is not None:
            if not in_storage:  # rendered here, but storage or the row was not updated then: do it now
                self._keep(tenant_id, view, key, digest, data)
            return Pdf(view.filename, data, digest, view, "local")
        if in_storage and self.storage is not None:
            data = self._from_storage(key, digest)
            if data is not None:
                _write(local, data)
                return Pdf(view.filename, data, digest, view, "storage")
        with self._flights.hold((tenant_id, kind, doc_id, digest)):
            data = _read(local)  # the render we waited for
            if data is not None:
                return Pdf(view.filename, data, digest, view, "local")
            with self._renders:
                data = render(kind, view)
            _write(local, data)
            self._keep(tenant_id, view, key, digest, data)
        self._prune(local)
        return Pdf(view.filename, data, digest, view, "rendered")

    # -- the two copies ----------------------------------------------------------------------
    def _local_path(self, tenant_id: str, view: DocumentView, digest: str) -> Path:
        return self.cache_dir / tenant_id / f"{view.filename[:-4]}.{digest[:24]}.pdf"

    def _from_storage(self, key: str, digest: str) -> bytes | None:
        try:
            data = self.storage.get(PDFS, key)
        except StorageError as exc:
            log.warning("stored PDF %s unreadable (%s); rendering it again", key, type(exc).__name__)
            return None
        return data if shows(data, digest) else None

    def _keep(self, tenant_id: str, view: DocumentView, key: str, digest: str, data: bytes) -> None:
        """Put the PDF in storage and say so on the row; a storage failure leaves the local copy
        serving (the seed's "partial failure recovery") and the next request tries again."""
        if self.storage is None:
            return
        try:
            self.storage.put(PDFS, key, data, "application/pdf")
        except StorageError as exc:
            log.warning("PDF %s not kept in storage (%s); served from the local cache", key, type(exc).__name__)
            return
        docs = TABLES[view.kind][0]
        with self.engine.begin() as conn:  # only for the revision rendered: a newer one is not marked fresh
            conn.execute(sa.update(docs).where(docs.c.tenant_id == tenant_id, docs.c.id == view.id,
                                               docs.c.revision == view.revision)
                         .values(pdf_key=key, pdf_revision=view.revision, pdf_fingerprint=digest))

    def _prune(self, current: Path) -> None:
        """Remove this document's older local copies (other fingerprints)."""
        stem = current.name.rsplit(".", 2)[0]
        for path in current.parent.glob(f"{stem}.*.pdf"):
            if path != current and path.name.rsplit(".", 2)[0] == stem:
                path.unlink(missing_ok=True)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write(path: Path, data: bytes) -> None:
    """Atomically (a reader sees the whole file or none of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pdf-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
