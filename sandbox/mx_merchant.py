"""MX Merchant fake (`/mx/checkout/v3/...`), faithful to the public shapes.

* HTTP Basic ``consumerKey:consumerSecret``; every call names ``merchantId`` and a key sees only
  its own merchants (401 for bad credentials, 403 for another merchant's id).
* ``limit``/``offset`` paging (newest first) with the ``{"recordCount", "records"}`` envelope.
* Money as JSON strings; payments carry the ``invoice`` number and, when the merchant is set up
  so, ``invoiceIds``; invoice detail has ``purchases[]``. Invoice numbers are integers; a
  standalone payment may carry another code in ``invoice`` (``other_codes_every``).

Data is generated, never stored: payment ``i`` (0 = oldest) of a merchant is a pure function of
``(seed, i)``, so 1,000,000 transactions cost no memory. Payments come in blocks: per block,
``INVOICES_PER_BLOCK`` invoices of ``payments_per_invoice`` payments each plus enough
standalone payments to make ``linked_ratio``, shuffled inside the block.

Demo merchants after reset (merchant id, key, secret):
  1000095245 ``downtown-key``/``downtown-secret`` (Downtown Medical, 1,500 payments, numbers only)
  1000095246 ``northside-key``/``northside-secret`` (Northside Clinic, 1,200 payments, with invoiceIds)
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import threading
from collections import Counter
from decimal import Decimal
from functools import lru_cache

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

NAME = "mx"
INVOICES_PER_BLOCK = 3
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
CENT = Decimal("0.01")
PRODUCTS = [
    ("Botox (20 units)", Decimal("240.00")), ("Dermal Filler 1ml", Decimal("650.00")),
    ("Consultation", Decimal("75.00")), ("Monthly Membership", Decimal("99.00")),
    ("Vitamin B12 Injection", Decimal("35.00")), ("Chemical Peel", Decimal("150.00")),
    ("Laser Hair Removal Session", Decimal("199.00")), ("HydraFacial", Decimal("175.00")),
    ("Semaglutide 4-week supply", Decimal("399.00")), ("IV Hydration Therapy", Decimal("220.00")),
]
CUSTOMERS = ["Ava Thompson", "Liam Carter", "Mia Nguyen", "Noah Patel", "Emma Rossi", "Lucas Meyer",
             "Olivia Chen", "Ethan Brooks", "Sofia Alvarez", "Mason Reid", "Isla Novak", "Leo Haddad"]
CARDS = ["Visa", "MasterCard", "Amex", "Discover"]


class MerchantSpec(BaseModel):
    merchant_id: int
    consumer_key: str
    consumer_secret: str
    name: str = "Sandbox Merchant"
    transactions: int = Field(1000, ge=0, le=50_000_000)
    linked_ratio: float = Field(0.6, ge=0, lt=1)
    payments_per_invoice: int = Field(5, ge=1, le=50)
    invoice_ids_on_payments: bool = False
    malformed_every: int = Field(0, ge=0, description="every n-th payment is malformed (0: none)")
    malformed_invoice_every: int = Field(0, ge=0, description="every n-th invoice's detail is malformed (0: none)")
    other_codes_every: int = Field(0, ge=0, description="every n-th standalone payment carries another code, "
                                   "not an invoice number, in `invoice` (e.g. 'B00INYBB'; 0: none)")
    seed: int = 1


class AppendWhileListing(BaseModel):
    """New payments arrive while a sync pages: ``count`` more (at the newest end, so every older
    payment's offset shifts by ``count``) before every ``every``-th payment-list request, ``times`` times."""

    count: int = Field(ge=1, le=100_000)
    every: int = Field(1, ge=1)
    times: int = Field(1, ge=0, le=1_000_000)
    seen: int = 0
    appended: int = 0


class Merchant:
    def __init__(self, spec: MerchantSpec):
        self.spec = spec
        self.n = spec.transactions
        self.linked_per_block = INVOICES_PER_BLOCK * spec.payments_per_invoice
        standalone = round(self.linked_per_block * (1 - spec.linked_ratio) / spec.linked_ratio) if spec.linked_ratio else 0
        self.block = self.linked_per_block + standalone if spec.linked_ratio else 1
        self.id_base = 100_000_000 + (spec.merchant_id % 1000) * 10_000_000_000
        self.invoice_base = 5_000_000 + (spec.merchant_id % 1000) * 1_000_000_000
        self.status_overrides: dict[int, str] = {}
        self.calls: Counter[str] = Counter()
        self.appending: AppendWhileListing | None = None

    def list_snapshot(self) -> int:
        """The payment count one list request sees; new payments may arrive first (see
        ``AppendWhileListing``). Taken once per request, so a page and its ``recordCount`` agree."""
        with _lock:
            a = self.appending
            if a is not None and a.times:
                a.seen += 1
                if a.seen % a.every == 0:
                    self.n += a.count
                    a.times -= 1
                    a.appended += a.count
            return self.n

    # -- the pure generator ------------------------------------------------------------
    def slot(self, i: int) -> tuple[int, int] | None:
        """(invoice index, position in invoice) for payment ``i``, or None when standalone."""
        if not self.spec.linked_ratio:
            return None
        b, pos = divmod(i, self.block)
        rank = _permutation(self.spec.seed, self.block, b)[pos]
        if rank >= self.linked_per_block:
            return None
        k, j = divmod(rank, self.spec.payments_per_invoice)
        return b * INVOICES_PER_BLOCK + k, j

    def first_payment_of(self, g: int) -> int:
        """The earliest payment of invoice ``g`` (payments of an invoice are shuffled in time)."""
        return min(self._payment_index(g, j) for j in range(self.spec.payments_per_invoice))

    def _partial_block_invoices(self) -> tuple[int, list[int]]:
        """(invoices in complete blocks, existing invoices of the block in progress, newest first)."""
        if not self.spec.linked_ratio or not self.n:
            return 0, []
        full_blocks = self.n // self.block
        first = full_blocks * INVOICES_PER_BLOCK
        started = [g for g in range(first, first + INVOICES_PER_BLOCK) if self.first_payment_of(g) < self.n]
        return first, sorted(started, key=self.first_payment_of, reverse=True)

    def invoice_count(self) -> int:
        """Invoices that exist: those whose first payment has been made."""
        complete, started = self._partial_block_invoices()
        return complete + len(started)

    def invoice_exists(self, g: int) -> bool:
        return g >= 0 and self.first_payment_of(g) < self.n if self.spec.linked_ratio else False

    def invoices_newest_first(self, offset: int, limit: int) -> list[int]:
        """Existing invoice indices, newest first, for one page of the invoice list."""
        complete, started = self._partial_block_invoices()
        head = started[offset:offset + limit]
        rest_offset = max(0, offset - len(started))
        rest = [complete - 1 - k for k in _window(complete, limit - len(head), rest_offset)]
        return head + rest

    def invoice(self, g: int, detail: bool) -> dict:
        rng = random.Random(self.spec.seed * 7_919 + g)
        lines = []
        for line in range(rng.randint(1, 4)):
            name, price = PRODUCTS[rng.randrange(len(PRODUCTS))]
            qty = rng.randint(1, 3)
            tax = (price * qty * Decimal("0.08")).quantize(CENT)
            lines.append({"id": (self.invoice_base + g) * 10 + line, "productId": 9000 + PRODUCTS.index((name, price)),
                          "productName": name, "quantity": qty, "price": str(price),
                          "taxAmount": str(tax), "totalAmount": str(price * qty + tax)})
        total = sum(Decimal(l["totalAmount"]) for l in lines)
        paid = sum(self._invoice_share(total, j) for j in range(self.spec.payments_per_invoice)
                   if self._payment_index(g, j) < self.n)
        customer = CUSTOMERS[rng.randrange(len(CUSTOMERS))]
        doc = {
            "id": self.invoice_base + g, "invoiceNumber": str(100_000 + g),
            "status": "Paid" if paid >= total else "PartiallyPaid",
            "totalAmount": str(total), "paidAmount": str(paid), "balance": str(total - paid),
            "customer": {"id": 70_000 + rng.randrange(5_000), "name": customer},
            "invoiceDate": self._created(self.first_payment_of(g)).isoformat(),
            "merchantId": self.spec.merchant_id,
        }
        if detail:
            every = self.spec.malformed_invoice_every
            if every and g % every == every - 1:
                doc["totalAmount"] = "12.3O"
            doc["purchases"] = lines
            doc["payments"] = [{"id": self.id_base + p, "amount": str(self._invoice_share(total, j))}
                               for j in range(self.spec.payments_per_invoice)
                               if (p := self._payment_index(g, j)) < self.n]
        return doc

    def _payment_index(self, g: int, j: int) -> int:
        b, k = divmod(g, INVOICES_PER_BLOCK)
        perm = _permutation(self.spec.seed, self.block, b)
        return b * self.block + perm.index(k * self.spec.payments_per_invoice + j)

    def _invoice_share(self, total: Decimal, j: int) -> Decimal:
        p = self.spec.payments_per_invoice
        share = (total / p).quantize(CENT)
        return total - share * (p - 1) if j == p - 1 else share

    def _created(self, i: int) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=i * 97 + (i * 7919) % 60)

    def payment(self, i: int) -> dict:
        rng = random.Random(self.spec.seed * 104_729 + i)
        pid = self.id_base + i
        slot = self.slot(i)
        doc = {
            "id": pid, "merchantId": self.spec.merchant_id, "type": "Sale", "tenderType": "Card",
            "status": self.status_overrides.get(pid, "Settled" if i < self.n - 50 else "Approved"),
            "authCode": f"{rng.randrange(10**6):06d}",
            "cardAccount": {"cardType": CARDS[rng.randrange(4)], "last4": f"{rng.randrange(10**4):04d}",
                            "token": f"tok{rng.getrandbits(48):012x}"},
            "created": self._created(i).isoformat(), "customerName": CUSTOMERS[rng.randrange(len(CUSTOMERS))],
        }
        if slot is None:
            doc["amount"] = str(Decimal(rng.randrange(1_500, 40_000)) * CENT)
            doc["source"] = rng.choice(["QuickPay", "POS", "Recurring"])
            if self.spec.other_codes_every and i % self.spec.other_codes_every == 0:
                doc["invoice"] = other_code(self.spec.seed, i)
        else:
            g, j = slot
            inv = self.invoice(g, detail=False)
            doc["amount"] = str(self._invoice_share(Decimal(inv["totalAmount"]), j))
            doc["source"] = "Invoice"
            doc["invoice"] = inv["invoiceNumber"]
            doc["customerName"] = inv["customer"]["name"]
            if self.spec.invoice_ids_on_payments:
                doc["invoiceIds"] = [inv["id"]]
        every = self.spec.malformed_every
        if every and i % every == every - 1:
            kind = (i // every) % 3
            if kind == 0:
                del doc["id"]
            elif kind == 1:
                doc["amount"] = "12.3O"
            else:
                doc["status"] = None  # an unknown status is just a status; a missing one is malformed
        return doc

    def payment_index(self, pid: int) -> int | None:
        i = pid - self.id_base
        return i if 0 <= i < self.n else None


def other_code(seed: int, i: int) -> str:
    """An 8-character code of the kind MX also puts in a payment's ``invoice`` field."""
    rng = random.Random(seed * 15_485_863 + i)
    return "B" + "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(7))


@lru_cache(maxsize=4096)
def _permutation(seed: int, size: int, block: int) -> tuple[int, ...]:
    order = list(range(size))
    random.Random(seed * 1_000_003 + block).shuffle(order)
    return tuple(order)


# -- state ---------------------------------------------------------------------------
_lock = threading.Lock()
_merchants: dict[int, Merchant] = {}

DEMO = [
    MerchantSpec(merchant_id=1000095245, consumer_key="downtown-key", consumer_secret="downtown-secret",
                 name="Downtown Medical", transactions=1500, seed=11),
    MerchantSpec(merchant_id=1000095246, consumer_key="northside-key", consumer_secret="northside-secret",
                 name="Northside Clinic", transactions=1200, invoice_ids_on_payments=True, seed=12),
]


def reset() -> None:
    with _lock:
        _merchants.clear()
        for spec in DEMO:
            _merchants[spec.merchant_id] = Merchant(spec)


reset()


def _authorise(request: Request, merchant_id: int | None) -> Merchant:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        raise HTTPException(401, detail="Unauthorized", headers={"WWW-Authenticate": "Basic"})
    try:
        key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(401, detail="Unauthorized") from None
    owned = [m for m in _merchants.values() if m.spec.consumer_key == key and m.spec.consumer_secret == secret]
    if not owned:
        raise HTTPException(401, detail="Unauthorized")
    if merchant_id is None:
        raise HTTPException(400, detail="merchantId is required")
    merchant = next((m for m in owned if m.spec.merchant_id == merchant_id), None)
    if merchant is None:
        raise HTTPException(403, detail="Access to this merchant is denied")
    return merchant


def _window(total: int, limit: int, offset: int) -> range:
    start = min(offset, total)
    return range(start, min(total, start + limit))


router = APIRouter(tags=["mx merchant"])
Limit = Query(10, ge=1, le=1000)


@router.get("/checkout/v3/payment")
def list_payments(request: Request, merchantId: int | None = None, limit: int = Limit, offset: int = Query(0, ge=0)):
    m = _authorise(request, merchantId)
    m.calls["payment_list"] += 1
    n = m.list_snapshot()
    records = [m.payment(n - 1 - k) for k in _window(n, limit, offset)]
    return {"recordCount": n, "records": records}


@router.get("/checkout/v3/payment/{payment_id}")
def get_payment(request: Request, payment_id: int, merchantId: int | None = None):
    m = _authorise(request, merchantId)
    m.calls["payment_detail"] += 1
    i = m.payment_index(payment_id)
    if i is None:
        raise HTTPException(404, detail="Payment not found")
    return m.payment(i)


@router.get("/checkout/v3/invoice")
def list_invoices(request: Request, merchantId: int | None = None, limit: int = Limit, offset: int = Query(0, ge=0)):
    m = _authorise(request, merchantId)
    m.calls["invoice_list"] += 1
    total = m.invoice_count()
    records = [m.invoice(g, detail=False) for g in m.invoices_newest_first(offset, limit)]
    return {"recordCount": total, "records": records,
            "totals": {"grandTotalAmount": str(sum(Decimal(r["totalAmount"]) for r in records))}}


@router.get("/checkout/v3/invoice/{invoice_id}")
def get_invoice(request: Request, invoice_id: int, merchantId: int | None = None):
    m = _authorise(request, merchantId)
    m.calls["invoice_detail"] += 1
    g = invoice_id - m.invoice_base
    if not m.invoice_exists(g):
        raise HTTPException(404, detail="Invoice not found")
    return m.invoice(g, detail=True)


# -- sandbox control -------------------------------------------------------------------
control = APIRouter()


class Grow(BaseModel):
    count: int = Field(ge=1, le=10_000_000)


class StatusChange(BaseModel):
    payment_ids: list[int]
    status: str


def _merchant(merchant_id: int) -> Merchant:
    m = _merchants.get(merchant_id)
    if m is None:
        raise HTTPException(404, detail="unknown merchant")
    return m


@control.post("/merchants")
def create_merchant(spec: MerchantSpec) -> dict:
    with _lock:
        _merchants[spec.merchant_id] = Merchant(spec)
    return spec.model_dump()


@control.post("/merchants/{merchant_id}/grow")
def grow(merchant_id: int, body: Grow) -> dict:
    """New payments arrive (appended at the newest end)."""
    m = _merchant(merchant_id)
    with _lock:
        m.n += body.count
    return {"transactions": m.n}


@control.put("/merchants/{merchant_id}/append-while-listing")
def append_while_listing(merchant_id: int, body: AppendWhileListing) -> dict:
    """Payments arrive while a sync reads the list; ``times: 0`` stops them."""
    m = _merchant(merchant_id)
    with _lock:
        m.appending = AppendWhileListing(count=body.count, every=body.every, times=body.times)
    return m.appending.model_dump()


@control.post("/merchants/{merchant_id}/statuses")
def change_status(merchant_id: int, body: StatusChange) -> dict:
    """Existing payments change status (settled, refunded, voided)."""
    m = _merchant(merchant_id)
    with _lock:
        for pid in body.payment_ids:
            m.status_overrides[pid] = body.status
    return {"changed": len(body.payment_ids)}


@control.get("/merchants/{merchant_id}/stats")
def stats(merchant_id: int) -> dict:
    m = _merchant(merchant_id)
    linked = sum(1 for i in range(m.n) if m.slot(i) is not None) if m.n <= 2_000_000 else None
    return {"transactions": m.n, "invoices": m.invoice_count(), "linked_payments": linked,
            "calls": dict(m.calls), "appended_while_listing": m.appending.appended if m.appending else 0,
            "newest_payment_id": m.id_base + m.n - 1 if m.n else None}


@control.post("/merchants/{merchant_id}/calls/reset")
def reset_calls(merchant_id: int) -> dict:
    _merchant(merchant_id).calls.clear()
    return {"reset": True}
