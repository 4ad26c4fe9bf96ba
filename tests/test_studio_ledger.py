"""The studio's ledger: payments and refunds on an invoice, its balance and status, on the real
warehouse (SQLite, and PostgreSQL when DATABASE_URL names one)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from studio import ledger
from tests.studio_pay_world import invoice_row, make_invoice, make_studio
from warehouse.tables.studio import studio_activity_logs, studio_payments

D = Decimal


def pay(engine, tenant_id, invoice_id, amount, **kw):
    kw = {"kind": ledger.PAYMENT, "method": "BANK_TRANSFER", "currency": "AUD", "actor_kind": "staff", **kw}
    with engine.begin() as conn:
        return ledger.record(conn, tenant_id, invoice_id, amount=D(amount), **kw)


@pytest.fixture
def studio(engine, tenant_id):
    return make_studio(engine, tenant_id)


def test_payments_move_the_balance_and_status_and_a_refund_reopens_it(engine, studio):
    invoice_id = make_invoice(engine, studio)  # 2 × 50.00 + GST = 110.00
    assert invoice_row(engine, studio.tenant_id, invoice_id)["balance_due"] == D("110.00")

    first = pay(engine, studio.tenant_id, invoice_id, "40.00", reference="NAB-1")
    assert first.created and first.invoice["status"] == "partially_paid"
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["amount_paid"], row["balance_due"], row["status"], row["paid_at"]) == \
        (D("40.00"), D("70.00"), "partially_paid", None)

    pay(engine, studio.tenant_id, invoice_id, "70.00", method="CASH")
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["amount_paid"], row["balance_due"], row["status"]) == (D("110.00"), D("0"), "paid")
    assert row["paid_at"] is not None and row["revision"] == 3  # each change is a new revision of the PDF

    pay(engine, studio.tenant_id, invoice_id, "30.00", kind=ledger.REFUND, method="STRIPE", processor_id="re_1",
        money_moved=True, actor_kind="stripe")
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["amount_paid"], row["amount_refunded"], row["balance_due"], row["status"], row["paid_at"]) == \
        (D("110.00"), D("30.00"), D("30.00"), "partially_paid", None)
    with engine.connect() as conn:
        actions = conn.execute(sa.select(studio_activity_logs.c.action).where(
            studio_activity_logs.c.tenant_id == studio.tenant_id).order_by(studio_activity_logs.c.id)).scalars().all()
    assert actions == ["payment_recorded", "partially_paid", "payment_recorded", "paid", "refund_recorded",
                       "partially_paid"]


def test_a_payment_above_the_balance_is_refused_with_a_clear_error(engine, studio):
    invoice_id = make_invoice(engine, studio)
    pay(engine, studio.tenant_id, invoice_id, "100.00", method="CASH")
    with pytest.raises(ledger.Overpayment) as refused:
        pay(engine, studio.tenant_id, invoice_id, "10.01", method="CASH")
    assert "10.01 AUD is more than the balance due of 10.00 AUD" in refused.value.detail
    assert invoice_row(engine, studio.tenant_id, invoice_id)["balance_due"] == D("10.00")


@pytest.mark.parametrize("amount,error", [("0", ledger.InvalidAmount), ("-5.00", ledger.InvalidAmount),
                                          ("1.005", ledger.InvalidAmount)])
def test_amounts_must_be_positive_cents(engine, studio, amount, error):
    invoice_id = make_invoice(engine, studio)
    with pytest.raises(error):
        pay(engine, studio.tenant_id, invoice_id, amount, method="CASH")


def test_currency_must_match_and_drafts_and_void_invoices_take_no_manual_payment(engine, studio):
    invoice_id = make_invoice(engine, studio)
    with pytest.raises(ledger.CurrencyMismatch):
        pay(engine, studio.tenant_id, invoice_id, "10.00", method="CASH", currency="USD")
    for status in ("draft", "void"):
        other = make_invoice(engine, studio, status=status)
        with pytest.raises(ledger.NotPayable):
            pay(engine, studio.tenant_id, other, "10.00", method="CASH")
    with pytest.raises(ledger.InvoiceNotFound):
        pay(engine, studio.tenant_id, 10**12, "10.00", method="CASH")
    with pytest.raises(ledger.InvoiceNotFound):  # another tenant's invoice is no invoice of this one
        pay(engine, studio.tenant_id + "-other", invoice_id, "10.00", method="CASH")


def test_stripe_money_is_recorded_once_by_its_processor_id_even_above_the_balance(engine, studio):
    invoice_id = make_invoice(engine, studio)
    kw = dict(method="STRIPE", processor_id="pi_1", reference="cs_1", money_moved=True, actor_kind="stripe")
    assert pay(engine, studio.tenant_id, invoice_id, "110.00", **kw).created
    again = pay(engine, studio.tenant_id, invoice_id, "110.00", **kw)
    assert not again.created and again.payment["processor_id"] == "pi_1"
    # money that has already moved is recorded whatever the balance: a credit the studio owes
    over = pay(engine, studio.tenant_id, invoice_id, "5.00", method="STRIPE", processor_id="pi_2",
               money_moved=True, actor_kind="stripe")
    assert over.invoice["balance_due"] == D("-5.00") and over.invoice["status"] == "paid"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(studio_payments).where(
            studio_payments.c.tenant_id == studio.tenant_id)).scalar_one() == 2


def test_a_manual_payment_is_recorded_once_by_method_and_reference(engine, studio):
    invoice_id = make_invoice(engine, studio)
    assert pay(engine, studio.tenant_id, invoice_id, "50.00", reference="NAB 77").created
    again = pay(engine, studio.tenant_id, invoice_id, "50.00", reference="NAB 77")
    assert not again.created and again.invoice["balance_due"] == D("60.00")


def test_concurrent_manual_payments_never_overpay(engine, studio):
    """Eight staff record 30.00 each at once on a 110.00 invoice: three fit, the rest are refused."""
    invoice_id = make_invoice(engine, studio)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def one(n: int) -> None:
        barrier.wait()
        try:
            results.append(pay(engine, studio.tenant_id, invoice_id, "30.00", method="CASH", reference=f"r{n}"))
        except ledger.Overpayment as exc:
            results.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(isinstance(r, ledger.Recorded) for r in results) == 3
    assert sum(isinstance(r, ledger.Overpayment) for r in results) == 5
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["amount_paid"], row["balance_due"], row["status"]) == (D("90.00"), D("20.00"), "partially_paid")
