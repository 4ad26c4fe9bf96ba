"""The customer emails: "your eSIM is ready" (with QR codes) and the apology with its refund.

Bodies are built only from stored order data, never from the clock, so a resend after a crash
is byte-identical and Resend's idempotency key can recognise it.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Any

from commerce.storefronts import Storefront
from resources.email import Attachment, Email


def _amount(value: Decimal, currency: str) -> str:
    return f"{value:.2f} {currency}"


def ready_email(storefront: Storefront, order: dict[str, Any], esims: list[dict[str, Any]], order_url: str) -> Email:
    """One QR code per eSIM, inline (``cid:``) and attached, plus the code to type by hand."""
    blocks, lines, files = [], [], []
    for esim in esims:
        cid = f"esim-{esim['unit']}"
        files.append(Attachment(f"esim-{esim['iccid']}.png", esim["qr_png"], "image/png", content_id=cid))
        blocks.append(
            f"<h3>eSIM {esim['unit']}</h3><p><img src=\"cid:{cid}\" alt=\"QR code for eSIM {esim['unit']}\" "
            f"width=\"240\" height=\"240\"></p><p>ICCID: <code>{escape(esim['iccid'])}</code><br>"
            f"Activation code: <code>{escape(esim['activation_code'])}</code></p>"
        )
        lines.append(f"eSIM {esim['unit']}: ICCID {esim['iccid']}\n  Activation code: {esim['activation_code']}")
    name = escape(order["package_name"])
    html = (
        f"<p>Thank you for your order at {escape(storefront.name)}.</p>"
        f"<p>Your {name} eSIM{'s are' if len(esims) > 1 else ' is'} ready. On your phone, open "
        "Settings → Mobile data → Add eSIM and scan the QR code (or enter the activation code).</p>"
        + "".join(blocks)
        + f"<p>Order {escape(order['order_id'])}: <a href=\"{escape(order_url)}\">view it any time</a>.</p>"
    )
    text = (
        f"Thank you for your order at {storefront.name}.\n\nYour {order['package_name']} eSIM is ready. Scan the "
        "attached QR code (Settings > Mobile data > Add eSIM) or enter the activation code.\n\n"
        + "\n".join(lines) + f"\n\nOrder {order['order_id']}: {order_url}\n"
    )
    return Email(to=order["email"], subject=f"Your eSIM is ready: {order['package_name']}", html=html, text=text,
                 attachments=tuple(files), tags=(("order", order["order_id"]), ("kind", "esim_ready")))


def apology_email(storefront: Storefront, order: dict[str, Any], refund: Decimal, order_url: str) -> Email:
    missing = "your eSIM" if order["quantity"] == 1 else "some of your eSIMs"
    refund_line = (f"We have refunded {_amount(refund, order['currency'])} to your card; it usually shows "
                   "within 5-10 business days." if refund > 0 else
                   "Our team will contact you about a refund.")
    text = (f"We are sorry: we could not deliver {missing} for order {order['order_id']} "
            f"({order['package_name']}). Every supplier we tried was unavailable.\n\n{refund_line}\n\n"
            f"Order: {order_url}\n\n{storefront.name}\n")
    html = "".join(f"<p>{escape(part)}</p>" for part in text.strip().split("\n\n"))
    return Email(to=order["email"], subject=f"We could not deliver your eSIM (order {order['order_id']})",
                 html=html, text=text, tags=(("order", order["order_id"]), ("kind", "apology")))
