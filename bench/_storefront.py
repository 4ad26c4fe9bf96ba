"""What the shop benchmarks share: a migrated warehouse, a shop wired to the sandbox, API and bare
FastAPI servers in their own processes, and an asyncio load generator with latency percentiles."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import (  # also puts the repo on sys.path
    ROOT,
    SandboxProcess,
    free_port,
    machine,
    scratch_pg,
)

from api.settings import KEEP_ALIVE_S  # noqa: E402

TENANT = "bench-shop"
SECRET = "bench-order-token-key"
BARE_APP = """
from fastapi import FastAPI, Request
app = FastAPI()

@app.post("/bare")
async def bare(request: Request) -> dict:
    await request.body()
    return {"ok": True}
"""


def arguments(description: str, requests: int = 600) -> argparse.Namespace:
    from _wrk import available

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL server URL (a scratch database is made on it)")
    parser.add_argument("--workers", type=int, default=1, help="API worker processes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--driver", choices=["wrk", "python"], default="wrk" if available() else "python",
                        help="load generator: wrk (default when installed; fast enough that the bare endpoint, "
                        "not the generator, sets the ceiling) or the asyncio/httpx one (saturates a core at a "
                        "few hundred requests/s, so its 'ceiling' is its own)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement, with wrk")
    parser.add_argument("--requests", type=int, default=requests, help="per measurement, with the python driver")
    parser.add_argument("--rounds", type=int, default=3, help="measurements alternate, round after round, so "
                        "a busy machine weighs on each alike; rates are the median round's")
    return parser.parse_args()


def prepared(args: argparse.Namespace, max_rate: float) -> int:
    """How many distinct requests to prepare for one measurement: exactly ``--requests`` for the
    python driver; for wrk, what ``max_rate`` per second would send in ``--seconds``."""
    return args.requests if args.driver == "python" else int(max_rate * args.seconds)


def load(args: argparse.Namespace, url: str, requests: list[dict[str, Any]], ok: Callable[[httpx.Response], bool],
         *, repeat: bool = False) -> Load:
    """One measurement with the chosen driver. wrk checks status codes only (non-2xx fail);
    ``repeat`` lets it go round ``requests`` again (duplicates on purpose)."""
    if args.driver == "python":
        return drive(url, requests, args.concurrency, ok)
    from _wrk import drive_wrk

    return drive_wrk(url, requests, args.concurrency, args.seconds, repeat=repeat)


@contextlib.contextmanager
def warehouse(pg: str | None) -> Iterator[str]:
    from warehouse.migrate import upgrade

    if pg:
        with scratch_pg(pg) as url:
            upgrade(url)
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        yield url


class Server:
    """A uvicorn server in child processes (``app`` an import string; ``factory`` for create_app)."""

    def __init__(self, app: str, env: dict[str, str] | None = None, workers: int = 1, factory: bool = False,
                 port: int | None = None, log: Path | None = None, start_timeout: float = 180) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(self.port),
                    "--workers", str(workers), "--log-level", "warning", "--no-access-log", "--backlog", "4096",
                    "--timeout-keep-alive", str(KEEP_ALIVE_S)]  # as `storehouse api` runs it
        if factory:
            self.cmd.append("--factory")
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log = log  # the server's output goes there (default: this process's)
        self.start_timeout = start_timeout

    def __enter__(self) -> "Server":
        out = open(self.log, "ab") if self.log else None
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, start_new_session=True, stdout=out,
                                     stderr=subprocess.STDOUT if out else None)
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                assert self.proc.poll() is None, "server exited"
                with contextlib.suppress(httpx.HTTPError):
                    httpx.get(f"{self.url}/", timeout=0.5)
                    return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.cmd} did not start in {self.start_timeout:g} s")
                time.sleep(0.1)
        except BaseException:
            self.__exit__()  # not left serving (and polling) after the caller gave up on it
            raise

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            import signal

            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def bare_server(workers: int) -> Server:
    path = os.path.join(tempfile.mkdtemp(), "bare_app.py")
    with open(path, "w") as handle:
        handle.write(BARE_APP)
    return Server("bare_app:app", {"PYTHONPATH": os.path.dirname(path)}, workers)


def ceiling_server(warehouse_url: str, workers: int, *, stripe_url: str = "", stripe_key: str = "",
                   webhook_secret: str = "", tenant: str = TENANT) -> Server:
    """The minimal handlers of ``_ceiling_app`` (the fair ceilings) on the API's database and sandbox."""
    env = {"PYTHONPATH": f"{Path(__file__).resolve().parent}{os.pathsep}{ROOT}", "CEILING_DATABASE_URL": warehouse_url,
           "CEILING_TENANT": tenant, "CEILING_STRIPE_URL": stripe_url, "CEILING_STRIPE_KEY": stripe_key,
           "CEILING_WEBHOOK_SECRET": webhook_secret}
    return Server("_ceiling_app:app", env, workers)


def api_server(warehouse_url: str, workers: int, port: int, log: Path | None = None, **settings: Any) -> Server:
    env = {"STOREHOUSE_SHOP_DATABASE_URL": warehouse_url, "STOREHOUSE_SHOP_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "STOREHOUSE_SHOP_SECRET_KEY": SECRET, "STOREHOUSE_SHOP_CHECKOUT_RATE_PER_S": "100000",
           "STOREHOUSE_SHOP_CHECKOUT_BURST": "100000",
           **{f"STOREHOUSE_SHOP_{k.upper()}": str(v) for k, v in settings.items()}}
    return Server("api.app:create_app", env, workers, factory=True, port=port, log=log)


@dataclass
class Load:
    done: int
    failed: int
    seconds: float
    latencies: list[float]
    rates: list[float] | None = None  # one per round, when several were pooled
    percentiles: dict[int, float] | None = None  # wrk reports these instead of every latency

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else self.done / self.seconds

    def pct(self, q: int) -> float:
        if self.percentiles is not None:
            return self.percentiles[q] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000

    def line(self, name: str) -> str:
        spread = f"  rounds {'/'.join(f'{r:.0f}' for r in self.rates)}" if self.rates and len(self.rates) > 1 else ""
        return (f"{name:<36} {self.rate:7.0f} req/s   p50 {self.pct(50):7.1f} ms   p99 {self.pct(99):7.1f} ms"
                f"   ({self.done} ok, {self.failed} failed){spread}")


def pooled(loads: list[Load]) -> Load:
    """Rounds as one: the median round's rate; latencies pooled (wrk's percentiles: the median round's)."""
    percentiles = None
    if all(x.percentiles for x in loads):
        percentiles = {q: statistics.median(x.percentiles[q] for x in loads) for q in loads[0].percentiles}
    return Load(sum(x.done for x in loads), sum(x.failed for x in loads), sum(x.seconds for x in loads),
                [v for x in loads for v in x.latencies], [x.done / x.seconds for x in loads], percentiles)


def drive(url: str, requests: list[dict[str, Any]], concurrency: int, ok: Callable[[httpx.Response], bool]) -> Load:
    """POST every request (``{"json"|"content", "headers"}``) with ``concurrency`` in flight."""

    async def run() -> Load:
        latencies: list[float] = []
        failed = 0
        queue: asyncio.Queue = asyncio.Queue()
        for r in requests:
            queue.put_nowait(r)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            async def worker() -> None:
                nonlocal failed
                while not queue.empty():
                    request = queue.get_nowait()
                    started = time.perf_counter()
                    response = await client.post(url, **request)
                    if ok(response):
                        latencies.append(time.perf_counter() - started)
                    else:
                        failed += 1
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return Load(len(latencies), failed, time.perf_counter() - started, latencies)

    return asyncio.run(run())


def open_storefront(warehouse_url: str, sandbox_url: str, api_url: str, tenant: str = TENANT) -> str:
    """A bench tenant with its providers, Stripe account (webhook → ``api_url``) and catalog."""
    import dagster as dg
    import stripe

    from assets.esim import esim_assets
    from assets.partitions import esim_partitions
    from resources.dagster_resources import EsimProvidersResource
    from resources.dagster_resources import SlackResource
    from resources.warehouse import WarehouseResource, engine_for
    from warehouse.tenants import add_tenant, set_connection

    key = f"sk_test_{tenant.replace('-', '_')}"
    client = stripe.StripeClient(key, base_addresses={"api": f"{sandbox_url}/stripe"})
    endpoint = client.v1.webhook_endpoints.create(params={"url": f"{api_url}/shops/{tenant}/webhooks/stripe",
                                                          "enabled_events": ["*"]})
    creds = {"esimcard": {"email": "demo@esimcard.test", "password": "demo-password"},
             "mobimatter": {"merchant_id": "mm-demo-merchant", "api_key": "mm-demo-key"},
             "airalo": {"client_id": "airalo-demo-client", "client_secret": "airalo-demo-secret"}}
    with engine_for(warehouse_url).begin() as conn:
        add_tenant(conn, tenant, "Bench shop")
        for system, credentials in creds.items():
            set_connection(conn, tenant, system, f"{sandbox_url}/{system}", credentials,
                           {"margin_pct": 35, "stock_feed_url": f"/_sandbox/{system}/stock"})
        set_connection(conn, tenant, "stripe", f"{sandbox_url}/stripe",
                       {"secret_key": key, "webhook_secret": endpoint.secret})
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(esim_partitions.name, [tenant])
    dg.materialize(esim_assets, partition_key=tenant, instance=instance, raise_on_error=True, resources={
        "warehouse": WarehouseResource(url=warehouse_url), "esim_providers": EsimProvidersResource(),
        "slack": SlackResource()})
    return endpoint.secret


def header(title: str, args: argparse.Namespace, url: str) -> None:
    from warehouse.db import redact

    per = f"{args.seconds:g} s per measurement" if args.driver == "wrk" else f"{args.requests} requests"
    print(f"{title}\n{machine()}\nwarehouse {redact(url).split('@')[-1]}, {args.workers} API worker(s), "
          f"driver {args.driver}, concurrency {args.concurrency}, {per}, {args.rounds} rounds\n")


__all__ = ["SandboxProcess", "Server", "free_port", "pooled", "api_server", "arguments", "bare_server", "ceiling_server", "drive", "header",
           "load", "open_storefront", "prepared", "warehouse", "TENANT"]
