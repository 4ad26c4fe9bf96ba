"""The demo studio: made once (a second run changes nothing), documents in different states, and
its owner and client can sign in and see them through the API."""

import sqlalchemy as sa
import stripe

from storehouse.demo_people import PASSWORD
from storehouse.demo_studio import STUDIO, demo_studio
from resources.stripe import webhook_secrets
from studio.business import get_business
from tests.people_world import bearer, client, sign_in
from warehouse.tables.studio import studio_invoices, studio_quotes
from warehouse.tenants import get_connection


def counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).where(t.c.tenant_id == STUDIO)).scalar_one()
                     for t in (studio_quotes, studio_invoices))


def test_the_demo_studio_is_made_once_and_shows_its_documents(engine, warehouse_url, sandbox_reset):
    lines = demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url)
    made = counts(engine)
    assert demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url) == lines
    assert counts(engine) == made == (4, 6)
    with engine.connect() as conn:
        business = get_business(conn, STUDIO)
    assert (business["currency"], business["abn"], str(business["gst_rate"])) == ("AUD", "51 824 753 556", "0.1000")
    assert business["bank_bsb"] and business["bank_account"]
    with client(engine, warehouse_url) as c:
        owner = bearer(sign_in(c, f"owner@{STUDIO}.demo", PASSWORD)["access_token"])
        shown = {q["status"] for q in c.get(f"/studios/{STUDIO}/quotes", headers=owner).json()["items"]}
        assert shown == {"draft", "sent", "declined", "accepted"}
        shown = {i["status"] for i in c.get(f"/studios/{STUDIO}/invoices", headers=owner).json()["items"]}
        assert shown == {"draft", "issued", "overdue", "void", "paid", "partially_paid"}
        money = {i["status"]: (i["amount_paid"], i["balance_due"]) for i in
                 c.get(f"/studios/{STUDIO}/invoices", headers=owner).json()["items"]}
        assert money["paid"][1] == "0.00" and money["paid"][0] != "0.00"  # through the ledger
        assert money["partially_paid"][0] == "150.00" and money["partially_paid"][1] != "0.00"
        me = bearer(sign_in(c, f"client@{STUDIO}.demo", PASSWORD)["access_token"])
        mine = c.get(f"/studios/{STUDIO}/portal/quotes", headers=me).json()["items"]
        assert {q["status"] for q in mine} == {"sent", "accepted"}  # Mia's, and no draft
        assert any(line.startswith("customer") for line in lines)


def test_the_demo_studio_can_take_payments_and_send_email(engine, sandbox_reset):
    """Its Stripe account has one webhook endpoint at the API (a demo run again replaces it) and
    that endpoint's signing secret stored, and it has a Resend account to email from."""
    for _ in range(2):
        demo_studio(engine, "http://127.0.0.1:8000", sandbox_reset.url)
    with engine.connect() as conn:
        stripe_account, resend = (get_connection(conn, STUDIO, s) for s in ("stripe", "resend"))
    assert stripe_account is not None and resend is not None
    assert stripe_account.base_url == f"{sandbox_reset.url}/stripe" and resend.base_url == f"{sandbox_reset.url}/resend"
    account = stripe.StripeClient(stripe_account.credentials["secret_key"],
                                  base_addresses={"api": stripe_account.base_url})
    endpoints = account.v1.webhook_endpoints.list(params={"limit": 100}).data
    assert [e.url for e in endpoints] == [f"http://127.0.0.1:8000/studios/{STUDIO}/webhooks/stripe"]
    assert len(webhook_secrets(stripe_account)) == 1  # the replaced endpoint's secret is gone
