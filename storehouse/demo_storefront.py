"""The demo's eSIM purchase: the shop API buys one eSIM end to end in the sandbox and shows it.

Runs the API in this process on a free port, adds a Stripe webhook endpoint of the NumnaRoad shop
for it (removed again at the end; a `storehouse up` serving the same sandbox keeps its own), then
plays the customer: catalog → checkout → pay on the (fake) Stripe page → signed webhook →
provisioned through the first healthy provider → email with the QR code, Slack notice.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import sqlalchemy as sa
import stripe
import uvicorn
from rich.console import Console

from settings import Settings

STOREFRONT = "numnaroad"
FINAL = {"provisioned", "partially_provisioned", "failed", "refunded"}


class ApiServer:
    """``api.app.create_app`` on uvicorn in a daemon thread, workers included."""

    def __init__(self, warehouse_url: str, port: int) -> None:
        from api.app import create_app
        from api.settings import ApiSettings

        self.url = f"http://127.0.0.1:{port}"
        app = create_app(ApiSettings(database_url=warehouse_url, public_url=self.url, poll_s=0.2))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    def __enter__(self) -> "ApiServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the API did not start on {self.url}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


WEBHOOK_PATH = f"/shops/{STOREFRONT}/webhooks/stripe"


def webhook_path(tenant: str) -> str:
    """Where a demo tenant's Stripe events arrive: the shop's endpoint, or a studio's."""
    return WEBHOOK_PATH if tenant == STOREFRONT else f"/studios/{tenant}/webhooks/stripe"


def _stripe(engine: sa.Engine, tenant: str = STOREFRONT):
    """A demo tenant's Stripe connection and a client for its account."""
    from warehouse.tenants import get_connection

    with engine.connect() as conn:
        connection = get_connection(conn, tenant, "stripe")
    if connection is None:
        raise RuntimeError(f"demo tenant {tenant} has no stripe connection")
    return connection, stripe.StripeClient(connection.credentials["secret_key"],
                                           base_addresses={"api": connection.base_url}, max_network_retries=1)


def _update_secrets(engine: sa.Engine, change, tenant: str = STOREFRONT) -> None:
    """Store ``change(current signing secrets)`` as the tenant's Stripe webhook secrets (read and
    written in one transaction, so an API serving meanwhile keeps every secret it still needs)."""
    from resources.stripe import webhook_secrets
    from warehouse.tenants import get_connection, set_connection

    with engine.begin() as conn:
        connection = get_connection(conn, tenant, "stripe")
        credentials = {k: v for k, v in connection.credentials.items() if k != "webhook_secret"}
        if secrets := change(list(webhook_secrets(connection))):
            credentials["webhook_secret"] = secrets
        set_connection(conn, tenant, "stripe", connection.base_url, credentials, connection.options)


def _create_endpoint(client, api_url: str, tenant: str = STOREFRONT):
    from commerce.webhooks import HANDLED

    return client.v1.webhook_endpoints.create(params={"url": api_url + webhook_path(tenant),
                                                      "enabled_events": sorted(HANDLED)})


def connect_webhook(engine: sa.Engine, api_url: str, tenant: str = STOREFRONT) -> None:
    """`storehouse up`: a demo tenant's (the shop's, the studio's) Stripe webhook endpoint for
    this API, and only its secret stored.

    `up` has just started the sandbox, which forgets endpoints when it stops: secrets stored
    before are for endpoints that no longer exist. An endpoint already at this very URL (an
    earlier call for the same API) is replaced; endpoints for other APIs are left alone."""
    _, client = _stripe(engine, tenant)
    for endpoint in client.v1.webhook_endpoints.list(params={"limit": 100}).data:
        if endpoint.url == api_url + webhook_path(tenant):
            client.v1.webhook_endpoints.delete(endpoint.id)
    endpoint = _create_endpoint(client, api_url, tenant)
    _update_secrets(engine, lambda _old: [endpoint.secret], tenant)


@contextlib.contextmanager
def temporary_webhook(engine: sa.Engine, api_url: str) -> Iterator[None]:
    """The demo's own endpoint for its temporary API, its secret added to those stored; on the
    way out that endpoint and its secret are removed, and nothing else: a `storehouse up`
    serving the same sandbox keeps receiving (and verifying) its events throughout."""
    _, client = _stripe(engine)
    endpoint = _create_endpoint(client, api_url)
    _update_secrets(engine, lambda old: [*old, endpoint.secret])
    try:
        yield
    finally:
        try:
            client.v1.webhook_endpoints.delete(endpoint.id)
        finally:
            _update_secrets(engine, lambda old: [s for s in old if s != endpoint.secret])


def _wait(fetch, done, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def buy_one_esim(console: Console, engine: sa.Engine, settings: Settings) -> bool:
    """Buy one eSIM for Japan as a customer would; print what happened; True when provisioned."""
    from sandbox.server import free_port

    with ApiServer(settings.warehouse_url, free_port()) as api, temporary_webhook(engine, api.url):
        http = httpx.Client(timeout=30)
        items = http.get(f"{api.url}/shops/{STOREFRONT}/catalog", params={"country": "JP"}).json()["items"]
        if not items:
            console.print("[red]✗[/] the NumnaRoad catalog is empty (did the esim_catalog_sync job run?)")
            return False
        package = next((i for i in items if i["data_mb"] == 1024 and i["validity_days"] == 7), items[0])
        checkout = http.post(f"{api.url}/shops/{STOREFRONT}/checkout", headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"},
                             json={"package_id": package["package_id"], "email": "traveller@example.com"}).json()
        session_id = checkout["checkout_url"].rsplit("/", 1)[1]
        console.print(f"[green]✓[/] checkout {checkout['order_id']}: {package['name']}, "
                      f"{checkout['amount_total']} {checkout['currency']} → paying at {checkout['checkout_url']}")
        http.post(f"{settings.sandbox_url}/_sandbox/stripe/checkout/sessions/{session_id}/pay", json={}).raise_for_status()
        order = _wait(lambda: http.get(checkout["order_url"]).json(), lambda o: o["status"] in FINAL, 60)
        emails = _wait(lambda: [e for e in http.get(f"{settings.sandbox_url}/_sandbox/resend/emails").json()["emails"]
                                if any(t.get("value") == order["order_id"] for t in e["tags"])], bool, 20)
    esim = (order.get("esims") or [{}])[0]
    mark = "[green]✓[/]" if order["status"] == "provisioned" else "[red]✗[/]"
    console.print(f"{mark} order {order['order_id']}: {order['status']}"
                  + (f" ({order['failure_reason']})" if order.get("failure_reason") else ""))
    if esim:
        qr = Path(settings.home) / f"esim-{order['order_id']}.png"
        qr.parent.mkdir(parents=True, exist_ok=True)
        qr.write_bytes(base64.b64decode(esim["qr_png_base64"]))
        console.print(f"    ICCID {esim['iccid']}, activation code {esim['activation_code']}")
        console.print(f"    QR code saved to {qr.resolve()}")
    for email in emails:
        console.print(f"    email \"{email['subject']}\" → {email['to'][0]} "
                      f"({len(email['attachments'])} QR attachment(s), Resend id {email['id']})")
    # The link works with `storehouse up` or `storehouse api` (same warehouse, same signing key).
    page = checkout["order_url"].replace(api.url, settings.api_url)
    console.print(f"    order page: {page}")
    return order["status"] == "provisioned"
