"""A studio invoice's money for its staff (and its own client): record a manual payment, make or
reuse the Stripe Checkout link for the balance, list the payments and refunds.

Staff need ``studio.manage`` on the studio. A client signed in with a ``customer`` grant may make
the payment link of, and read the payments on, their own invoices (the invoice's client is theirs:
``studio_clients.user_id`` is them, or their grant's ``customer_id`` is that client).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Callable, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field, model_validator

from api.deps import Instant, STUDIO_ONLY, ServicesDep
from api.problems import Problem, problem_responses
from api.schemas import Amount, Input
from api.staff import STAFF_RESPONSES, AuthDep, ReadConn, bearer, forbidden, require, unauthorised
from people.auth import Access
from studio import ledger
from studio.checkout import CheckoutLink
from warehouse.tables.studio import studio_clients, studio_invoices

router = APIRouter(prefix="/studios/{tenant}/invoices/{invoice_id}", tags=["studio: payments"],
                   dependencies=STUDIO_ONLY)
InvoiceId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MANAGE = "studio.manage"


def _owns(conn: sa.Connection, access: Access, invoice_id: int) -> bool:
    i, c = studio_invoices.c, studio_clients.c
    mine = c.user_id == access.principal.user_id
    if access.customer_id and access.customer_id.isdigit():
        mine = sa.or_(mine, c.id == int(access.customer_id))
    return conn.execute(sa.select(i.id).join(studio_clients, sa.and_(c.id == i.client_id, c.tenant_id == i.tenant_id))
                        .where(i.tenant_id == access.tenant_id, i.id == invoice_id, i.status != "draft", mine)
                        ).first() is not None


def staff_or_client(permission: str) -> Callable[..., Access]:
    """Staff holding ``permission`` on ``{tenant}``, or the invoice's own client (a customer grant)."""

    def dependency(tenant: str, invoice_id: InvoiceId, auth: AuthDep, token: Annotated[str | None, Depends(bearer)],
                   conn: ReadConn) -> Access:
        principal, access = auth.authorise(token, tenant if len(tenant) <= 64 else None, conn)
        if principal is None:
            raise unauthorised()
        if access is not None and access.allows(permission):
            return access
        if access is not None and access.role == "customer" and _owns(conn, access, invoice_id):
            return access
        raise forbidden(f"You may not do this ({permission}, or the invoice's own client) on this tenant.")

    dependency.staff_rule = f"{permission}|client"  # type: ignore[attr-defined]
    return dependency


Staff = Annotated[Access, Depends(require(MANAGE))]
StaffOrClient = Annotated[Access, Depends(staff_or_client(MANAGE))]


class ManualPayment(Input):  # Input: no unknown fields, no NUL (PostgreSQL cannot store one) in its texts
    method: Literal[ledger.MANUAL_METHODS] = Field(description="how the money came")  # type: ignore[valid-type]
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2, description="no more than the balance due")
    currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$", description="must be the invoice's (default)")
    reference: str | None = Field(None, min_length=1, max_length=255,
                                  description="the bank's reference, a receipt number; a payment with the same "
                                              "method and reference is recorded once")
    note: str | None = Field(None, max_length=2000)
    received_at: Instant | None = Field(None, description="when the money came (default: now)")

    model_config = {"json_schema_extra": {"examples": [
        {"method": "BANK_TRANSFER", "amount": "110.00", "reference": "NAB 1234 5678"}]}}

    @model_validator(mode="after")
    def _bank_reference(self) -> "ManualPayment":
        if self.method == "BANK_TRANSFER" and not self.reference:
            raise ValueError("a bank transfer needs its reference, to be reconciled with the statement")
        return self


class PaymentView(BaseModel):
    id: int
    kind: str
    method: str
    amount: Amount
    currency: str
    processor_id: str | None
    reference: str | None
    note: str | None
    received_at: dt.datetime
    recorded_by: str | None


class Balance(BaseModel):
    invoice_id: int
    status: str
    total: Amount
    amount_paid: Amount
    amount_refunded: Amount
    balance_due: Amount
    paid_at: dt.datetime | None


class Payments(BaseModel):
    invoice: Balance
    payments: list[PaymentView]


class Recorded(BaseModel):
    payment: PaymentView
    invoice: Balance
    created: bool


class CheckoutLinkView(BaseModel):
    url: str = Field(description="Stripe Checkout for the balance")
    session_id: str
    amount: Amount
    currency: str
    expires_at: dt.datetime
    reused: bool = Field(description="the invoice's open session, handed out again")
    invoice_url: str = Field(description="the client's invoice page (the link emails and PDFs print)")


def _payment(row: dict[str, Any]) -> PaymentView:
    return PaymentView(**{k: row[k] for k in PaymentView.model_fields})


def _balance(invoice: dict[str, Any]) -> Balance:
    return Balance(invoice_id=invoice["id"], **{k: invoice[k] for k in Balance.model_fields if k != "invoice_id"})


def _refused(exc: ledger.LedgerError) -> Problem:
    return Problem(exc.status, exc.code, exc.detail)


@router.post("/payments", response_model=Recorded, status_code=201, responses={
    200: {"description": "Already recorded (same method, reference and amount): the first record, unchanged.",
          "model": Recorded},
    **STAFF_RESPONSES, **problem_responses((409, "The invoice takes no payment (a draft, void or paid), or this "
                                                 "method and reference were recorded for another amount."))})
def record_payment(tenant: str, invoice_id: InvoiceId, body: ManualPayment, access: Staff, services: ServicesDep,
                   request: Request, response: Response) -> Recorded:
    """Record a payment received outside Stripe (bank transfer, cash, …); never more than the balance due.
    The invoice's open Checkout Session, which charges the old balance, is expired at Stripe."""
    engine = services.engine
    try:
        with engine.begin() as conn:
            invoice = ledger.lock_invoice(conn, tenant, invoice_id)
            if invoice is None:
                raise ledger.InvoiceNotFound("No such invoice.")
            done = ledger.record(conn, tenant, invoice_id, kind=ledger.PAYMENT, method=body.method,
                                 amount=body.amount, currency=body.currency or invoice["currency"],
                                 reference=body.reference, note=body.note, received_at=body.received_at,
                                 actor_kind="staff", actor_id=access.principal.user_id)
    except ledger.LedgerError as exc:
        raise _refused(exc) from None
    if not done.created:
        response.status_code = 200
    else:
        storefront = services.storefronts.get(tenant)
        request.app.state.studio_payments.checkout.retire(tenant, invoice_id,
                                                          storefront.connection("stripe") if storefront else None)
    return Recorded(payment=_payment(done.payment), invoice=_balance(done.invoice), created=done.created)


@router.get("/payments", response_model=Payments, responses=STAFF_RESPONSES)
def list_payments(tenant: str, invoice_id: InvoiceId, access: StaffOrClient, conn: ReadConn) -> Payments:
    """The invoice's balance, and its payments and refunds, oldest first."""
    i = studio_invoices.c
    invoice = conn.execute(sa.select(studio_invoices).where(i.tenant_id == tenant, i.id == invoice_id)
                           ).mappings().one_or_none()
    if invoice is None:
        raise Problem(404, "invoice-not-found", "No such invoice.")
    return Payments(invoice=_balance(dict(invoice)),
                    payments=[_payment(p) for p in ledger.payments_of(conn, tenant, invoice_id)])


@router.post("/checkout", response_model=CheckoutLinkView, responses={
    **STAFF_RESPONSES, **problem_responses((409, "Nothing to pay, or the studio has no Stripe account connected."),
                                           (502, "Stripe could not be reached."))})
def checkout_link(tenant: str, invoice_id: InvoiceId, access: StaffOrClient, services: ServicesDep,
                  request: Request) -> CheckoutLinkView:
    """The Stripe Checkout link that pays the balance: the invoice's open session while the balance is
    unchanged, else a new one."""
    studio = request.app.state.studio_payments
    storefront = services.storefronts.get(tenant)
    if storefront is None:
        raise Problem(404, "invoice-not-found", "No such invoice.")
    try:
        link: CheckoutLink = studio.checkout.link(tenant, invoice_id, storefront.connection("stripe"))
    except ledger.LedgerError as exc:
        raise _refused(exc) from None
    return CheckoutLinkView(url=link.url, session_id=link.session_id, amount=link.amount, currency=link.currency,
                            expires_at=link.expires_at, reused=link.reused,
                            invoice_url=studio.links.page_url(tenant, invoice_id))
