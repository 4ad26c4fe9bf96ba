"""Clients, quotes and invoices through the studio's staff and client-portal routes: the state
machines, conversion, the date-derived states, revisions, the activity log, messages, and who may
see and do what (on SQLite, and PostgreSQL when DATABASE_URL names it)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.people_world import client
from tests.studio_world import items, make_studio
from warehouse.tables.studio import studio_invoices, studio_quotes
from warehouse.types import now_utc


@pytest.fixture
def world(engine, warehouse_url, tenant_id):
    studio = make_studio(engine, tenant_id)
    with client(engine, warehouse_url) as c:
        def as_(role: str) -> dict:
            return {"Authorization": f"Bearer {studio.keys[role]}"}
        yield c, studio, as_


def problem(answer, status: int, kind: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"].endswith("/" + kind), body
    return body


def test_a_quote_from_draft_to_accepted_then_converted_to_an_invoice(world, engine):
    c, s, as_ = world
    base, owner = f"/studios/{s.tenant}", as_("tenant_owner")
    made = c.post(f"{base}/quotes", headers=owner, json={"client_id": s.client_id, "items": [
        {"description": "PETG bracket", "quantity": "3", "unit_price": "12.345", "discount_percent": "10"},
        {"description": "Design time", "quantity": "1.5", "unit_price": "80", "tax_rate": "0"}]})
    assert made.status_code == 201, made.text
    quote = made.json()
    assert quote["document_number"] == "Q-0001" and quote["status"] == "draft" and quote["revision"] == 1
    assert [i["line_total"] for i in quote["items"]] == ["36.67", "120.00"]
    assert (quote["subtotal"], quote["discount_total"], quote["tax_total"], quote["total"]) == \
        ("157.04", "3.70", "3.33", "156.67")

    edited = c.patch(f"{base}/quotes/{quote['id']}", headers=owner, json={"items": items("100.00"), "notes": "rush"})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["total"], edited.json()["notes"], edited.json()["revision"]) == ("110.00", "rush", 2)

    # The client sees nothing of a draft, and cannot answer it.
    assert c.get(f"{base}/portal/quotes", headers=as_("customer")).json()["items"] == []
    problem(c.post(f"{base}/portal/quotes/{quote['id']}/accept", headers=as_("customer")), 404, "quote-not-found")

    sent = c.post(f"{base}/quotes/{quote['id']}/send", headers=owner).json()
    assert sent["status"] == "sent" and sent["sent_at"] and sent["revision"] == 3
    assert sent["valid_until"] == str(dt.date.fromisoformat(sent["issue_date"]) + dt.timedelta(days=30))
    problem(c.patch(f"{base}/quotes/{quote['id']}", headers=owner, json={"notes": "x"}), 409, "invalid-transition")
    problem(c.post(f"{base}/quotes/{quote['id']}/convert", headers=owner), 409, "invalid-transition")

    # Another client cannot see or answer it; its own client can.
    problem(c.get(f"{base}/portal/quotes/{quote['id']}", headers=as_("other_customer")), 404, "quote-not-found")
    problem(c.post(f"{base}/portal/quotes/{quote['id']}/accept", headers=as_("other_customer")), 404,
            "quote-not-found")
    assert [q["id"] for q in c.get(f"{base}/portal/quotes", headers=as_("customer")).json()["items"]] == [quote["id"]]
    accepted = c.post(f"{base}/portal/quotes/{quote['id']}/accept", headers=as_("customer"))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
    assert c.post(f"{base}/portal/quotes/{quote['id']}/accept", headers=as_("customer")).json()["revision"] == 4
    problem(c.post(f"{base}/portal/quotes/{quote['id']}/decline", headers=as_("customer")), 409, "invalid-transition")

    converted = c.post(f"{base}/quotes/{quote['id']}/convert", headers=owner)
    assert converted.status_code == 201, converted.text
    invoice = converted.json()["invoice"]
    assert converted.json()["created"] is True
    assert invoice["document_number"] == "INV-0001" and invoice["status"] == "draft"
    assert invoice["quote_id"] == quote["id"] and invoice["total"] == "110.00" and invoice["notes"] == "rush"
    assert [(i["description"], i["line_total"]) for i in invoice["items"]] == [("Part 1", "110.00")]
    again = c.post(f"{base}/quotes/{quote['id']}/convert", headers=owner)
    assert again.status_code == 200 and again.json() == {"created": False, "invoice": invoice}
    assert c.get(f"{base}/quotes/{quote['id']}", headers=owner).json()["invoice_id"] == invoice["id"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(studio_invoices.c.tenant_id == s.tenant)).scalar() == 1

    log = c.get(f"{base}/quotes/{quote['id']}/activity", headers=as_("viewer")).json()
    assert [e["action"] for e in log] == ["created", "updated", "sent", "accepted", "converted"]
    assert [e["actor_kind"] for e in log] == ["staff", "staff", "staff", "client", "staff"]
    assert log[0]["actor_id"] and log[3]["actor_id"] and log[0]["actor_id"] != log[3]["actor_id"]


def test_a_quote_for_nothing_is_not_sent(world, engine):
    """Its invoice could never be issued (``invoice-empty``), so the quote is refused first."""
    c, s, as_ = world
    base, owner = f"/studios/{s.tenant}", as_("tenant_owner")
    empty = c.post(f"{base}/quotes", headers=owner, json={"client_id": s.client_id}).json()
    refused = problem(c.post(f"{base}/quotes/{empty['id']}/send", headers=owner), 409, "quote-empty")
    assert "add a priced line" in refused["detail"]
    assert c.get(f"{base}/quotes/{empty['id']}", headers=owner).json()["status"] == "draft"
    problem(c.post(f"{base}/quotes/{empty['id']}/accept", headers=owner), 409, "invalid-transition")
    c.patch(f"{base}/quotes/{empty['id']}", headers=owner, json={"items": items("20.00")})
    assert c.post(f"{base}/quotes/{empty['id']}/send", headers=owner).json()["status"] == "sent"


def test_an_invoice_is_issued_sent_voided_and_never_voided_once_paid(world, engine):
    c, s, as_ = world
    base, owner = f"/studios/{s.tenant}", as_("tenant_owner")
    empty = c.post(f"{base}/invoices", headers=owner, json={"client_id": s.client_id}).json()
    problem(c.post(f"{base}/invoices/{empty['id']}/issue", headers=owner), 409, "invoice-empty")
    inv = c.post(f"{base}/invoices", headers=owner, json={"client_id": s.client_id, "items": items("50.00")}).json()
    assert inv["document_number"] == "INV-0002" and inv["balance_due"] == "55.00"
    assert c.get(f"{base}/portal/invoices", headers=as_("customer")).json()["items"] == []  # a draft

    sent = c.post(f"{base}/invoices/{inv['id']}/send", headers=owner).json()
    assert sent["status"] == "issued" and sent["sent_at"] and sent["issued_at"]
    assert sent["due_date"] == str(dt.date.fromisoformat(sent["issue_date"]) + dt.timedelta(days=14))
    assert c.get(f"{base}/portal/invoices/{inv['id']}", headers=as_("customer")).json()["balance_due"] == "55.00"
    problem(c.get(f"{base}/portal/invoices/{inv['id']}", headers=as_("other_customer")), 404, "invoice-not-found")
    problem(c.patch(f"{base}/invoices/{inv['id']}", headers=owner, json={"notes": "x"}), 409, "invalid-transition")

    paid = c.post(f"{base}/invoices", headers=owner, json={"client_id": s.client_id, "items": items("10")}).json()
    c.post(f"{base}/invoices/{paid['id']}/issue", headers=owner)
    with engine.begin() as conn:  # what studio.ledger does when the payment arrives
        conn.execute(sa.update(studio_invoices).where(studio_invoices.c.id == paid["id"])
                     .values(status="paid", amount_paid=11, balance_due=0))
    refused = problem(c.post(f"{base}/invoices/{paid['id']}/void", headers=owner, json={}), 409, "invoice-has-payments")
    assert refused["status_now"] == "paid" and refused["amount_paid"] == "11.00"
    assert refused["detail"] == (f"Invoice {paid['document_number']} has taken 11.00 AUD in payments: an invoice that "
                                 "has taken money cannot be voided.")
    problem(c.post(f"{base}/invoices/{paid['id']}/send", headers=owner), 409, "invalid-transition")
    with engine.begin() as conn:  # partly paid: the same refusal, not "partially_paid cannot be voided"
        conn.execute(sa.update(studio_invoices).where(studio_invoices.c.id == paid["id"])
                     .values(status="partially_paid", amount_paid=5, balance_due=6))
    refused = problem(c.post(f"{base}/invoices/{paid['id']}/void", headers=owner, json={}), 409, "invoice-has-payments")
    assert refused["status_now"] == "partially_paid" and "has taken 5.00 AUD" in refused["detail"]

    voided = c.post(f"{base}/invoices/{inv['id']}/void", headers=owner, json={"reason": "duplicate"})
    assert voided.status_code == 200 and voided.json()["status"] == "void" and voided.json()["balance_due"] == "0.00"
    assert c.post(f"{base}/invoices/{inv['id']}/void", headers=owner, json={}).json() == voided.json()
    log = c.get(f"{base}/invoices/{inv['id']}/activity", headers=owner).json()
    assert [e["action"] for e in log] == ["created", "issued", "sent", "voided"]
    assert log[-1]["detail"] == {"status": "void", "reason": "duplicate"}
    assert [e["revision"] for e in (inv, sent, voided.json())] == [1, 3, 4]


def test_expired_and_overdue_follow_the_calendar_in_reads_and_filters(world, engine):
    c, s, as_ = world
    base, owner = f"/studios/{s.tenant}", as_("tenant_owner")
    quote = c.post(f"{base}/quotes", headers=owner, json={"client_id": s.client_id, "items": items("5")}).json()
    c.post(f"{base}/quotes/{quote['id']}/send", headers=owner)
    invoice = c.post(f"{base}/invoices", headers=owner, json={"client_id": s.client_id, "items": items("5")}).json()
    c.post(f"{base}/invoices/{invoice['id']}/issue", headers=owner)
    today = now_utc().date()
    with engine.begin() as conn:
        conn.execute(sa.update(studio_quotes).where(studio_quotes.c.id == quote["id"])
                     .values(valid_until=today - dt.timedelta(days=1)))
        conn.execute(sa.update(studio_invoices).where(studio_invoices.c.id == invoice["id"]).values(due_date=today))
    assert c.get(f"{base}/invoices/{invoice['id']}", headers=owner).json()["status"] == "issued"  # due today: not yet
    with engine.begin() as conn:
        conn.execute(sa.update(studio_invoices).where(studio_invoices.c.id == invoice["id"])
                     .values(due_date=today - dt.timedelta(days=1)))

    shown = c.get(f"{base}/quotes/{quote['id']}", headers=owner).json()
    assert (shown["status"], shown["stored_status"]) == ("expired", "sent")
    assert [q["id"] for q in c.get(f"{base}/quotes", params={"status": "expired"}, headers=owner).json()["items"]] \
        == [quote["id"]]
    assert c.get(f"{base}/quotes", params={"status": "sent"}, headers=owner).json()["items"] == []
    problem(c.post(f"{base}/portal/quotes/{quote['id']}/accept", headers=as_("customer")), 409, "quote-expired")
    problem(c.post(f"{base}/quotes/{quote['id']}/send", headers=owner), 409, "invalid-transition")

    assert c.get(f"{base}/invoices/{invoice['id']}", headers=owner).json()["status"] == "overdue"
    assert [i["id"] for i in c.get(f"{base}/invoices", params={"status": "overdue"}, headers=owner).json()["items"]] \
        == [invoice["id"]]
    assert c.get(f"{base}/portal/invoices", headers=as_("customer")).json()["items"][0]["status"] == "overdue"
    assert c.post(f"{base}/invoices/{invoice['id']}/void", headers=owner, json={}).json()["status"] == "void"


def test_messages_between_staff_and_their_client_only(world):
    c, s, as_ = world
    base, owner = f"/studios/{s.tenant}", as_("tenant_owner")
    quote = c.post(f"{base}/quotes", headers=owner, json={"client_id": s.client_id, "items": items("5")}).json()
    url = f"{base}/quotes/{quote['id']}/messages"
    assert c.post(url, headers=owner, json={"body": "Draft note to self?"}).status_code == 201
    problem(c.get(f"{base}/portal/quotes/{quote['id']}/messages", headers=as_("customer")), 404, "quote-not-found")
    c.post(f"{base}/quotes/{quote['id']}/send", headers=owner)
    asked = c.post(f"{base}/portal/quotes/{quote['id']}/messages", headers=as_("customer"),
                   json={"body": "Can it be blue?"})
    assert asked.status_code == 201 and asked.json()["author_kind"] == "client", asked.text
    assert c.post(url, headers=owner, json={"body": "Yes, same price."}).status_code == 201
    thread = c.get(f"{base}/portal/quotes/{quote['id']}/messages", headers=as_("customer")).json()
    assert [(m["author_kind"], m["body"]) for m in thread][1:] == [("client", "Can it be blue?"),
                                                                   ("staff", "Yes, same price.")]
    problem(c.get(f"{base}/portal/quotes/{quote['id']}/messages", headers=as_("other_customer")), 404,
            "quote-not-found")
    problem(c.post(url, headers=owner, json={"body": "   "}), 422, "invalid-message")
    assert c.post(f"{base}/invoices/{quote['id']}/messages", headers=owner, json={"body": "x"}).status_code == 404
    assert c.post(url, headers=owner, json={"body": "a\u0000b"}).status_code == 422


def test_who_may_do_what_and_nothing_crosses_studios(world, engine, tenant_id):
    c, s, as_ = world
    base = f"/studios/{s.tenant}"
    other = make_studio(engine, f"{tenant_id}-2", roles=("tenant_owner",))
    theirs = c.post(f"/studios/{other.tenant}/quotes", headers={"Authorization": f"Bearer {other.keys['tenant_owner']}"},
                    json={"client_id": other.client_id, "items": items("9")}).json()
    owner, viewer, nurse, customer = (as_(r) for r in ("tenant_owner", "viewer", "nurse", "customer"))
    body = {"client_id": s.client_id, "items": items("1")}
    assert c.get(f"{base}/quotes", headers=viewer).status_code == 200
    problem(c.post(f"{base}/quotes", headers=viewer, json=body), 403, "forbidden")
    problem(c.get(f"{base}/quotes", headers=nurse), 403, "forbidden")
    problem(c.get(f"{base}/quotes", headers=customer), 403, "forbidden")  # the portal is theirs, not the staff routes
    problem(c.get(f"/studios/{other.tenant}/quotes", headers=owner), 403, "forbidden")
    problem(c.get(f"{base}/quotes/{theirs['id']}", headers=owner), 404, "quote-not-found")
    problem(c.post(f"{base}/quotes", headers=owner, json={**body, "client_id": other.client_id}), 404,
            "client-not-found")
    assert c.delete(f"{base}/clients/{s.other_client_id}", headers=owner).json()["archived_at"]
    problem(c.post(f"{base}/quotes", headers=owner, json={**body, "client_id": s.other_client_id}), 409,
            "client-archived")
    assert [x["id"] for x in c.get(f"{base}/clients", headers=viewer).json()["items"]] == [s.client_id]
    problem(c.post(f"{base}/quotes", headers=owner, json={**body, "items": [{"description": "x", "quantity": "0",
                                                                              "unit_price": "1"}]}), 422,
            "validation-error")
    business = c.put(f"{base}/business", headers=owner, json={"quote_prefix": "EST-", "gst_rate": "0.15"}).json()
    assert business["abn"] == "51 824 753 556" and business["gst_rate"] == "0.1500"
    made = c.post(f"{base}/quotes", headers=owner, json=body).json()
    assert made["document_number"] == "EST-0001" and made["tax_total"] == "0.15"
