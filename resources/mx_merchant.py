"""MX Merchant client: typed wire models, paging hidden behind generators, concurrent detail calls."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, field_validator

from resources.connection import ConnectionSpec, Credentials, Options, page_size_field
from resources.http import CallPolicy, HttpSession, ProviderError
from resources.provider import Provider, Wire
from warehouse.tenants import TenantConnection

SYSTEM = "mx_merchant"
# 15 s per call, 5 attempts, 0.25 s backoff base; per run at most 50 retries + 1 per 5 calls (a
# first sync makes tens of thousands of detail calls, so the allowance grows with them).
POLICY = CallPolicy(timeout_s=15.0, attempts=5, backoff_base_s=0.25, run_retry_minimum=50, run_retry_ratio=0.2)
MAX_PAGE_SIZE = 1000  # the largest `limit` the list endpoints take
INVOICE_NUMBER = re.compile(r"[0-9]+")
# The statuses seen so far (Approved, Settled, Declined, Voided, Refunded, …) are not a closed list:
# MX may add one (Authorized, say) any day, and a payment must not be quarantined for that.


_Wire = Wire  # the one wire-model base (resources.provider)


class CardAccount(_Wire):
    card_type: str | None = Field(None, alias="cardType")
    last4: str | None = None


class MxPayment(_Wire):
    id: int
    merchant_id: int = Field(alias="merchantId")
    amount: Decimal = Field(allow_inf_nan=False)
    status: str = Field(min_length=1, max_length=32)
    created: dt.datetime
    type: str | None = None
    source: str | None = None
    tender_type: str | None = Field(None, alias="tenderType")
    auth_code: str | None = Field(None, alias="authCode")
    card_account: CardAccount | None = Field(None, alias="cardAccount")
    customer_name: str | None = Field(None, alias="customerName")
    invoice: str | None = None
    invoice_ids: list[int] = Field(default_factory=list, alias="invoiceIds")

    @field_validator("invoice", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if v in ("", 0) else (str(v).strip() or None if v is not None else None)

    @property
    def invoice_number(self) -> str | None:
        """The ``invoice`` field when it is an invoice number: those are integers. MX puts other
        codes in the same field (8-character ones like ``B00INYBB``): no invoice has them."""
        return self.invoice if self.invoice and INVOICE_NUMBER.fullmatch(self.invoice) else None

    @property
    def invoice_code(self) -> str | None:
        """The ``invoice`` field when it holds another code than an invoice number."""
        return self.invoice if self.invoice and not INVOICE_NUMBER.fullmatch(self.invoice) else None


class MxPurchase(_Wire):
    id: int
    product_id: int | None = Field(None, alias="productId")
    product_name: str = Field(alias="productName", min_length=1)
    quantity: Decimal
    price: Decimal
    tax_amount: Decimal | None = Field(None, alias="taxAmount")
    total_amount: Decimal = Field(alias="totalAmount")


class MxCustomer(_Wire):
    id: int | None = None
    name: str | None = None


class MxInvoiceSummary(_Wire):
    id: int
    invoice_number: str = Field(alias="invoiceNumber")

    @field_validator("invoice_number", mode="before")
    @classmethod
    def _as_text(cls, v: Any) -> Any:
        return str(v) if v is not None else v


class MxInvoice(MxInvoiceSummary):
    status: str
    total_amount: Decimal = Field(alias="totalAmount")
    balance: Decimal | None = None
    paid_amount: Decimal | None = Field(None, alias="paidAmount")
    customer: MxCustomer | None = None
    invoice_date: dt.datetime | None = Field(None, alias="invoiceDate")
    purchases: list[MxPurchase] = Field(default_factory=list)

    def primary_purchase(self) -> MxPurchase | None:
        """The highest-value line (the first of equals)."""
        return max(self.purchases, key=lambda p: p.total_amount, default=None)


class Page(BaseModel):
    offset: int
    record_count: int
    records: list[dict[str, Any]]


class MxMerchantClient:
    """One tenant's MX Merchant account."""

    def __init__(self, session: HttpSession, merchant_id: int, detail_concurrency: int = 8):
        self.session = session
        self.merchant_id = merchant_id
        self.detail_concurrency = detail_concurrency

    def call_stats(self) -> dict[str, int]:
        """This run's calls, retries and retry budget, for run metadata."""
        return self.session.call_stats()

    @property
    def calls(self) -> int:
        return self.session.stats.calls

    def close(self) -> None:
        self.session.close()

    def payments_page(self, offset: int, limit: int) -> Page:
        return self._page("/payment", offset, limit)

    def invoices_page(self, offset: int, limit: int) -> Page:
        return self._page("/invoice", offset, limit)

    def _page(self, path: str, offset: int, limit: int) -> Page:
        body = self.session.get_json(path, params={"merchantId": self.merchant_id, "limit": limit, "offset": offset})
        return Page(offset=offset, record_count=int(body.get("recordCount", 0)), records=body.get("records") or [])

    def iter_invoice_summaries(self, limit: int = 500) -> Iterator[dict[str, Any]]:
        """Every invoice in the list, newest first; stop consuming to stop paging."""
        offset = 0
        while True:
            page = self.invoices_page(offset, limit)
            yield from page.records
            offset += len(page.records)
            if not page.records or offset >= page.record_count:
                return

    def payment(self, payment_id: int) -> dict[str, Any]:
        return self.session.get_json(f"/payment/{payment_id}", params={"merchantId": self.merchant_id})

    def invoice(self, invoice_id: int) -> dict[str, Any]:
        return self.session.get_json(f"/invoice/{invoice_id}", params={"merchantId": self.merchant_id})

    def invoices(self, invoice_ids: Iterable[int]) -> Iterator[tuple[int, dict[str, Any] | ProviderError]]:
        """Invoice details fetched ``detail_concurrency`` at a time, yielded as they arrive.

        At most ``2 × concurrency`` calls are in flight or buffered, so memory stays flat however
        many invoices there are. A failed call yields its ``ProviderError`` (auth errors raise).
        """
        ids = iter(invoice_ids)
        window = max(1, self.detail_concurrency) * 2
        with ThreadPoolExecutor(max_workers=max(1, self.detail_concurrency), thread_name_prefix="mx-detail") as pool:
            pending: dict[Future, int] = {}

            def fill() -> None:
                while len(pending) < window:
                    invoice_id = next(ids, None)
                    if invoice_id is None:
                        return
                    pending[pool.submit(self.invoice, invoice_id)] = invoice_id

            fill()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    invoice_id = pending.pop(future)
                    try:
                        yield invoice_id, future.result()
                    except ProviderError as exc:
                        if exc.kind == "auth":
                            raise
                        yield invoice_id, exc
                fill()


class MxCredentials(Credentials):
    merchant_id: int
    consumer_key: str
    consumer_secret: str


class MxOptions(Options):
    category_rules: dict[str, str] = {}
    rate_limit_per_s: float | None = Field(None, gt=0)
    detail_concurrency: int | None = Field(None, ge=1)
    page_size: int | None = page_size_field(MAX_PAGE_SIZE)
    page_concurrency: int | None = Field(None, ge=1)
    invoice_list_page_size: int | None = page_size_field(MAX_PAGE_SIZE)
    lookback_pages: int | None = Field(None, ge=0)
    invoice_batch: int | None = Field(None, ge=1)


CONNECTION = ConnectionSpec(SYSTEM, MxCredentials, MxOptions)


def client_for(connection: TenantConnection, *, detail_concurrency: int = 8, **overrides: Any) -> MxMerchantClient:
    """A client for ``connection`` with MX's call policy (``POLICY``; ``overrides`` replace named fields
    of it, None keeps MX's). The connection's ``detail_concurrency`` option wins over the argument."""
    creds = connection.credentials
    policy = POLICY.with_overrides(max_connections=max(8, detail_concurrency * 2), **overrides)
    session = HttpSession(
        SYSTEM,
        f"{connection.base_url.rstrip('/')}/checkout/v3",
        auth=(creds["consumer_key"], creds["consumer_secret"]),
        policy=policy,
        rate_limit=connection.options.get("rate_limit_per_s"),
    )
    concurrency = int(connection.options.get("detail_concurrency", detail_concurrency))
    return MxMerchantClient(session, int(creds["merchant_id"]), concurrency)


PROVIDER = Provider(
    system=SYSTEM, kind="payments", connection=CONNECTION, client=client_for, policy=POLICY,
    wire=(MxPayment, MxInvoice, MxCustomer), sandbox="mx",
    rate_limit_scope=("none published. A connection's rate_limit_per_s holds per client, i.e. per run (its "
                      "detail threads share it), not across processes: runs that may overlap (at most the "
                      "mx_merchant pool's limit) each keep it, so set it to the account's limit divided by them"),
)
