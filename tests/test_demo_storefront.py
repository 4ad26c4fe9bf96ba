"""`storehouse demo` run again while `storehouse up` serves the same sandbox and warehouse: the
demo's own purchase works, and the running API keeps receiving (and verifying) its Stripe
webhooks throughout and afterwards, so its paid orders still provision."""

import io
import uuid

import httpx
import stripe
from rich.console import Console

from settings import Settings
from storehouse.demo import register_demo_tenants
from storehouse.demo_storefront import STOREFRONT, WEBHOOK_PATH, buy_one_esim, connect_webhook
from tests.api_storefront import ApiThread, free_port, load_catalog, settings_for, wait_status


def endpoint_urls(sandbox_url: str) -> list[str]:
    client = stripe.StripeClient("sk_test_numnaroad_demo", base_addresses={"api": f"{sandbox_url}/stripe"})
    return sorted(e.url for e in client.v1.webhook_endpoints.list(params={"limit": 100}).data)


def pay_at(api_url: str, sandbox_url: str) -> str:
    """A customer of the API at ``api_url`` checks out and pays; the order id."""
    items = httpx.get(f"{api_url}/shops/{STOREFRONT}/catalog", params={"country": "JP"}, timeout=30).json()["items"]
    checkout = httpx.post(f"{api_url}/shops/{STOREFRONT}/checkout", headers={"Idempotency-Key": str(uuid.uuid4())},
                          json={"package_id": items[0]["package_id"], "email": "up@example.com"}, timeout=30)
    assert checkout.status_code in (200, 201), checkout.text
    session = checkout.json()["checkout_url"].rsplit("/", 1)[1]
    httpx.post(f"{sandbox_url}/_sandbox/stripe/checkout/sessions/{session}/pay", json={}, timeout=30).raise_for_status()
    return checkout.json()["order_id"]


def test_the_demo_again_leaves_a_running_up_receiving_its_stripe_webhooks(sandbox_reset, warehouse, warehouse_url,
                                                                          engine, tmp_path, monkeypatch):
    sandbox = sandbox_reset.url
    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))  # the demo API's order-token key lives there
    register_demo_tenants(engine, sandbox)
    load_catalog(warehouse, STOREFRONT)
    settings = Settings(STOREHOUSE_HOME=tmp_path, DATABASE_URL=warehouse_url,
                        STOREHOUSE_SANDBOX_PORT=int(sandbox.rsplit(":", 1)[1]), STOREHOUSE_API_PORT=free_port())
    with ApiThread(settings_for(warehouse_url, settings.api_port)) as up:
        connect_webhook(engine, up.url)  # what `storehouse up` does once everything answers
        assert endpoint_urls(sandbox) == [up.url + WEBHOOK_PATH]
        order = pay_at(up.url, sandbox)
        assert wait_status(engine, STOREFRONT, order, {"provisioned"}, 60)["status"] == "provisioned"

        # `storehouse demo` in another shell: registers its tenants again, buys through its own API
        register_demo_tenants(engine, sandbox)
        out = io.StringIO()
        assert buy_one_esim(Console(file=out, width=200), engine, settings), out.getvalue()

        assert endpoint_urls(sandbox) == [up.url + WEBHOOK_PATH]  # the demo's own one is gone, up's kept
        order = pay_at(up.url, sandbox)
        assert wait_status(engine, STOREFRONT, order, {"provisioned"}, 60)["status"] == "provisioned"
