"""Helpers for the shop API tests: a shop wired to the sandbox, our API on a real port, Stripe.

The API runs for real (uvicorn, in a thread or as worker processes) because the Stripe fake
delivers webhooks over HTTP to the URL registered for the shop, signed with that shop's secret.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import dagster as dg
import httpx
import sqlalchemy as sa
import stripe
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from warehouse.tables.orders import (
    order_effects,
    orders,
    provisioning_attempts,
    provisioning_jobs,
)
from warehouse.tenants import add_tenant, set_connection

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("esimcard", "mobimatter", "airalo")
CREDENTIALS = {
    "esimcard": {"email": "demo@esimcard.test", "password": "demo-password"},
    "mobimatter": {"merchant_id": "mm-demo-merchant", "api_key": "mm-demo-key"},
    "airalo": {"client_id": "airalo-demo-client", "client_secret": "airalo-demo-secret"},
}
RESEND_KEY = "re_sandbox_storehouse_key"
SECRET = "test-order-token-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(warehouse_url: str, port: int, **overrides: Any) -> ApiSettings:
    values = dict(database_url=warehouse_url, public_url=f"http://127.0.0.1:{port}", secret_key=SECRET,
                  tenant_cache_s=0, poll_s=0.2, lease_s=10, provider_timeout_s=5, checkout_burst=1000,
                  checkout_rate_per_s=1000, pos_webhook_burst=1000, pos_webhook_rate_per_s=1000)
    values.update(overrides)
    return ApiSettings(**values)


class ApiThread:
    """``create_app`` served by uvicorn in a thread (lifespan on: the workers run too)."""

    def __init__(self, settings: ApiSettings, engine: sa.Engine | None = None) -> None:
        self.port = int(settings.public_url.rsplit(":", 1)[1])
        self.url = settings.public_url
        self.app = create_app(settings, engine)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="on", limit_concurrency=2048))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def services(self):
        return self.app.state.services

    def __enter__(self) -> "ApiThread":
        self.thread.start()
        wait_for(lambda: self.server.started, 15, "API server start")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


class ApiProcess:
    """``uvicorn api.app:create_app --factory --workers N`` against the given settings (env)."""

    def __init__(self, settings: ApiSettings, workers: int = 2) -> None:
        self.url, self.workers = settings.public_url, workers
        self.port = int(self.url.rsplit(":", 1)[1])
        self.env = {**os.environ, **{f"STOREHOUSE_SHOP_{k.upper()}": str(v) for k, v in {
            "database_url": settings.database_url, "public_url": settings.public_url, "secret_key": SECRET,
            "tenant_cache_s": settings.tenant_cache_s, "poll_s": settings.poll_s, "lease_s": settings.lease_s,
            "provider_timeout_s": settings.provider_timeout_s, "worker_threads": settings.worker_threads,
            "checkout_burst": settings.checkout_burst, "checkout_rate_per_s": settings.checkout_rate_per_s,
            "give_up_after_s": settings.give_up_after_s, "retry_base_s": settings.retry_base_s,
        }.items()}}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ApiProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(self.workers), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=self.env, start_new_session=True)
        wait_for(self._ready, 30, "API processes start")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, "API process exited"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200
        return False

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hook, no lease released."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


@dataclass
class Storefront:
    tenant_id: str
    sandbox: str
    stripe_key: str
    webhook_secret: str
    endpoint_id: str
    slack_hook: str

    def stripe(self) -> stripe.StripeClient:
        return stripe.StripeClient(self.stripe_key, base_addresses={"api": f"{self.sandbox}/stripe"},
                                   max_network_retries=0)

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.sandbox}/_sandbox{path}", timeout=30, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def pay(self, session_id: str, bank_debit: bool = False) -> None:
        self.control("POST", f"/stripe/checkout/sessions/{session_id}/pay", json={"async_payment": bank_debit})

    def settle(self, session_id: str, succeeded: bool) -> None:
        self.control("POST", f"/stripe/checkout/sessions/{session_id}/settle", json={"succeeded": succeeded})

    def decline(self, session_id: str) -> None:
        self.control("POST", f"/stripe/checkout/sessions/{session_id}/decline", json={})

    def expire(self, session_id: str) -> None:
        self.control("POST", f"/stripe/checkout/sessions/{session_id}/expire")

    def delivery(self, **switches: Any) -> None:
        self.control("PUT", f"/stripe/accounts/{self.stripe_key}/delivery", json=switches)

    def flush(self, timeout_s: float = 20) -> None:
        result = self.control("POST", "/stripe/flush", json={"timeout_s": timeout_s, "api_key": self.stripe_key})
        assert result["settled"], result

    def deliveries(self, event_type: str | None = None) -> list[dict]:
        params = {"api_key": self.stripe_key, **({"type": event_type} if event_type else {})}
        return self.control("GET", "/stripe/deliveries", params=params)["data"]

    def slack_messages(self) -> list[str]:
        got = self.control("GET", "/slack/messages")["messages"]
        return [m["text"] for m in got if m["hook"] == self.slack_hook]


def open_storefront(engine: sa.Engine, warehouse: Any, sandbox_url: str, api_url: str, tenant_id: str,
                    providers: tuple[str, ...] = PROVIDERS, priority: dict[str, int] | None = None,
                    stripe_options: dict[str, Any] | None = None) -> Storefront:
    """Register the tenant with its own Stripe account, webhook endpoint, Slack hook; load its catalog."""
    key = f"sk_test_{tenant_id.replace('-', '_')}"
    client = stripe.StripeClient(key, base_addresses={"api": f"{sandbox_url}/stripe"}, max_network_retries=0)
    endpoint = client.v1.webhook_endpoints.create(params={
        "url": f"{api_url}/shops/{tenant_id}/webhooks/stripe", "enabled_events": ["*"]})
    hook = httpx.post(f"{sandbox_url}/_sandbox/slack/hooks", json={"channel": f"#{tenant_id}"}).json()["path"]
    httpx.put(f"{sandbox_url}/_sandbox/slack/limits", json={"messages": {"limit": 1000, "window_s": 1}})
    httpx.put(f"{sandbox_url}/_sandbox/resend/limits", json={"emails": {"limit": 1000, "window_s": 1}})
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, f"Shop {tenant_id}")
        for i, p in enumerate(providers):
            options = {"margin_pct": 35, "round_to": "0.99", "stock_feed_url": f"/_sandbox/{p}/stock"}
            if priority and p in priority:
                options["priority"] = priority[p]
            set_connection(conn, tenant_id, p, f"{sandbox_url}/{p}", CREDENTIALS[p], options)
        set_connection(conn, tenant_id, "stripe", f"{sandbox_url}/stripe",
                       {"secret_key": key, "webhook_secret": endpoint.secret}, stripe_options or {})
        set_connection(conn, tenant_id, "resend", f"{sandbox_url}/resend", {"api_key": RESEND_KEY},
                       {"from": "Shop <orders@shop.test>", "rate_limit": None})
        set_connection(conn, tenant_id, "slack", f"{sandbox_url}/slack", {"hook_path": hook.removeprefix("/slack")})
    load_catalog(warehouse, tenant_id)
    return Storefront(tenant_id, sandbox_url, key, endpoint.secret, endpoint.id, hook)


def load_catalog(warehouse: Any, tenant_id: str) -> None:
    """The catalog engineer's assets, as the schedule runs them: packages, then stock."""
    from assets.esim import esim_assets
    from assets.partitions import esim_partitions
    from resources.dagster_resources import EsimProvidersResource
    from resources.dagster_resources import SlackResource

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(esim_partitions.name, [tenant_id])
    result = dg.materialize(esim_assets, partition_key=tenant_id, instance=instance, resources={
        "warehouse": warehouse, "esim_providers": EsimProvidersResource(backoff_base_s=0.01), "slack": SlackResource()})
    assert result.success


def buy(api_url: str, storefront: Storefront, package_id: str, *, quantity: int = 1, email: str = "traveller@example.com",
        key: str | None = None) -> dict:
    headers = {"Idempotency-Key": key} if key else {}
    response = httpx.post(f"{api_url}/shops/{storefront.tenant_id}/checkout", headers=headers, timeout=30,
                          json={"package_id": package_id, "quantity": quantity, "email": email})
    assert response.status_code in (200, 201), response.text
    return response.json()


def first_package(api_url: str, storefront: Storefront, country: str = "JP") -> dict:
    items = httpx.get(f"{api_url}/shops/{storefront.tenant_id}/catalog", params={"country": country}).json()["items"]
    return next(i for i in items if i["data_mb"] == 1024 and i["validity_days"] == 7)


def session_of(engine: sa.Engine, tenant_id: str, order_id: str) -> str:
    return order_row(engine, tenant_id, order_id)["stripe_session_id"]


def order_row(engine: sa.Engine, tenant_id: str, order_id: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(orders).where(orders.c.tenant_id == tenant_id,
                                                         orders.c.order_id == order_id)).mappings().one())


def wait_status(engine: sa.Engine, tenant_id: str, order_id: str, statuses: set[str], timeout: float = 20) -> dict:
    return wait_for(lambda: (row := order_row(engine, tenant_id, order_id))["status"] in statuses and row,
                    timeout, f"order {order_id} to reach {statuses}")


def effects_settled(engine: sa.Engine, tenant_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(order_effects).where(
            order_effects.c.tenant_id == tenant_id, order_effects.c.state == "pending")).scalar_one() == 0


def attempts(engine: sa.Engine, tenant_id: str, order_id: str | None = None) -> list[dict]:
    a = provisioning_attempts.c
    stmt = sa.select(provisioning_attempts).where(a.tenant_id == tenant_id).order_by(a.id)
    if order_id:
        stmt = stmt.where(a.order_id == order_id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def provider_orders(sandbox_url: str, provider: str, reference: str) -> list[dict]:
    orders_ = httpx.get(f"{sandbox_url}/_sandbox/{provider}/orders").json()["orders"]
    return [o for o in orders_ if o["reference"] == reference]


def emails_to(sandbox_url: str, order_id: str) -> list[dict]:
    got = httpx.get(f"{sandbox_url}/_sandbox/resend/emails").json()["emails"]
    return [e for e in got if any(t.get("value") == order_id for t in e["tags"])]


def fault_calls(sandbox_url: str, provider: str) -> int:
    return httpx.get(f"{sandbox_url}/_sandbox/faults").json().get(provider, {}).get("calls", 0)


def quiesce(engine: sa.Engine, tenant_id: str) -> None:
    """Close the tenant's open jobs and effects: tests share one warehouse, and an API process
    started by a later test would otherwise pick up this test's leftover work."""
    with engine.begin() as conn:
        conn.execute(sa.update(provisioning_jobs).where(provisioning_jobs.c.tenant_id == tenant_id,
                                                        provisioning_jobs.c.state == "queued").values(state="done"))
        conn.execute(sa.update(order_effects).where(order_effects.c.tenant_id == tenant_id,
                                                    order_effects.c.state == "pending").values(state="skipped"))
