"""Quote and invoice PDFs: Jinja2 HTML templates (``templates/``) printed by WeasyPrint.

WeasyPrint installs from the registries and needs only Debian's pango (no browser download). It
is given a URL fetcher that serves ``data:`` URLs alone: the logo and QR code are embedded, and a
logo SVG or a client's text naming ``file:///…`` or an internal host fetches nothing.

:func:`render` is pure: the same view gives the same bytes (WeasyPrint's output carries no clock;
the PDF's permanent identifier is the view's :func:`fingerprint`, which is how a stored copy is
recognised as the right one).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import datetime as dt
import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources

import jinja2
import weasyprint
import weasyprint.urls
from markupsafe import Markup, escape

from commerce.qr import qr_png
from studio.pdf.view import INVOICE, KINDS, DocumentView

TITLES = {"quote": "Quote", INVOICE: "Invoice"}
SYMBOLS = {"AUD": "A$", "NZD": "NZ$", "USD": "US$", "CAD": "CA$", "EUR": "€", "GBP": "£"}
CENT = Decimal("0.01")


def money(value: Decimal, currency: str) -> str:
    """``A$1,234.50``: two places, rounded half up (amounts are stored to 4 places, printed to cents)."""
    amount = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "−" if amount < 0 else ""
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{abs(amount):,.2f}" if symbol else f"{sign}{abs(amount):,.2f} {currency}"


def quantity(value: Decimal) -> str:
    """``2``, ``1.5``: no trailing zeros."""
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(value: Decimal) -> str:
    return f"{quantity(Decimal(value))}%"


def _day(value: dt.date) -> str:
    return f"{value.day} {value:%B %Y}"


def _nl2br(value: str) -> Markup:
    return Markup("<br>").join(escape(part) for part in str(value).splitlines())


def _templates() -> dict[str, str]:
    folder = resources.files("studio.pdf") / "templates"
    return {p.name: p.read_text("utf-8") for p in folder.iterdir() if p.name.endswith((".html", ".css"))}


_SOURCES = _templates()
CSS = _SOURCES["document.css"]
# Part of every fingerprint: a changed template re-renders every stored PDF.
TEMPLATES_DIGEST = hashlib.sha256(json.dumps(_SOURCES, sort_keys=True).encode()).hexdigest()
_env = jinja2.Environment(loader=jinja2.DictLoader(_SOURCES), autoescape=True, undefined=jinja2.StrictUndefined)
_env.filters.update(money=money, qty=quantity, percent=percent, day=_day, nl2br=_nl2br)


def _only_data_urls() -> weasyprint.urls.URLFetcher:
    """A fetcher of ``data:`` URLs alone (one per render: WeasyPrint's fetcher keeps request state)."""
    return weasyprint.urls.URLFetcher(allowed_protocols=("data",), allow_redirects=False)


def _plain(value):
    if isinstance(value, (Decimal, dt.date)):
        return str(value)
    raise TypeError(type(value).__name__)


def fingerprint(kind: str, view: DocumentView) -> str:
    """A digest of everything the PDF shows (the view, the templates): equal digests, equal PDFs."""
    body = json.dumps([kind, dataclasses.asdict(view), TEMPLATES_DIGEST], sort_keys=True, default=_plain)
    return hashlib.sha256(body.encode()).hexdigest()


@functools.lru_cache(maxsize=512)
def qr_data_uri(url: str) -> str:
    """The payment link's QR code (the shop's eSIM QR writer), as an embedded PNG. Kept per link:
    choosing the best mask costs tens of milliseconds, and an invoice's link outlives its revisions."""
    return "data:image/png;base64," + base64.b64encode(qr_png(url, scale=4)).decode("ascii")


def html(kind: str, view: DocumentView) -> str:
    """The document's HTML, as WeasyPrint prints it."""
    if kind not in KINDS or view.kind != kind:
        raise ValueError(f"cannot print a {view.kind} as a {kind}")
    title = TITLES[kind]
    if kind == INVOICE and view.tax_total > 0:
        title = "Tax invoice"  # an Australian invoice charging GST says so, beside the ABN
    return _env.get_template(f"{kind}.html").render(
        doc=view, title=title, name=TITLES[kind], css=Markup(CSS),
        to_label="Quote for" if kind != INVOICE else "Bill to",
        qr=qr_data_uri(view.payment_url) if view.payment_url else None)


def write_pdf(markup: str, identifier: str) -> bytes:
    """WeasyPrint on ``markup``, fetching only ``data:`` URLs; ``identifier`` becomes the PDF's /ID."""
    document = weasyprint.HTML(string=markup, url_fetcher=_only_data_urls())
    return document.write_pdf(pdf_identifier=identifier.encode("ascii"))


def render(kind: str, view: DocumentView) -> bytes:
    """The PDF of ``view``: A4, the seed's margins, its /ID the view's :func:`fingerprint`."""
    return write_pdf(html(kind, view), fingerprint(kind, view))


def shows(data: bytes, digest: str) -> bool:
    """Whether PDF bytes are the rendering of the view whose fingerprint is ``digest`` (its /ID)."""
    return f"/ID [({digest})".encode("ascii") in data[-65536:]  # the trailer (xref stream) ends the file
