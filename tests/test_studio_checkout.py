"""Paying a studio invoice through the sandbox's Stripe: the seed's Checkout Session, reused while
open and the balance unchanged, one session for concurrent clicks; and the staff's and client's
payment routes (manual payments, overpayment refused, who may do what)."""

from __future__ import annotations

import threading
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from people.users import create_user, grant
from studio import ledger
from studio.activity import Actor
from studio.business import save_business
from tests.api_storefront import settings_for
from tests.people_world import PASSWORD, PASSWORDS, bearer, sign_in
from tests.studio_pay_world import invoice_row, make_invoice, make_studio
from warehouse.tables.core import tenant_connections
from warehouse.tables.studio import studio_invoices
from warehouse.tenants import add_tenant

D = Decimal


@pytest.fixture
def app(warehouse_url, engine):
    return create_app(settings_for(warehouse_url, 8000, worker_enabled=False), engine)


@pytest.fixture
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def people(engine, tenant_id):
    """A super admin, a studio admin, a viewer, and a client with their own sign-in."""
    emails = {}
    with engine.begin() as conn:
        for who in ("admin", "owner", "viewer", "ada", "bob"):
            emails[who] = f"{who}@{tenant_id}.test"
        create_user(conn, PASSWORDS, emails["admin"], "Admin", PASSWORD, super_admin=True)
        ids = {who: create_user(conn, PASSWORDS, emails[who], who, PASSWORD) for who in ("owner", "viewer", "ada", "bob")}
    return emails, ids


@pytest.fixture
def studio(engine, tenant_id, sandbox_reset, people):
    emails, ids = people
    found = make_studio(engine, tenant_id, sandbox_reset.url, client_user_id=ids["ada"])
    with engine.begin() as conn:
        grant(conn, ids["owner"], tenant_id, "tenant_owner")
        grant(conn, ids["viewer"], tenant_id, "viewer")
        grant(conn, ids["ada"], tenant_id, "customer", customer_id=str(found.client_id))
        grant(conn, ids["bob"], tenant_id, "customer", customer_id="999999")
    return found


def headers(client, people, who: str) -> dict:
    return bearer(sign_in(client, people[0][who])["access_token"])


def checkout(client, studio, invoice_id: int, hdrs: dict):
    return client.post(f"/studios/{studio.tenant_id}/invoices/{invoice_id}/checkout", headers=hdrs)


def test_the_session_is_the_seeds_and_is_reused_while_open_and_the_balance_unchanged(client, app, engine, studio,
                                                                                    people):
    invoice_id = make_invoice(engine, studio)
    owner = headers(client, people, "owner")
    first = checkout(client, studio, invoice_id, owner)
    assert first.status_code == 200, first.text
    link = first.json()
    assert not link["reused"] and link["amount"] == "110.00" and link["currency"] == "AUD"  # cents, as invoices
    session = studio.stripe().v1.checkout.sessions.retrieve(link["session_id"], params={"expand": ["line_items"]})
    assert session.mode == "payment" and session.payment_method_types == ["card"]
    assert session.amount_total == 11000 and session.currency == "aud" and session.url == link["url"]
    assert session.metadata.to_dict() == {"invoiceId": str(invoice_id), "invoiceNumber": "INV-0001",
                                          "tenant_id": studio.tenant_id}
    (item,) = session.line_items.data
    assert (item.description, item.quantity, item.price.unit_amount) == ("Invoice INV-0001", 1, 11000)
    page = app.state.studio_payments.links.page_url(studio.tenant_id, invoice_id)
    assert session.cancel_url == page == link["invoice_url"]
    assert session.success_url == page + "&session_id={CHECKOUT_SESSION_ID}"
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["stripe_checkout_session_id"], row["stripe_checkout_url"], row["stripe_checkout_amount"]) == \
        (link["session_id"], link["url"], D("110.00"))
    assert row["stripe_checkout_expires_at"] is not None

    again = checkout(client, studio, invoice_id, owner).json()
    assert again["reused"] and again["session_id"] == link["session_id"]

    # a bank transfer changes the balance: a new session for what is left, and the old one can no longer pay
    paid = client.post(f"/studios/{studio.tenant_id}/invoices/{invoice_id}/payments", headers=owner,
                       json={"method": "BANK_TRANSFER", "amount": "10.00", "reference": "CBA 42"})
    assert paid.status_code == 201, paid.text
    # the session for the old balance is expired at once, and forgotten
    assert studio.stripe().v1.checkout.sessions.retrieve(link["session_id"]).status == "expired"
    assert invoice_row(engine, studio.tenant_id, invoice_id)["stripe_checkout_session_id"] is None
    renewed = checkout(client, studio, invoice_id, owner).json()
    assert renewed["session_id"] != link["session_id"] and D(renewed["amount"]) == D("100.00")
    assert not renewed["reused"]
    assert studio.stripe().v1.checkout.sessions.retrieve(link["session_id"]).status == "expired"

    # expired at Stripe (by Stripe, say): a new one, not the dead link
    httpx.post(f"{studio.sandbox}/_sandbox/stripe/checkout/sessions/{renewed['session_id']}/expire").raise_for_status()
    third = checkout(client, studio, invoice_id, owner).json()
    assert third["session_id"] not in (link["session_id"], renewed["session_id"]) and not third["reused"]


def test_two_clicks_at_once_make_one_session(app, engine, studio):
    invoice_id = make_invoice(engine, studio)
    service = app.state.studio_payments.checkout
    connection = app.state.services.storefronts.get(studio.tenant_id).connection("stripe")
    links, barrier = [], threading.Barrier(6)

    def click() -> None:
        barrier.wait()
        links.append(service.link(studio.tenant_id, invoice_id, connection))

    threads = [threading.Thread(target=click) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(links) == 6 and len({link.session_id for link in links}) == 1
    sessions = studio.stripe().v1.checkout.sessions.list(params={"limit": 100}).data
    assert [s.id for s in sessions] == [links[0].session_id]
    assert invoice_row(engine, studio.tenant_id, invoice_id)["stripe_checkout_session_id"] == links[0].session_id


def test_a_session_paid_before_its_webhook_is_applied_not_handed_out_again(app, engine, studio):
    invoice_id = make_invoice(engine, studio)
    service = app.state.studio_payments.checkout
    connection = app.state.services.storefronts.get(studio.tenant_id).connection("stripe")
    link = service.link(studio.tenant_id, invoice_id, connection)
    httpx.post(f"{studio.sandbox}/_sandbox/stripe/checkout/sessions/{link.session_id}/pay", json={}).raise_for_status()
    with pytest.raises(ledger.NotPayable):
        service.link(studio.tenant_id, invoice_id, connection)
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["status"], row["balance_due"], row["stripe_checkout_session_id"]) == ("paid", D("0"), None)


def test_nothing_to_pay_and_no_stripe_are_conflicts(client, engine, studio, people, tenant_id):
    owner = headers(client, people, "owner")
    for status in ("draft", "void", "paid"):
        invoice_id = make_invoice(engine, studio, status=status)
        answer = checkout(client, studio, invoice_id, owner)
        assert answer.status_code == 409 and answer.json()["type"].endswith("/invoice-not-payable"), answer.text
    assert checkout(client, studio, 10**12, owner).status_code == 404
    invoice_id = make_invoice(engine, studio)
    with engine.begin() as conn:
        conn.execute(sa.delete(tenant_connections).where(tenant_connections.c.tenant_id == tenant_id))
    client.app.state.services.storefronts.forget(tenant_id)
    answer = checkout(client, studio, invoice_id, owner)
    assert answer.status_code == 409 and answer.json()["type"].endswith("/studio-cannot-take-payments")


def test_staff_record_manual_payments_never_above_the_balance(client, engine, studio, people):
    invoice_id = make_invoice(engine, studio)
    owner = headers(client, people, "owner")
    url = f"/studios/{studio.tenant_id}/invoices/{invoice_id}/payments"
    first = client.post(url, headers=owner, json={"method": "CASH", "amount": "60.00", "note": "at the counter"})
    assert first.status_code == 201, first.text
    assert first.json()["invoice"]["status"] == "partially_paid" and D(first.json()["invoice"]["balance_due"]) == 50
    over = client.post(url, headers=owner, json={"method": "CASH", "amount": "50.01"})
    assert over.status_code == 422 and over.json()["type"].endswith("/payment-exceeds-balance")
    assert "50.01 AUD is more than the balance due of 50.00 AUD" in over.json()["detail"]
    wrong = client.post(url, headers=owner, json={"method": "CASH", "amount": "5.00", "currency": "USD"})
    assert wrong.status_code == 422 and wrong.json()["type"].endswith("/currency-mismatch")
    no_ref = client.post(url, headers=owner, json={"method": "BANK_TRANSFER", "amount": "5.00"})
    assert no_ref.status_code == 422 and "reference" in no_ref.text
    body = {"method": "BANK_TRANSFER", "amount": "50.00", "reference": "WBC 9"}
    done = client.post(url, headers=owner, json=body)
    assert done.status_code == 201 and done.json()["invoice"]["status"] == "paid"
    replay = client.post(url, headers=owner, json=body)
    assert replay.status_code == 200 and replay.json()["payment"]["id"] == done.json()["payment"]["id"]
    # money in cents, as the invoice views show it
    assert (done.json()["payment"]["amount"], done.json()["invoice"]["total"]) == ("50.00", "110.00")
    assert (done.json()["invoice"]["amount_paid"], done.json()["invoice"]["amount_refunded"]) == ("110.00", "0.00")
    listed = client.get(url, headers=owner).json()
    assert [(p["method"], p["amount"]) for p in listed["payments"]] == [("CASH", "60.00"), ("BANK_TRANSFER", "50.00")]
    assert listed["invoice"]["balance_due"] == "0.00"
    assert listed["payments"][0]["recorded_by"] == people[1]["owner"]
    assert listed["invoice"]["status"] == "paid" and D(listed["invoice"]["balance_due"]) == 0


def test_who_may_do_what(client, engine, studio, people):
    invoice_id = make_invoice(engine, studio)
    url = f"/studios/{studio.tenant_id}/invoices/{invoice_id}"
    body = {"method": "CASH", "amount": "1.00"}
    ada, bob, viewer = (headers(client, people, w) for w in ("ada", "bob", "viewer"))
    assert client.post(f"{url}/payments", json=body).status_code == 401
    for who in (ada, bob, viewer):  # only staff record payments
        assert client.post(f"{url}/payments", headers=who, json=body).status_code == 403
    # the invoice's own client may make its payment link and read its payments; another client may not
    assert checkout(client, studio, invoice_id, ada).status_code == 200
    assert client.get(f"{url}/payments", headers=ada).status_code == 200
    assert checkout(client, studio, invoice_id, bob).status_code == 403
    assert client.get(f"{url}/payments", headers=bob).status_code == 403
    assert client.get(f"{url}/payments", headers=viewer).status_code == 403
    # a draft is not the client's yet
    draft = make_invoice(engine, studio, status="draft")
    assert client.get(f"/studios/{studio.tenant_id}/invoices/{draft}/payments", headers=ada).status_code == 403
    # staff of one studio are nobody on another; a tenant that is no studio has no studio routes
    admin = headers(client, people, "admin")
    other = client.get(f"/studios/{studio.tenant_id}-x/invoices/{invoice_id}/payments",
                       headers=headers(client, people, "owner"))
    assert other.status_code == 404 and other.json()["type"].endswith("/studio-not-found")
    with engine.begin() as conn:
        add_tenant(conn, f"{studio.tenant_id}-x", "Another studio")
        save_business(conn, f"{studio.tenant_id}-x", Actor("system"), name="Another studio")
    assert client.get(f"/studios/{studio.tenant_id}-x/invoices/{invoice_id}/payments",
                      headers=headers(client, people, "owner")).status_code == 403
    assert client.get(f"{url}/payments", headers=admin).status_code == 200
    with engine.connect() as conn:
        assert conn.execute(sa.select(studio_invoices.c.amount_paid).where(
            studio_invoices.c.id == invoice_id)).scalar_one() == 0


def test_a_reference_used_again_for_another_amount_is_a_conflict_naming_the_first(client, engine, studio, people):
    invoice_id = make_invoice(engine, studio)
    owner = headers(client, people, "owner")
    url = f"/studios/{studio.tenant_id}/invoices/{invoice_id}/payments"
    first = client.post(url, headers=owner, json={"method": "BANK_TRANSFER", "amount": "20.00", "reference": "CBA 1"})
    assert first.status_code == 201, first.text
    paid_id = first.json()["payment"]["id"]
    other = client.post(url, headers=owner, json={"method": "BANK_TRANSFER", "amount": "30.00", "reference": "CBA 1"})
    assert other.status_code == 409 and other.json()["type"].endswith("/payment-reference-reused"), other.text
    assert f"Payment {paid_id} " in other.json()["detail"] and "20.00 AUD" in other.json()["detail"]
    same = client.post(url, headers=owner, json={"method": "BANK_TRANSFER", "amount": "20", "reference": "CBA 1"})
    assert same.status_code == 200 and same.json()["payment"]["id"] == paid_id  # a retry: the first, unchanged
    assert D(same.json()["invoice"]["balance_due"]) == 90
    other_method = client.post(url, headers=owner, json={"method": "CASH", "amount": "30.00", "reference": "CBA 1"})
    assert other_method.status_code == 201  # the reference is the method's own


def test_a_control_character_in_a_payments_texts_is_refused_on_every_warehouse(client, engine, studio, people):
    """A NUL is refused (422) before the warehouse sees it: PostgreSQL cannot store one, SQLite would."""
    invoice_id = make_invoice(engine, studio)
    owner = headers(client, people, "owner")
    url = f"/studios/{studio.tenant_id}/invoices/{invoice_id}/payments"
    for body in ({"method": "CASH", "amount": "5.00", "reference": "R\x001"},
                 {"method": "CASH", "amount": "5.00", "note": "at the\x00 counter"}):
        answer = client.post(url, headers=owner, json=body)
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", answer.text
    assert client.get(url, headers=owner).json()["payments"] == []
    ok = client.post(url, headers=owner, json={"method": "CASH", "amount": "5.00", "note": "line one\nline two"})
    assert ok.status_code == 201, ok.text
