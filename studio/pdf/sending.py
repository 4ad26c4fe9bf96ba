"""Email a quote or invoice to its client with its PDF attached, through the tenant's Resend account.

A send is idempotent twice over. Its key names the tenant, the document and either the caller's
``Idempotency-Key`` or, by default, what is sent (the PDF's fingerprint, the address, the message):

* the activity log keeps one ``sent`` entry per key, written under a lock on the document's row,
  so a retry after a recorded send (however late) sends nothing and answers the first send;
* Resend keeps the key for 24 h: a retry after a crash between sending and recording, or two
  requests at once, reach Resend with the same key and byte-identical body (the PDF is
  deterministic, the body takes no clock) and it sends once.

So the same PDF to the same address with the same message goes out once; a new ``Idempotency-Key``
sends it again on purpose.

Emailing is not the lifecycle's ``send`` (``studio.quotes.send_quote`` / ``studio.invoices.send_invoice``,
which mark a draft sent and date it): the API route runs that first for a draft, so the PDF carries
its dates, then calls :func:`send_document`, which stamps ``sent_at`` and logs ``emailed``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html import escape
from typing import Any, Callable

import sqlalchemy as sa

from resources.email import Attachment, Email
from studio.activity import SYSTEM, Actor, log_activity
from studio.pdf.cache import DocumentPdfs, Pdf
from studio.pdf.render import money
from studio.pdf.view import INVOICE, TABLES
from warehouse.tables.studio import studio_activity_logs
from warehouse.types import now_utc

Send = Callable[[Email, str], str]  # (email, idempotency key) -> the provider's message id
EMAILED = "emailed"  # the activity entry of one email (a draft's "sent" is the lifecycle's own entry)


class SendRefused(Exception):
    """The document cannot be sent as asked (no address); a 4xx for the caller."""


@dataclass(frozen=True)
class Sent:
    email_id: str
    to: str
    filename: str
    key: str
    already: bool  # True: this key was sent before; nothing was sent now


def document_email(pdf: Pdf, to: str, message: str | None = None) -> Email:
    """The email carrying ``pdf``: built from the document alone (no clock), so a repeat is identical."""
    view = pdf.view
    name = "Quote" if view.kind != INVOICE else "Invoice"
    business = view.business.name
    lines = [f"Hello {view.client.name},", "",
             f"Please find attached {name.lower()} {view.number} from {business}, "
             f"for {money(view.total, view.currency)}."]
    if view.kind != INVOICE and view.valid_until:
        lines.append(f"It is valid until {view.valid_until:%d %B %Y}.")
    if view.kind == INVOICE and view.balance_due > 0:
        due = f" by {view.due_date:%d %B %Y}" if view.due_date else ""
        lines.append(f"The balance due is {money(view.balance_due, view.currency)}{due}.")
        if view.payment_url:
            lines.append(f"Pay online: {view.payment_url}")
    if message:
        lines += ["", message.strip()]
    lines += ["", business]
    text = "\n".join(lines) + "\n"
    html = "".join(f"<p>{_html_paragraph(p)}</p>" for p in text.strip().split("\n\n"))
    return Email(to=to, subject=f"{name} {view.number} from {business}", html=html, text=text,
                 attachments=(Attachment(pdf.filename, pdf.data, "application/pdf"),),
                 tags=(("studio_document", f"{view.kind}-{view.id}"),))


def _html_paragraph(text: str) -> str:
    out = []
    for line in text.split("\n"):
        if line.startswith("Pay online: "):
            url = escape(line.removeprefix("Pay online: "))
            out.append(f'Pay online: <a href="{url}">{url}</a>')
        else:
            out.append(escape(line))
    return "<br>".join(out)


def _key(tenant_id: str, kind: str, doc_id: int, caller_key: str | None, pdf: Pdf, to: str,
         message: str | None) -> str:
    if caller_key:
        return f"studio-{tenant_id}-{kind}-{doc_id}-{caller_key}"
    what = hashlib.sha256(f"{pdf.fingerprint}\0{to}\0{message or ''}".encode()).hexdigest()[:32]
    return f"studio-{tenant_id}-{kind}-{doc_id}-{what}"


def _recorded(conn: sa.Connection, tenant_id: str, kind: str, doc_id: int, key: str) -> dict[str, Any] | None:
    a = studio_activity_logs.c
    rows = conn.execute(sa.select(a.detail).where(a.tenant_id == tenant_id, a.entity_type == kind,
                                                  a.entity_id == doc_id, a.action == EMAILED)).scalars()
    return next((d for d in rows if d.get("idempotency_key") == key), None)


def send_document(pdfs: DocumentPdfs, send: Send, tenant_id: str, kind: str, doc_id: int, *,
                  actor: Actor = SYSTEM, to: str | None = None, message: str | None = None,
                  idempotency_key: str | None = None) -> Sent | None:
    """Send the document's current PDF to its client (or ``to``); None: no such document.

    Raises :class:`SendRefused` when there is no address, and whatever ``send`` raises when the
    email could not be sent (nothing is recorded then)."""
    pdf = pdfs.get(tenant_id, kind, doc_id)
    if pdf is None:
        return None
    to = (to or pdf.view.client.email or "").strip()
    if not to:
        raise SendRefused("The client has no email address; give one (to).")
    key = _key(tenant_id, kind, doc_id, idempotency_key, pdf, to, message)
    with pdfs.engine.connect() as conn:
        done = _recorded(conn, tenant_id, kind, doc_id, key)
    if done is not None:
        return Sent(done["email_id"], done["to"], done["filename"], key, already=True)
    email_id = send(document_email(pdf, to, message), key)
    docs = TABLES[kind][0]
    with pdfs.engine.begin() as conn:
        # The row lock (a write on SQLite) serialises twins that both sent: the second finds the first's entry.
        conn.execute(sa.update(docs).where(docs.c.tenant_id == tenant_id, docs.c.id == doc_id)
                     .values(sent_at=docs.c.sent_at))
        done = _recorded(conn, tenant_id, kind, doc_id, key)
        if done is not None:
            return Sent(done["email_id"], done["to"], done["filename"], key, already=True)
        conn.execute(sa.update(docs).where(docs.c.tenant_id == tenant_id, docs.c.id == doc_id)
                     .values(sent_at=now_utc()))
        log_activity(conn, tenant_id, kind, doc_id, EMAILED, actor, to=to, filename=pdf.filename,
                     revision=pdf.view.revision, fingerprint=pdf.fingerprint, email_id=email_id, idempotency_key=key)
    return Sent(email_id, to, pdf.filename, key, already=False)
