"""The customer's order as a web page: where Stripe's success redirect lands a browser.

Server-rendered from the same ``OrderView`` the JSON answer carries. While the order is still on
its way a few lines of inline JavaScript ask the same URL for its JSON form every two seconds and
reload the page when the status changes (without JavaScript, a meta refresh does the same); once
provisioned it shows each eSIM's QR code (inline, so the image needs no second request), ICCID,
activation code and how to install it. A failed, refunded or expired order says so plainly.
"""

from __future__ import annotations

import html
import json
import secrets

from starlette.responses import HTMLResponse

from api.schemas import OrderView
from commerce import orders as states

POLL_MS = 2000
# What the customer reads for each status: (headline, explanation).
MESSAGES: dict[str, tuple[str, str]] = {
    states.PENDING: ("Waiting for your payment", "We have not received your payment yet."),
    states.AWAITING_PAYMENT: ("Your payment is on its way",
                              "Your bank payment is being processed; your eSIM follows as soon as it clears."),
    states.PAYMENT_FAILED: ("Your payment did not go through",
                            "Nothing was charged. You can try again from the shop."),
    states.EXPIRED: ("This checkout expired", "It expired before any payment was made; nothing was charged."),
    states.PAID: ("Payment received", "We are preparing your eSIM. This page updates by itself."),
    states.PROCESSING: ("Payment received", "We are preparing your eSIM. This page updates by itself."),
    states.PROVISIONED: ("Your eSIM is ready", "Scan the QR code with the phone you will travel with."),
    states.PARTIALLY_PROVISIONED: ("Part of your order is ready",
                                   "Not every eSIM could be delivered; the ones below are ready, "
                                   "and what could not be delivered is refunded."),
    states.FAILED: ("We could not deliver your eSIM",
                    "None of our providers could issue it. We are sorry."),
    states.REFUNDED: ("This order was refunded", "The payment was returned to you."),
}
STEPS = [
    "On an iPhone: Settings → Mobile Service (or Cellular) → Add eSIM → Use QR Code, and scan the code.",
    "On Android: Settings → Network & internet → SIMs → Add eSIM (or Download a SIM), and scan the code.",
    "No camera at hand? Choose to enter the details manually and paste the activation code.",
    "Install it before you leave, and turn on data roaming for this eSIM when you arrive.",
]
_STYLE = """
body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.5rem} .status{padding:.75rem 1rem;border-radius:.5rem;background:#eef4ff}
.status.bad{background:#fdecea} .status.good{background:#e8f6ec} .esim{border-top:1px solid #ddd;margin-top:1.5rem}
code{word-break:break-all;font-size:1rem} img{image-rendering:pixelated;width:240px;height:240px}
"""


def wants_html(accept: str | None) -> bool:
    """True when the client prefers an HTML page to JSON (a browser's navigation does; httpx, curl
    and fetch() with their defaults, ``*/*``, get JSON)."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            weights[media.lower()] = float(q)
        except ValueError:
            continue
    page = max(weights.get("text/html", 0), weights.get("application/xhtml+xml", 0))
    return page > 0 and page >= weights.get("application/json", 0)


def _money(amount, currency: str) -> str:
    return f"{amount:.2f} {currency.upper()}"


def _page(title: str, body: str, nonce: str, status: int = 200, script: str = "", refresh: bool = False) -> HTMLResponse:
    e = html.escape
    noscript = '<noscript><meta http-equiv="refresh" content="5"></noscript>' if refresh else ""
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">{noscript}'
                f'<title>{e(title)}</title><style nonce="{nonce}">{_STYLE}</style></head>'
                f'<body>{body}{script}</body></html>')
    policy = (f"default-src 'none'; img-src data:; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
              "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return HTMLResponse(document, status_code=status, headers={
        "Cache-Control": "no-store", "Content-Security-Policy": policy, "Vary": "Accept"})


def render(order: OrderView, storefront_name: str) -> HTMLResponse:
    e = html.escape
    nonce = secrets.token_urlsafe(16)
    headline, explanation = MESSAGES.get(order.status, (order.status.replace("_", " ").capitalize(), ""))
    tone = ("good" if order.status == states.PROVISIONED else
            "bad" if order.status in (states.FAILED, states.REFUNDED, states.PAYMENT_FAILED, states.EXPIRED) else "")
    if order.amount_refunded:
        explanation += f" Refunded: {_money(order.amount_refunded, order.currency)}."
    if order.failure_reason and order.status in (states.FAILED, states.PARTIALLY_PROVISIONED):
        explanation += f" ({order.failure_reason})"
    parts = [
        f"<p>{e(storefront_name)}</p>",
        f"<h1>{e(order.package_name)}" + (f" × {order.quantity}" if order.quantity > 1 else "") + "</h1>",
        f'<div class="status {tone}" id="status" data-status="{e(order.status)}" role="status">'
        f"<strong>{e(headline)}</strong><br>{e(explanation)}</div>",
        f"<p>Order {e(order.order_id)} · {_money(order.amount_total, order.currency)}</p>",
    ]
    for esim in order.esims:
        parts.append(
            f'<section class="esim" id="esim-{esim.unit}"><h2>eSIM {esim.unit}</h2>'
            f'<img alt="QR code for eSIM {esim.unit}" src="data:image/png;base64,{e(esim.qr_png_base64)}">'
            f"<p>ICCID: <code class=\"iccid\">{e(esim.iccid)}</code></p>"
            f"<p>Activation code: <code class=\"activation\">{e(esim.activation_code)}</code></p></section>")
    if order.esims:
        parts.append("<h2>How to install</h2><ol>" + "".join(f"<li>{e(s)}</li>" for s in STEPS) + "</ol>")
    waiting = order.status not in states.FINAL and order.status != states.PAYMENT_FAILED
    script = ""
    if waiting:
        # Ask the same URL (token and all) for JSON; reload once the status moves on.
        script = (f'<script nonce="{nonce}">(function(){{var shown={_js_string(order.status)};'
                  f"function poll(){{fetch(window.location.href,{{headers:{{Accept:'application/json'}},"
                  f"cache:'no-store'}}).then(function(r){{return r.ok?r.json():null}})"
                  f".then(function(o){{if(o&&o.status!==shown){{window.location.reload()}}"
                  f"else{{setTimeout(poll,{POLL_MS})}}}},function(){{setTimeout(poll,{POLL_MS})}})}}"
                  f"setTimeout(poll,{POLL_MS})}})()</script>")
    return _page(f"{headline} · {storefront_name}", "".join(parts), nonce, script=script, refresh=waiting)


def error(status: int, detail: str) -> HTMLResponse:
    body = f"<h1>{'This order cannot be shown' if status < 500 else 'Something went wrong'}</h1><p>{html.escape(detail)}</p>"
    return _page("Order", body, secrets.token_urlsafe(16), status=status)


def _js_string(value: str) -> str:
    return json.dumps(value).replace("<", "\\u003c")
