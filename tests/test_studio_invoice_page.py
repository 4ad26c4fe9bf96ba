"""The studio client's invoice page in a real headless browser: open the emailed link, press Pay,
pay on the sandbox's hosted Stripe Checkout page, and land back on the same page showing it paid.

Chromium from Debian's packages and Playwright to drive it, as ``tests/test_order_page.py``; the
sandbox's Stripe delivers its webhooks over HTTP to the studio's endpoint of the API under test.
"""

from __future__ import annotations

import os
import shutil
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from tests.api_storefront import ApiThread, free_port, settings_for, wait_for
from tests.studio_pay_world import invoice_row, make_invoice, make_studio
from warehouse.tables.orders import webhook_events
from warehouse.tables.studio import studio_payments

CHROMIUM = os.environ.get("STOREHOUSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
IN_CI = os.environ.get("CI") == "true"
try:
    from playwright import sync_api
except ImportError:
    if IN_CI:
        raise
    pytest.skip("playwright is not installed (./dev setup installs it)", allow_module_level=True)
browser_only = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not IN_CI,
    reason=f"no chromium at {CHROMIUM}: `apt-get install chromium` to run the browser tests (CI installs it)")


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM) and not IN_CI:
        pytest.skip(f"no chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def api(warehouse_url, engine):
    with ApiThread(settings_for(warehouse_url, free_port()), engine) as server:
        yield server


@pytest.fixture
def studio(sandbox_reset, api, engine, tenant_id):
    return make_studio(engine, tenant_id, sandbox_reset.url, api.url)


def link(api, studio, invoice_id: int) -> str:
    return api.app.state.studio_payments.links.page_url(studio.tenant_id, invoice_id)


@browser_only
def test_the_client_pays_from_the_link_and_sees_the_invoice_paid(api, studio, engine, page):
    invoice_id = make_invoice(engine, studio, [("Bracket, PETG", "2", "50.00"), ("Enclosure, ASA", "1", "25.50")])
    url = link(api, studio, invoice_id)
    page.goto(url)
    assert page.locator("h1").inner_text() == "Invoice INV-0001"
    assert "Payment due" in page.locator("#status").inner_text()
    assert page.locator("#balance").inner_text() == "138.05 AUD"  # (100.00 + 25.50) + GST 12.55
    assert "Enclosure, ASA" in page.locator("table").inner_text()
    assert "3D Print Sydney Pty Ltd" in page.content() and "Ada Lovelace" in page.content()

    control = f"{studio.sandbox}/_sandbox/stripe"
    # Stripe's webhooks held back: the page must show the payment from the success redirect alone
    httpx.put(f"{control}/accounts/{studio.stripe_key}/delivery", json={"pause": True}).raise_for_status()
    page.get_by_role("button", name="Pay 138.05 AUD").click()
    page.wait_for_url(f"{studio.sandbox}/stripe/c/pay/*")  # the sandbox's hosted Checkout page
    assert "Invoice INV-0001" in page.content() and "138.05" in page.locator("h1").inner_text()
    page.get_by_role("button", name="Pay with 4242 4242 4242 4242").click()

    page.wait_for_url(url)  # back on the same page, at its own link (the session left out of it)
    assert page.locator("#status").get_attribute("data-status") == "paid"
    assert "Paid" in page.locator("#status").inner_text()
    assert page.locator("#balance").inner_text() == "0.00 AUD"
    assert page.get_by_role("button").count() == 0  # nothing left to pay
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["status"], row["amount_paid"], row["stripe_checkout_session_id"]) == ("paid", Decimal("138.05"), None)

    assert _outcome(engine, studio.tenant_id, "checkout.session.completed") is None  # no webhook yet

    # then the webhooks come (to the studio's endpoint), three times each: recorded once, the payment not doubled
    httpx.put(f"{control}/accounts/{studio.stripe_key}/delivery",
              json={"pause": False, "duplicates": 3, "concurrent": True}).raise_for_status()
    w = webhook_events.c
    wait_for(lambda: _outcome(engine, studio.tenant_id, "checkout.session.completed"), 20, "the studio's webhook")
    assert _outcome(engine, studio.tenant_id, "checkout.session.completed") == "unchanged"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(studio_payments).where(
            studio_payments.c.tenant_id == studio.tenant_id)).scalar_one() == 1
        assert conn.execute(sa.select(w.order_id).where(w.tenant_id == studio.tenant_id)).scalars().all() \
            == [None] * conn.execute(sa.select(sa.func.count()).select_from(webhook_events)
                                     .where(w.tenant_id == studio.tenant_id)).scalar_one()


def _outcome(engine, tenant_id: str, event_type: str) -> str | None:
    w = webhook_events.c
    with engine.connect() as conn:
        return conn.execute(sa.select(w.outcome).where(w.tenant_id == tenant_id, w.type == event_type)).scalar()


@browser_only
def test_going_back_from_checkout_and_paying_later_uses_the_same_session(api, studio, engine, page):
    invoice_id = make_invoice(engine, studio)
    url = link(api, studio, invoice_id)
    page.goto(url)
    page.get_by_role("button", name="Pay 110.00 AUD").click()
    page.wait_for_url(f"{studio.sandbox}/stripe/c/pay/*")
    first = page.url
    page.get_by_role("link", name="Back (cancel)").click()
    page.wait_for_url(url)
    assert page.locator("#status").get_attribute("data-status") == "issued"
    page.get_by_role("button", name="Pay 110.00 AUD").click()
    page.wait_for_url(f"{studio.sandbox}/stripe/c/pay/*")
    assert page.url == first


@browser_only
def test_a_wrong_or_missing_token_shows_nothing(api, studio, engine, page):
    invoice_id = make_invoice(engine, studio)
    draft = make_invoice(engine, studio, status="draft")
    good = link(api, studio, invoice_id)
    for url in (good.replace("token=", "token=x"), good.split("?")[0], link(api, studio, draft),
                link(api, studio, 10**9), good.replace(f"/studios/{studio.tenant_id}/", "/studios/nobody/")):
        response = page.goto(url)
        assert response.status == 404, url
        assert "cannot be shown" in page.locator("h1").inner_text()
        assert "INV-" not in page.content()
    # a stranger cannot post to the Pay button either
    answer = httpx.post(good.replace("?token=", "/pay?token=x"), follow_redirects=False)
    assert answer.status_code == 404 and "INV-" not in answer.text
    assert invoice_row(engine, studio.tenant_id, invoice_id)["stripe_checkout_session_id"] is None


def test_a_refund_made_at_stripe_restores_the_balance_through_the_webhook(api, studio, engine):
    """No browser: pay through the sandbox, refund twice with Stripe's API; the delivered events
    (shuffled, duplicated) leave the balance what was refunded."""
    invoice_id = make_invoice(engine, studio)
    httpx.put(f"{studio.sandbox}/_sandbox/stripe/accounts/{studio.stripe_key}/delivery",
              json={"duplicates": 2, "order": "shuffle", "hold_ms": 300, "concurrent": True}).raise_for_status()
    connection = api.services.storefronts.get(studio.tenant_id).connection("stripe")
    checkout = api.app.state.studio_payments.checkout.link(studio.tenant_id, invoice_id, connection)
    httpx.post(f"{studio.sandbox}/_sandbox/stripe/checkout/sessions/{checkout.session_id}/pay",
               json={}).raise_for_status()
    wait_for(lambda: invoice_row(engine, studio.tenant_id, invoice_id)["status"] == "paid", 20, "paid by webhook")
    intent = studio.stripe().v1.checkout.sessions.retrieve(checkout.session_id).payment_intent
    studio.stripe().v1.refunds.create(params={"payment_intent": intent, "amount": 1000})
    studio.stripe().v1.refunds.create(params={"payment_intent": intent, "amount": 2500})
    wait_for(lambda: invoice_row(engine, studio.tenant_id, invoice_id)["amount_refunded"] == Decimal("35.00"), 20,
             "both refunds")
    httpx.post(f"{studio.sandbox}/_sandbox/stripe/flush", json={"timeout_s": 20, "api_key": studio.stripe_key})
    row = invoice_row(engine, studio.tenant_id, invoice_id)
    assert (row["status"], row["amount_paid"], row["amount_refunded"], row["balance_due"]) == \
        ("partially_paid", Decimal("110.00"), Decimal("35.00"), Decimal("35.00"))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(studio_payments.c.kind, studio_payments.c.processor_id,
                                      studio_payments.c.amount).where(
            studio_payments.c.tenant_id == studio.tenant_id)).all()
    # shuffled, the 35.00 total may come before the 10.00 one: one row or two, never more money
    assert [(k, p) for k, p, _ in rows if k == "payment"] == [("payment", intent)]
    assert sum(a for k, _, a in rows if k == "refund") == Decimal("35.00")


def test_the_page_shows_unit_prices_as_stored_and_amounts_in_cents(api, studio, engine):
    invoice_id = make_invoice(engine, studio, lines=(("Washer", "100", "0.335"), ("Bracket", "2", "1250.5")))
    page = httpx.get(link(api, studio, invoice_id), timeout=30)
    assert page.status_code == 200
    assert "<td class=n>0.335 AUD</td>" in page.text and "0.34 AUD" not in page.text
    assert "<td class=n>1,250.50 AUD</td>" in page.text  # at least cents
    assert "<td class=n>36.85 AUD</td>" in page.text  # the line's total (33.50 + GST), in cents
