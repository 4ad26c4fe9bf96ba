"""The client's link to their invoice page: unguessable, and printable at any time.

Like the eSIM order link (``commerce.tokens``), the token is an HMAC of ``tenant:invoice id`` under
the API's secret key (``STOREHOUSE_SHOP_SECRET_KEY``, or the key file of the embedded default), with
a purpose prefix of its own so no order token ever opens an invoice. Nothing is stored beside the
invoice: a PDF rendered by a Dagster run, an email and the API all print the same link, and an
analyst reading ``studio_invoices`` cannot forge one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from commerce.settings import CommerceSettings
from commerce.tokens import load_secret

PURPOSE = "studio-invoice"


class InvoiceLinks:
    def __init__(self, secret: bytes, public_url: str) -> None:
        self._secret, self.public_url = secret, public_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: CommerceSettings | None = None) -> "InvoiceLinks":
        settings = settings or CommerceSettings()
        return cls(load_secret(settings), settings.public_url)

    def token(self, tenant_id: str, invoice_id: int) -> str:
        message = f"{PURPOSE}:{tenant_id}:{int(invoice_id)}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def check(self, tenant_id: str, invoice_id: int, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.token(tenant_id, invoice_id).encode(), token.encode())

    def page_url(self, tenant_id: str, invoice_id: int) -> str:
        """The client's invoice page (what PDFs and emails print)."""
        return f"{self.public_url}/studios/{tenant_id}/public/invoices/{int(invoice_id)}?token={self.token(tenant_id, invoice_id)}"

    def pay_url(self, tenant_id: str, invoice_id: int) -> str:
        """Where the page's Pay button posts: it answers with a redirect to Stripe Checkout."""
        return (f"{self.public_url}/studios/{tenant_id}/public/invoices/{int(invoice_id)}/pay"
                f"?token={self.token(tenant_id, invoice_id)}")


def invoice_url(tenant_id: str, invoice_id: int, settings: CommerceSettings | None = None) -> str:
    """The invoice page's link, from the settings every process reads (for PDFs and emails)."""
    return InvoiceLinks.from_settings(settings).page_url(tenant_id, invoice_id)
