"""The staff's manual sync page in a real headless browser (Debian's chromium, driven by Playwright,
as tests/test_order_page.py): sign in, pick a tenant, the Sync button only where the role may sync,
the recovery toggle, and the progress bar and statistics cards filling live while the run goes."""

from __future__ import annotations

import re
import threading

import dagster as dg
import httpx
import pytest
from playwright.sync_api import expect

from tests.api_storefront import ApiThread, free_port, settings_for
from tests.people_world import PASSWORD, PASSWORDS
from tests.test_manual_sync import launch, run
from tests.test_mx_sync import connect, make_merchant
from tests.test_order_page import CHROMIUM, IN_CI, browser, page  # noqa: F401  (the fixtures)
from people.users import create_user, grant
from syncing.progress import MX_STEPS
from warehouse import sync_progress
from warehouse.tenants import add_tenant

pytestmark = pytest.mark.skipif(
    not __import__("os").path.exists(CHROMIUM) and not IN_CI, reason=f"no chromium at {CHROMIUM}")


@pytest.fixture(scope="module")
def api(warehouse_url, engine):
    with ApiThread(settings_for(warehouse_url, free_port(), worker_enabled=False), engine) as server:
        yield server


def sign_in(page, api, email):
    page.goto(f"{api.url}/staff")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#workspace").wait_for(state="visible")


def test_a_tenant_admin_syncs_and_watches_the_progress_live(sandbox_reset, api, engine, warehouse, tenant_id, page):
    httpx.put(f"{sandbox_reset.url}/_sandbox/faults/mx", json={"latency_ms": 40}).raise_for_status()
    merchant = make_merchant(sandbox_reset, transactions=1200)
    connect(engine, sandbox_reset, tenant_id, merchant, page_size=50, page_concurrency=1)
    other = f"{tenant_id}-v"
    admin, viewer = f"admin@{tenant_id}.test", f"viewer@{tenant_id}.test"
    with engine.begin() as conn:
        add_tenant(conn, other, "Viewer's clinic")
        user = create_user(conn, PASSWORDS, admin, "Admin", PASSWORD)
        grant(conn, user, tenant_id, "tenant_admin")
        grant(conn, user, other, "viewer")
        grant(conn, create_user(conn, PASSWORDS, viewer, "Viewer", PASSWORD), tenant_id, "viewer")

    sign_in(page, api, admin)
    page.get_by_label("Tenant").select_option(other)
    assert page.locator("#sync-button").is_hidden() and page.locator("#no-sync").is_visible()
    page.get_by_label("Tenant").select_option(tenant_id)
    assert page.locator("#sync-button").is_visible()
    assert page.locator("#date-from").is_hidden()
    page.get_by_label("Recovery mode").check()
    assert page.locator("#date-from").is_visible() and page.locator("#date-to").is_visible()
    page.get_by_label("Recovery mode").uncheck()

    page.get_by_role("button", name="Sync").click()
    page.get_by_text("queued.").wait_for()
    assert page.locator("#sync-button").is_disabled()
    instance = dg.DagsterInstance.ephemeral()
    request = launch(instance, warehouse, tenant_id)  # what the daemon's sensor does
    results = []
    worker = threading.Thread(target=lambda: results.append(run(instance, warehouse, request)))
    worker.start()
    try:
        seen = set()
        expect(page.locator("#step")).to_have_text(re.compile(r"^step \d"), timeout=30_000)
        while (status := page.locator("#status").inner_text()) != "succeeded":
            assert status in ("queued", "running"), status
            seen.add(int(page.locator("#bar").get_attribute("aria-valuenow")))
            page.wait_for_timeout(100)
    finally:
        worker.join(120)
    assert results and results[0].success
    assert any(0 < p < 100 for p in seen), seen  # the bar moved while it ran, with no reload
    assert page.locator("#percent").inner_text() == "100"
    assert page.locator("#step").inner_text() == f"step 8 of 8: {MX_STEPS[8]}"
    with engine.connect() as conn:
        final = sync_progress.get(conn, tenant_id, int(request.tags[sync_progress.TAG]))
    assert page.locator("#stat-payments_read").inner_text() == str(final["stats"]["payments_read"]) == "1200"
    assert page.locator("#stat-api_calls").inner_text() == str(final["stats"]["api_calls"])
    assert page.locator("#stat-linkage_rate").inner_text() == f"{round(final['stats']['linkage_rate'] * 100)}%"
    assert page.locator("#sync-button").is_enabled()

    page.evaluate("sessionStorage.clear()")
    page.context.clear_cookies()
    sign_in(page, api, viewer)  # a viewer sees no Sync button
    assert page.locator("#role").inner_text() == "Role: viewer"
    assert page.locator("#sync-button").is_hidden() and page.locator("#no-sync").is_visible()


def test_a_second_sync_while_one_runs_is_refused_on_the_page(api, engine, sandbox_reset, tenant_id, page):
    merchant = make_merchant(sandbox_reset, transactions=50)
    connect(engine, sandbox_reset, tenant_id, merchant)
    owner = f"owner@{tenant_id}.test"
    with engine.begin() as conn:
        grant(conn, create_user(conn, PASSWORDS, owner, "Owner", PASSWORD), tenant_id, "tenant_owner")
    sign_in(page, api, owner)
    assert page.locator("#sync-button").is_enabled()
    sync_progress.request_manual_sync(engine, tenant_id, "mx_merchant_sync", None)  # someone else, meanwhile
    page.get_by_role("button", name="Sync").click()
    page.get_by_text("already queued or running").wait_for()
    assert page.locator("#message").get_attribute("class") == "error"
