"""The customer's order page in a real headless browser: pay on the sandbox's hosted Checkout
page, follow Stripe's success redirect, and watch the page update itself until the QR code appears.

Chromium comes from Debian's packages (`apt-get install chromium`; `.ci/run` installs it) and
Playwright drives it; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import shutil

import httpx
import pytest
import sqlalchemy as sa

from tests.api_storefront import ApiThread, buy, first_package, free_port, open_storefront, settings_for, wait_status
from warehouse.tables.orders import order_esims

CHROMIUM = os.environ.get("STOREHOUSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
IN_CI = os.environ.get("CI") == "true"  # CI must run these, never skip them
try:
    from playwright import sync_api
except ImportError:
    if IN_CI:
        raise
    pytest.skip("playwright is not installed (./dev setup installs it)", allow_module_level=True)
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not IN_CI,
    reason=f"no chromium at {CHROMIUM}: `apt-get install chromium` to run the browser tests (CI installs it)")


@pytest.fixture(scope="module")
def browser():
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
def storefront(sandbox_reset, api, engine, warehouse, tenant_id):
    return open_storefront(engine, warehouse, sandbox_reset.url, api.url, tenant_id)


def test_after_paying_the_customer_sees_the_order_page_update_until_the_qr_code(api, storefront, engine, page):
    # The provider takes a few seconds to issue the eSIM: the page must show the wait, then update by itself.
    httpx.put(f"{storefront.sandbox}/_sandbox/faults/esimcard", json={"slow_ms": 4000, "only_path": "purchase"}).raise_for_status()
    bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
    seen_json: list[str] = []
    page.on("response", lambda r: seen_json.append(r.url) if "application/json" in r.headers.get("content-type", "")
            and r.request.resource_type == "fetch" else None)

    page.goto(bought["checkout_url"])  # the sandbox's hosted Checkout page
    page.get_by_role("button", name="Pay with 4242 4242 4242 4242").click()
    page.wait_for_url(f"{api.url}/shops/{storefront.tenant_id}/orders/{bought['order_id']}?token=*")

    status = page.locator("#status")
    assert "Payment received" in status.inner_text() and "updates by itself" in status.inner_text()
    assert page.locator("img").count() == 0
    qr = page.get_by_alt_text("QR code for eSIM 1")
    qr.wait_for(state="visible", timeout=30_000)  # no click, no reload by hand: the page polled
    assert seen_json, "the page asked for the order's JSON form"
    assert "Your eSIM is ready" in page.locator("#status").inner_text()
    assert page.evaluate("document.querySelector('img').naturalWidth") > 0  # a real, decodable PNG

    with engine.connect() as conn:
        esim = conn.execute(sa.select(order_esims).where(order_esims.c.tenant_id == storefront.tenant_id)).mappings().one()
    assert page.locator(".iccid").inner_text() == esim["iccid"]
    assert page.locator(".activation").inner_text() == esim["activation_code"]
    assert "Add eSIM" in page.locator("ol").inner_text()
    wait_status(engine, storefront.tenant_id, bought["order_id"], {"provisioned"})


def test_a_failed_order_says_so_plainly(api, storefront, engine, page):
    for provider in ("esimcard", "mobimatter", "airalo"):
        httpx.put(f"{storefront.sandbox}/_sandbox/faults/{provider}", json={"down": True}).raise_for_status()
    bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
    page.goto(bought["checkout_url"])
    page.get_by_role("button", name="Pay with 4242 4242 4242 4242").click()
    page.wait_for_url(f"{api.url}/shops/{storefront.tenant_id}/orders/*")
    wait_status(engine, storefront.tenant_id, bought["order_id"], {"failed", "refunded"}, timeout=60)
    page.locator("#status.bad").wait_for(timeout=30_000)
    text = page.locator("#status").inner_text()
    assert "could not deliver" in text or "refunded" in text, text
    assert page.locator("img").count() == 0


def test_the_same_link_answers_json_to_programs_and_a_page_to_browsers(api, storefront, page):
    bought = buy(api.url, storefront, first_package(api.url, storefront)["package_id"])
    assert httpx.get(bought["order_url"]).json()["status"] == "pending"
    page.goto(bought["order_url"])
    assert "Waiting for your payment" in page.locator("#status").inner_text()
    page.goto(bought["order_url"].replace("token=", "token=x"))  # a wrong token: a readable page, not JSON
    assert "cannot be shown" in page.locator("h1").inner_text()
