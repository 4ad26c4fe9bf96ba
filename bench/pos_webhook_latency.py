"""Benchmark: webhook-to-warehouse latency for one POS inventory change (issue 4).

One change is timed from the moment the store's stock changes in the sandbox (control route)
to the moment the warehouse ``inventory`` row shows the new quantity. In between, for real:
the fake POS signs and POSTs its webhook from its own process (to a URL with the connection's
token, for Treez), our API (uvicorn, real port) verifies and records it, the ``pos_webhook_inventory`` sensor sees it at its next tick and asks
for ``pos_inventory_refresh``, and that job runs for the tenant's partition.

The Dagster daemon is modelled in-process: the sensor is evaluated on a fixed clock every
``--tick`` seconds (its ``minimum_interval_seconds``), not aligned with the changes, which are
made at random moments, and each run request is executed in-process at once. Not included:
the daemon's own scheduling jitter and a run launcher's process start (printed separately as
the cost of importing the Definitions in a fresh interpreter).

    python bench/pos_webhook_latency.py                          # Shopify (signed), 40 changes, SQLite
    python bench/pos_webhook_latency.py --system treez --changes 20 --tick 5
    python bench/pos_webhook_latency.py --pg postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, SandboxProcess, free_port, load_avg, machine, scratch_pg  # noqa: E402

import dagster as dg  # noqa: E402
import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import uvicorn  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from assets.partitions import pos_partitions  # noqa: E402
from commerce import webhook_tokens  # noqa: E402
from pipelines import pos  # noqa: E402
from pipelines.definitions import build_defs  # noqa: E402
from resources.dagster_resources import PosClientsResource  # noqa: E402
from resources.warehouse import WarehouseResource  # noqa: E402
from sensors.pos_webhooks import SENSOR_NAME  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402
from warehouse.tables.pos import inventory, products  # noqa: E402
from warehouse.tables.pos_events import pos_webhook_events  # noqa: E402
from warehouse.tenants import add_tenant, set_connection  # noqa: E402

TENANT = "bench-webhooks"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # run logs would drown the figures


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def open_account(sandbox: str, system: str, hook: str, secret: str) -> tuple[str, dict, str]:
    """(base URL, credentials, control path) of a fresh account whose webhooks go to ``hook``."""
    tag = uuid.uuid4().hex[:10]
    if system == "shopify":
        httpx.post(f"{sandbox}/_sandbox/shopify/shops", json={"shop": f"s{tag}", "access_token": f"t{tag}",
                   "api_secret": secret, "products": 200, "customers": 5}).raise_for_status()
        httpx.post(f"{sandbox}/_sandbox/shopify/shops/s{tag}/webhooks", json={
            "address": hook, "topics": ["inventory_levels/update", "products/update"]}).raise_for_status()
        return f"{sandbox}/shopify/s{tag}", {"access_token": f"t{tag}", "api_secret": secret}, f"/_sandbox/shopify/shops/s{tag}"
    if system == "treez":
        creds = {"dispensary": f"d{tag}", "client_id": f"c{tag}", "apikey": f"k{tag}"}
        httpx.post(f"{sandbox}/_sandbox/treez/dispensaries", json={**creds, "products": 200, "customers": 5}).raise_for_status()
        httpx.put(f"{sandbox}/_sandbox/treez/dispensaries/d{tag}/webhook", json={"url": hook, "secret": secret}).raise_for_status()
        return f"{sandbox}/treez", {**creds, "webhook_secret": secret}, f"/_sandbox/treez/dispensaries/d{tag}"
    raise SystemExit(f"--system shopify or treez, not {system}")


class Api:
    """Our API on a real port (the sandbox posts to it from its own process)."""

    def __init__(self, url: str, engine: sa.Engine) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        settings = ApiSettings(database_url=url, public_url=self.url, secret_key="bench-secret", worker_enabled=False)
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings, engine), host="127.0.0.1", port=port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Api":
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def quantity(engine: sa.Engine, product_id: str) -> float:
    i = inventory.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(i.quantity).where(i.tenant_id == TENANT, i.product_id == product_id,
                                                        i.deleted_at.is_(None))).scalars().all()
    return float(sum(rows))


def run(url: str, system: str, changes: int, tick: float, seed: int) -> None:
    rng = random.Random(seed)
    upgrade(url)
    warehouse = WarehouseResource(url=url)
    engine = warehouse.engine
    jobs = dg.Definitions(assets=pos.pos_assets, jobs=[pos.pos_sync_job, pos.pos_inventory_job],
                          resources={"warehouse": warehouse, "pos_clients": PosClientsResource()})
    sensor = build_defs().resolve_sensor_def(SENSOR_NAME)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(pos_partitions.name, [TENANT])
    secret = f"bench-{uuid.uuid4().hex}"
    with SandboxProcess() as sandbox, Api(url, engine) as api:
        with engine.begin() as conn:
            add_tenant(conn, TENANT, "Webhook bench")
            token = None if system in webhook_tokens.SIGNED else webhook_tokens.issue(conn, TENANT, system)
        hook = webhook_tokens.webhook_url(api.url, TENANT, system, token)
        base_url, creds, control = open_account(sandbox.url, system, hook, secret)
        with engine.begin() as conn:
            set_connection(conn, TENANT, system, base_url, creds, {})
        assert jobs.resolve_job_def("pos_sync").execute_in_process(partition_key=TENANT, instance=instance,
                                                                   run_config=QUIET).success
        p = products.c
        with engine.connect() as conn:
            rows = conn.execute(sa.select(p.product_id, p.attributes).where(p.tenant_id == TENANT).limit(20)).all()
        candidates = [(r.product_id, str((r.attributes or {}).get("shopify_product_id") or r.product_id)) for r in rows]
        context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
        totals, hooks, evals, job_s, runs, events = [], [], [], [], 0, 0
        start = time.time()
        ticks = 0
        for n in range(changes):
            time.sleep(rng.uniform(0, tick))  # changes land anywhere between two ticks
            product_id, native = rng.choice(candidates)
            target = float(rng.choice([q for q in range(1, 29) if q != quantity(engine, product_id)]))
            t0 = time.time()
            httpx.post(f"{sandbox.url}{control}/products/{native}/stock", json={"quantity": int(target)}).raise_for_status()
            while True:
                # the daemon's clock: ticks at start + k * tick, whatever the changes do
                ticks = max(ticks + 1, int((time.time() - start) / tick) + 1) if tick else ticks
                wait = start + ticks * tick - time.time() if tick else 0.02
                time.sleep(max(0.0, wait))
                e0 = time.perf_counter()
                result = sensor(context)
                evals.append(time.perf_counter() - e0)
                for request in result.run_requests:
                    j0 = time.perf_counter()
                    assert jobs.resolve_job_def(request.job_name).execute_in_process(
                        partition_key=request.partition_key, instance=instance, tags=request.tags,
                        run_config=QUIET).success
                    job_s.append(time.perf_counter() - j0)
                    runs += 1
                    events += int(request.tags["storehouse/events"])
                if quantity(engine, product_id) == target:
                    totals.append(time.time() - t0)
                    break
            e = pos_webhook_events.c
            with engine.connect() as conn:
                received = conn.execute(sa.select(e.received_at).where(e.tenant_id == TENANT)).scalars().all()
            hooks.append(min(r.timestamp() for r in received if r.timestamp() >= t0 - 0.001) - t0)
            print(f"  change {n + 1:>3}/{changes}: {totals[-1]:6.2f} s", flush=True)
    startup = subprocess.run([sys.executable, "-c", "import time; t=time.perf_counter(); import pipelines.definitions; "
                              "print(time.perf_counter()-t)"], cwd=ROOT, capture_output=True, text=True)
    print(f"\nwebhook-to-warehouse latency, {system}, {changes} changes, sensor tick {tick:g} s, "
          f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}")
    print(f"  machine: {machine()} · load {load_avg()}")
    print(f"  end to end      p50 {pct(totals, 50):6.2f} s   p99 {pct(totals, 99):6.2f} s   max {max(totals):6.2f} s")
    print(f"  stock→recorded  p50 {pct(hooks, 50) * 1000:6.0f} ms  p99 {pct(hooks, 99) * 1000:6.0f} ms (sandbox POST → API → row)")
    print(f"  sensor tick     p50 {statistics.median(evals) * 1000:6.1f} ms  ({len(evals)} evaluations)")
    print(f"  inventory run   p50 {statistics.median(job_s):6.2f} s   p99 {pct(job_s, 99):6.2f} s "
          f"({runs} runs for {events} events)")
    print(f"  not included: a run launcher's fresh process; importing the Definitions there takes "
          f"{float(startup.stdout.strip() or 'nan'):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", default="shopify", choices=["shopify", "treez"])
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--tick", type=float, default=5.0, help="sensor interval in seconds (0: evaluate continuously)")
    parser.add_argument("--pg", help="a PostgreSQL server URL; a scratch database is made there and dropped")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with scratch_pg(args.pg) if args.pg else nullcontext(None) as pg_url, tempfile.TemporaryDirectory() as tmp:
        run(pg_url or f"sqlite:///{tmp}/warehouse.db", args.system, args.changes, args.tick, args.seed)


if __name__ == "__main__":
    main()
