"""The studio client's invoice as a web page: what the emailed link and the PDF's link open.

Server-rendered, no script: the invoice, its lines and totals, what was paid and what is due,
and while a balance is due a Pay button (a form posting to ``…/pay``, which answers with a
redirect to Stripe Checkout). Stripe's success redirect lands back here, already confirmed with
Stripe, so the page shows the invoice paid. The Content-Security-Policy lets the form go only to
this API and on to the studio's Stripe Checkout.
"""

from __future__ import annotations

import html
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from studio.ledger import PAYABLE
from studio.money import price

MESSAGES: dict[str, tuple[str, str]] = {
    "issued": ("Payment due", "You can pay the balance by card below."),
    "overdue": ("Payment overdue", "The due date has passed; you can pay the balance by card below."),
    "partially_paid": ("Partly paid", "Thank you for your payment. The balance is still due."),
    "paid": ("Paid", "Thank you: this invoice is paid in full."),
    "void": ("Voided", "This invoice was voided: nothing is due."),
}
STRIPE_CHECKOUT = "https://checkout.stripe.com"
_STYLE = """
body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.5rem} .status{padding:.75rem 1rem;border-radius:.5rem;background:#eef4ff}
.status.good{background:#e8f6ec} .status.bad{background:#fdecea}
table{border-collapse:collapse;width:100%;margin:1rem 0} th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd}
td.n,th.n{text-align:right} .totals td{border:none} .balance td{font-weight:bold;border-top:2px solid #222}
button{font-size:1.1rem;padding:.6rem 1.4rem;border-radius:.4rem;border:0;background:#635bff;color:#fff;cursor:pointer}
"""


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def checkout_origins(stripe_base_url: str | None) -> str:
    """Where the Pay form may lead: Stripe's hosted Checkout, and the studio's Stripe's own origin
    (the sandbox serves its Checkout page beside its API)."""
    origins = [STRIPE_CHECKOUT]
    if stripe_base_url:
        parts = urlsplit(stripe_base_url)
        if parts.scheme in ("http", "https") and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return " ".join(dict.fromkeys(origins))


def _page(title: str, body: str, status: int = 200, form_to: str = "") -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<title>{html.escape(title)}</title><style nonce="{nonce}">{_STYLE}</style></head>'
                f'<body>{body}</body></html>')
    form_action = f"'self' {form_to}" if form_to else "'none'"
    policy = (f"default-src 'none'; style-src 'nonce-{nonce}'; base-uri 'none'; frame-ancestors 'none'; "
              f"form-action {form_action}")
    return HTMLResponse(document, status_code=status, headers={
        "Cache-Control": "no-store", "Content-Security-Policy": policy, "Referrer-Policy": "no-referrer"})


def render(invoice: dict[str, Any], items: list[dict[str, Any]], business: str, client: str, pay_url: str,
           stripe_base_url: str | None, notice: str = "") -> HTMLResponse:
    e, cur = html.escape, invoice["currency"]
    status = invoice["status"]
    headline, explanation = MESSAGES.get(status, (status.replace("_", " ").capitalize(), ""))
    tone = "good" if status == "paid" else "bad" if status in ("overdue", "void") else ""
    dates = " · ".join(part for part in (
        f"Issued {invoice['issue_date']:%d %b %Y}" if invoice.get("issue_date") else "",
        f"Due {invoice['due_date']:%d %b %Y}" if invoice.get("due_date") else "") if part)
    rows = "".join(
        f"<tr><td>{e(i['description'])}</td><td class=n>{i['quantity'].normalize():f}</td>"
        f"<td class=n>{price(i['unit_price']):,f} {cur}</td>"  # as stored: 0.335 is not 0.34
        f"<td class=n>{i['discount_percent'].normalize():f} %</td><td class=n>{_money(i['line_tax'], cur)}</td>"
        f"<td class=n>{_money(i['line_total'], cur)}</td></tr>" for i in items)
    totals = [("Subtotal", invoice["subtotal"]), ("Discount", -invoice["discount_total"]), ("GST", invoice["tax_total"]),
              ("Total", invoice["total"]), ("Paid", -invoice["amount_paid"])]
    if invoice["amount_refunded"]:
        totals.append(("Refunded", invoice["amount_refunded"]))
    total_rows = "".join(f'<tr><td colspan=5 class=n>{label}</td><td class=n>{_money(amount, cur)}</td></tr>'
                         for label, amount in totals)
    payable = status in PAYABLE and invoice["balance_due"] > 0
    parts = [
        f"<p>{e(business)}</p>",
        f"<h1>Invoice {e(invoice['document_number'])}</h1>",
        f"<p>For {e(client)}" + (f" · {e(dates)}" if dates else "") + "</p>",
        f'<div class="status {tone}" id="status" data-status="{e(status)}" role="status">'
        f"<strong>{e(headline)}</strong><br>{e(explanation)}" + (f"<br>{e(notice)}" if notice else "") + "</div>",
        "<table><thead><tr><th>Item</th><th class=n>Qty</th><th class=n>Unit price</th><th class=n>Discount</th>"
        f"<th class=n>GST</th><th class=n>Amount</th></tr></thead><tbody>{rows}</tbody>"
        f'<tbody class="totals">{total_rows}<tr class="balance"><td colspan=5 class=n>Balance due</td>'
        f'<td class=n id="balance">{_money(invoice["balance_due"], cur)}</td></tr></tbody></table>',
    ]
    if payable:
        parts.append(f'<form method="post" action="{e(pay_url)}"><button id="pay" type="submit">'
                     f'Pay {_money(invoice["balance_due"], cur)}</button></form>')
    return _page(f"Invoice {invoice['document_number']} · {business}", "".join(parts),
                 form_to=checkout_origins(stripe_base_url) if payable else "")


def error(status: int, detail: str) -> HTMLResponse:
    title = "This invoice cannot be shown" if status < 500 else "Something went wrong"
    return _page("Invoice", f"<h1>{title}</h1><p>{html.escape(detail)}</p>", status=status)
