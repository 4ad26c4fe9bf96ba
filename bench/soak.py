"""Soak: the production shape under a steady mixed load for a bounded time (default 30 minutes).

On PostgreSQL (a scratch warehouse and a scratch Dagster instance database, both dropped at the
end), every piece in its own process as production runs it: the sandbox; the shop API as one
uvicorn with two worker processes (provisioning workers inside them); the Dagster code server
(`dagster api grpc`), daemon (`python -m storehouse.daemon run`, as the deploy files start it:
`dagster-daemon run` with its replaced workspaces freed; schedules, sensors, the queued run
coordinator) and webserver, with the instance on `dagster-postgres`. The load, all at once:

- checkouts: real Stripe Checkout Sessions on the sandbox's Stripe through the API; a tenth are
  posted again with the same Idempotency-Key (must answer the same order); then the customer pays
  (70 %), is declined (10 %), pays by bank debit settled later (5 %), lets it expire (5 %), or
  leaves (10 %);
- Stripe webhooks as the sandbox sends them for those payments, every event delivered twice, in
  shuffled batches, concurrently; plus old events re-sent now and then (late duplicates);
- POS webhooks: stock changes on a Shopify shop, signed webhooks to the API, the
  ``pos_webhook_inventory`` sensor and its inventory runs;
- scheduled syncs: the schedules at their own crons, tenant discovery's first syncs, and a sync
  request every ``--sync-every`` seconds (what `storehouse sync --request` queues) rotating over
  the MX, eSIM catalog, Stripe orders and POS catalog jobs.

Printed: errors per time window (HTTP 5xx, timeouts and transport errors of our clients, webhook
deliveries the API refused or dropped, failed Dagster runs); the RSS of each long-lived process
after the warm-up and at the end of the load; then, once provisioning has drained, every order
accounted for by SQL (and by the providers' own order lists).

    python bench/soak.py [--minutes 30] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                         [--base-port 9220] [--checkouts-per-s 1.5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_PG, ROOT, SandboxProcess, load_avg, machine, psycopg2_url, rss_mib, scratch_pg  # noqa: E402
from _storefront import SECRET, TENANT, Server, api_server, open_storefront  # noqa: E402

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from settings import Settings  # noqa: E402
from storehouse.instance import DAGSTER_DB_VAR  # noqa: E402
from storehouse.instance import prepare as prepare_instance  # noqa: E402

POS_TENANT = "soak-pos"
MX_TENANT = "downtown-medical"
STRIPE_KEY = f"sk_test_{TENANT.replace('-', '_')}"
FATES = [("pay", 70), ("decline", 10), ("async", 5), ("expire", 5), ("leave", 10)]
BIN = Path(sys.executable).parent



# -- processes and their memory --------------------------------------------------------------

def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    return ""


class Dagster:
    """Code server, daemon and webserver, each its own process, on one PostgreSQL instance."""

    def __init__(self, home: Path, env: dict[str, str], grpc_port: int, ui_port: int, log: Path) -> None:
        self.home, self.env, self.grpc_port, self.ui_port, self.log = home, env, grpc_port, ui_port, log
        self.procs: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> "Dagster":
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> "Dagster":
        workspace = self.home / "workspace.yaml"
        workspace.write_text(f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {self.grpc_port}\n"
                             "      location_name: storehouse\n")
        log = open(self.log, "ab")
        start = {"dagster code server": [str(BIN / "dagster"), "api", "grpc", "-m", "pipelines.definitions", "-a", "defs",
                                         "-h", "127.0.0.1", "-p", str(self.grpc_port)]}
        for name, argv in start.items():
            self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                                start_new_session=True)
        self._wait(lambda: subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(self.grpc_port)],
                                          env=self.env, capture_output=True).returncode == 0, "code server")
        for name, argv in {"dagster daemon": [sys.executable, "-m", "storehouse.daemon", "run", "-w", str(workspace)],
                           "dagster webserver": [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h",
                                                 "127.0.0.1", "-p", str(self.ui_port)]}.items():
            self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                                start_new_session=True)
        self._wait(lambda: _answers(f"http://127.0.0.1:{self.ui_port}/server_info"), "webserver")
        return self

    def _wait(self, ready, what: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if any(p.poll() is not None for p in self.procs.values()) or time.monotonic() > deadline:
                raise RuntimeError(f"Dagster {what} did not start; see {self.log}")
            time.sleep(1)

    def __exit__(self, *exc) -> None:
        for proc in reversed(list(self.procs.values())):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).is_success
    return False


# -- setup -----------------------------------------------------------------------------------

def open_pos_shop(url: str, sandbox: str, api: str) -> str:
    """A Shopify shop whose signed webhooks reach the API; returns its sandbox control path."""
    from commerce import webhook_tokens
    from resources.warehouse import engine_for
    from warehouse.tenants import add_tenant, set_connection

    tag, secret = uuid.uuid4().hex[:10], f"soak-{uuid.uuid4().hex}"
    httpx.post(f"{sandbox}/_sandbox/shopify/shops", json={"shop": f"s{tag}", "access_token": f"t{tag}",
               "api_secret": secret, "products": 200, "customers": 5}).raise_for_status()
    hook = webhook_tokens.webhook_url(api, POS_TENANT, "shopify")
    httpx.post(f"{sandbox}/_sandbox/shopify/shops/s{tag}/webhooks", json={
        "address": hook, "topics": ["inventory_levels/update", "products/update"]}).raise_for_status()
    with engine_for(url).begin() as conn:
        add_tenant(conn, POS_TENANT, "Soak dispensary")
        set_connection(conn, POS_TENANT, "shopify", f"{sandbox}/shopify/s{tag}",
                       {"access_token": f"t{tag}", "api_secret": secret}, {})
    return f"/_sandbox/shopify/shops/s{tag}"


def plenty_of_stock(sandbox: str) -> int:
    """Every package of the three eSIM providers in stock for the whole run (a sell-out is the
    shop's right answer, 409, but it would read as errors growing over time)."""
    n = 0
    with httpx.Client(base_url=sandbox, timeout=30) as http:
        for provider in ("esimcard", "mobimatter", "airalo"):
            for package_id in http.get(f"/_sandbox/{provider}/stock").json()["packages"]:
                http.put(f"/_sandbox/{provider}/stock/{package_id}", json={"units": 1_000_000}).raise_for_status()
                n += 1
    return n


def connect_email(url: str, sandbox: str) -> None:
    """The shop sends its eSIM emails through the sandbox's Resend (one per provisioned order)."""
    from resources.warehouse import engine_for
    from warehouse.tenants import set_connection

    with engine_for(url).begin() as conn:
        set_connection(conn, TENANT, "resend", f"{sandbox}/resend", {"api_key": "re_sandbox_storehouse_key"},
                       {"from": "Soak shop <orders@soak.test>"})


def register_mx_tenant(url: str, sandbox: str) -> None:
    from resources.warehouse import engine_for
    from storehouse.demo import DEMO_TENANTS
    from warehouse.tenants import add_tenant, set_connection

    tenant = next(t for t in DEMO_TENANTS if t.tenant_id == MX_TENANT)
    with engine_for(url).begin() as conn:
        add_tenant(conn, tenant.tenant_id, tenant.name)
        for c in tenant.connections:
            set_connection(conn, tenant.tenant_id, c.system, f"{sandbox}{c.path}", c.credentials, c.options)


# -- the load --------------------------------------------------------------------------------

class Tally:
    """Outcomes by kind and time window: ``ok``, ``5xx``, ``4xx``, ``timeout``, ``error``."""

    def __init__(self, start: float, window_s: float) -> None:
        self.start, self.window_s = start, window_s
        self.counts: dict[tuple[int, str, str], int] = collections.Counter()
        self.examples: dict[str, str] = {}

    def window(self, at: float) -> int:
        return max(0, int((at - self.start) // self.window_s))

    def add(self, kind: str, outcome: str, at: float | None = None, example: str | None = None) -> None:
        self.counts[(self.window(at or time.time()), kind, outcome)] += 1
        if example and outcome != "ok":
            self.examples.setdefault(f"{kind}/{outcome}", example[:300])


def outcome_of(response: httpx.Response, expected: int = 200) -> str:
    if response.status_code >= 500:
        return "5xx"
    return "ok" if response.status_code == expected else f"{response.status_code}"


async def call(tally: Tally, kind: str, fn, expected: int = 200) -> httpx.Response | None:
    try:
        response = await fn()
    except httpx.TimeoutException as exc:
        tally.add(kind, "timeout", example=repr(exc))
        return None
    except httpx.HTTPError as exc:
        tally.add(kind, "error", example=repr(exc))
        return None
    tally.add(kind, outcome_of(response, expected), example=response.text)
    return response


class Load:
    def __init__(self, args: argparse.Namespace, api: str, sandbox: str, pos_control: str, url: str,
                 tally: Tally) -> None:
        self.args, self.api, self.sandbox, self.pos_control, self.url, self.tally = \
            args, api, sandbox, pos_control, url, tally
        self.orders: dict[str, str] = {}  # order_id -> fate
        self.replay_mismatch: list[str] = []
        self.rng = random.Random(args.seed)
        self.stop_at = 0.0
        self.sync_requests: collections.Counter = collections.Counter()

    async def run(self, seconds: float) -> None:
        self.stop_at = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(timeout=self.args.timeout, limits=limits) as http:
            items = (await http.get(f"{self.api}/shops/{TENANT}/catalog")).json()["items"]
            products = await self._pos_products(http)
            tasks = [self._customers(http, items), self._late_duplicates(http), self._pos(http, products),
                     self._syncs(), self._reads(http)]
            await asyncio.gather(*tasks)

    def _running(self) -> bool:
        return time.monotonic() < self.stop_at

    async def _customers(self, http: httpx.AsyncClient, items: list[dict]) -> None:
        """Checkouts arriving as a Poisson stream at ``--checkouts-per-s``, each a task."""
        pending: set[asyncio.Task] = set()
        while self._running():
            await asyncio.sleep(self.rng.expovariate(self.args.checkouts_per_s))
            task = asyncio.create_task(self._customer(http, self.rng.choice(items)))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)

    async def _customer(self, http: httpx.AsyncClient, item: dict) -> None:
        key = uuid.uuid4().hex
        body = {"package_id": item["package_id"], "quantity": self.rng.choice([1, 1, 1, 2]),
                "email": f"soak-{key[:8]}@example.com"}
        post = lambda: http.post(f"{self.api}/shops/{TENANT}/checkout", json=body,  # noqa: E731
                                 headers={"Idempotency-Key": key})
        response = await call(self.tally, "checkout", post, 201)
        if response is None or response.status_code != 201:
            return
        checkout = response.json()
        fate = self.rng.choices([f for f, _ in FATES], [w for _, w in FATES])[0]
        self.orders[checkout["order_id"]] = fate
        if self.rng.random() < 0.1:  # the customer's browser retries the same checkout
            again = await call(self.tally, "checkout replay", post, 200)  # 200: the same order again
            if again is not None and again.status_code == 200 and again.json()["order_id"] != checkout["order_id"]:
                self.replay_mismatch.append(checkout["order_id"])
        await asyncio.sleep(self.rng.uniform(0.5, 5))  # on the payment page
        session = checkout["checkout_url"].rsplit("/", 1)[1]
        control = f"{self.sandbox}/_sandbox/stripe/checkout/sessions/{session}"
        if fate == "pay":
            await call(self.tally, "stripe pay", lambda: http.post(f"{control}/pay", json={}))
        elif fate == "decline":
            await call(self.tally, "stripe pay", lambda: http.post(f"{control}/decline", json={}))
        elif fate == "expire":
            await call(self.tally, "stripe pay", lambda: http.post(f"{control}/expire"))
        elif fate == "async":
            await call(self.tally, "stripe pay", lambda: http.post(f"{control}/pay", json={"async_payment": True}))
            await asyncio.sleep(self.rng.uniform(2, 10))
            succeeded = self.rng.random() < 0.7
            self.orders[checkout["order_id"]] = "async_ok" if succeeded else "async_failed"
            await call(self.tally, "stripe pay", lambda: http.post(f"{control}/settle", json={"succeeded": succeeded}))

    async def _late_duplicates(self, http: httpx.AsyncClient) -> None:
        """Every few seconds an event from earlier in the run is delivered again (Stripe resends)."""
        auth = {"Authorization": f"Bearer {STRIPE_KEY}"}
        while self._running():
            await asyncio.sleep(self.rng.uniform(2, 6))
            listed = await call(self.tally, "stripe list events",
                                lambda: http.get(f"{self.sandbox}/stripe/v1/events", params={"limit": 100},
                                                 headers=auth))
            if listed is None or listed.status_code != 200 or not listed.json()["data"]:
                continue
            event = self.rng.choice(listed.json()["data"])
            await call(self.tally, "stripe resend",
                       lambda: http.post(f"{self.sandbox}/_sandbox/stripe/events/{event['id']}/resend", json={}))

    async def _pos_products(self, http: httpx.AsyncClient) -> list[str]:
        shop = self.pos_control.rsplit("/s", 1)[1]
        response = await http.get(f"{self.sandbox}/shopify/s{shop}/admin/api/2024-10/products.json",
                                  params={"limit": 250}, headers={"X-Shopify-Access-Token": f"t{shop}"})
        if response.status_code == 200:
            return [str(p["id"]) for p in response.json()["products"]][:50]
        raise RuntimeError(f"cannot list the soak shop's products: {response.status_code} {response.text[:200]}")

    async def _pos(self, http: httpx.AsyncClient, products: list[str]) -> None:
        while self._running():
            await asyncio.sleep(self.rng.expovariate(1 / self.args.pos_every))
            product, quantity = self.rng.choice(products), self.rng.randint(0, 40)
            await call(self.tally, "pos stock change",
                       lambda: http.post(f"{self.sandbox}{self.pos_control}/products/{product}/stock",
                                         json={"quantity": quantity}))

    async def _syncs(self) -> None:
        """A manual sync request now and then, rotating over the jobs (what the CLI/API queue)."""
        from pipelines.definitions import JOBS_BY_SYSTEM
        from resources.warehouse import engine_for
        from warehouse.sync_progress import Busy, request_manual_sync
        from warehouse.syncs import request_sync

        engine = engine_for(self.url)
        plan = [(MX_TENANT, JOBS_BY_SYSTEM["mx_merchant"].name), (TENANT, JOBS_BY_SYSTEM["esimcard"].name),
                (TENANT, JOBS_BY_SYSTEM["stripe"].name), (POS_TENANT, JOBS_BY_SYSTEM["shopify"].name)]
        turn = 0
        while self._running():
            await asyncio.sleep(self.args.sync_every)
            tenant, job = plan[turn % len(plan)]
            turn += 1

            def queue() -> str:
                if tenant == MX_TENANT:
                    try:
                        request_manual_sync(engine, tenant, job, "soak")
                    except Busy:
                        return "busy"
                    return "queued"
                with engine.begin() as conn:
                    request_sync(conn, tenant, job, "soak")
                return "queued"

            self.sync_requests[(job, await asyncio.to_thread(queue))] += 1
        engine.dispose()

    async def _reads(self, http: httpx.AsyncClient) -> None:
        """Customers looking at their order pages and the catalog, as they do meanwhile."""
        while self._running():
            await asyncio.sleep(self.rng.uniform(0.5, 2))
            await call(self.tally, "catalog", lambda: http.get(f"{self.api}/shops/{TENANT}/catalog",
                                                               params={"country": "JP"}))
            await call(self.tally, "readyz", lambda: http.get(f"{self.api}/readyz"))


# -- measurements ----------------------------------------------------------------------------

class Sampler(threading.Thread):
    """RSS of each named process every ``every`` seconds."""

    def __init__(self, pids: dict[str, int], every: float = 10) -> None:
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.samples: list[tuple[float, dict[str, float | None]]] = []
        self.halt = threading.Event()

    def sample(self) -> dict[str, float | None]:
        values = {name: rss_mib(pid) for name, pid in self.pids.items()}
        self.samples.append((time.time(), values))
        return values

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.sample()

    def at(self, when: float) -> dict[str, float | None]:
        """The sample nearest ``when``."""
        return min(self.samples, key=lambda s: abs(s[0] - when))[1]


def stripe_deliveries(sandbox: str, tally: Tally, seen: set[str]) -> None:
    """Webhook deliveries the sandbox made to the API, into the tally by the time they were made."""
    attempts = httpx.get(f"{sandbox}/_sandbox/stripe/deliveries", params={"api_key": STRIPE_KEY}, timeout=60).json()
    for a in attempts["data"]:
        if a.get("id") in seen or a.get("created") is None:
            continue
        seen.add(a["id"])
        code = a.get("status_code")
        outcome = "ok" if a.get("succeeded") else ("5xx" if code and code >= 500 else
                                                    (str(code) if code else "timeout" if "Timeout" in str(a.get("error"))
                                                     else "error"))
        tally.add("stripe webhook delivery", outcome, at=a["created"], example=a.get("error"))


def pos_deliveries(sandbox: str) -> list[dict]:
    return httpx.get(f"{sandbox}/_sandbox/shopify/webhooks", timeout=60).json()


def run_records(env: dict[str, str]) -> list[tuple[float, str, str]]:
    """(created, job, status) of every run of the instance (read in a fresh process, as a client)."""
    code = ("import json,dagster as dg\n"
            "i=dg.DagsterInstance.get()\n"
            "print(json.dumps([(r.create_timestamp.timestamp(), r.dagster_run.job_name, r.dagster_run.status.value)"
            " for r in i.get_run_records(limit=100000)]))")
    for attempt in range(5):  # the PostgreSQL server is shared: its connection slots can run out for a while
        done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        if done.returncode == 0:
            return [tuple(r) for r in json.loads(done.stdout.strip().splitlines()[-1])]
        time.sleep(10 * (attempt + 1))
    raise RuntimeError(done.stderr[-2000:])


def failed_run_reasons(env: dict[str, str]) -> list[str]:
    """For each failed run: its job, tags and the error events that say why (engine errors, step
    failures, the run's failure), read before the scratch instance is dropped."""
    code = ("import json,dagster as dg\n"
            "i=dg.DagsterInstance.get()\n"
            "out=[]\n"
            "for r in i.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):\n"
            "    run=r.dagster_run\n"
            "    why=[]\n"
            "    for e in i.all_logs(run.run_id):\n"
            "        d=e.dagster_event\n"
            "        if d is None or not (d.is_failure or d.event_type_value in ('ENGINE_EVENT','PIPELINE_FAILURE')):\n"
            "            continue\n"
            "        err=getattr(d.event_specific_data,'error',None)\n"
            "        if d.event_type_value=='ENGINE_EVENT' and err is None:\n"
            "            continue\n"
            "        why.append(f'{d.event_type_value}: {d.message} ' + ((err.message.strip()[:300] + (' <- ' + err.cause.message.strip()[:300] if err.cause else '')) if err else ''))\n"
            "    tags={k:v for k,v in run.tags.items() if k in ('dagster/partition','dagster/sensor_name','dagster/schedule_name')}\n"
            "    out.append(f'{run.job_name} {run.run_id[:8]} {tags}: ' + ' | '.join(why))\n"
            "print(json.dumps(out))")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return [f"(unreadable: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode})"]
    return json.loads(done.stdout.strip().splitlines()[-1])


UNFINISHED = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}


def dagster_runs(env: dict[str, str], tally: Tally, since: float, timeout: float = 300) -> dict[str, int]:
    """Once the runs have finished (or ``timeout``): each run created since ``since`` into the
    tally by its creation time; counts by status."""
    deadline = time.monotonic() + timeout
    records = run_records(env)
    while any(status in UNFINISHED for _, _, status in records) and time.monotonic() < deadline:
        time.sleep(10)
        records = run_records(env)
    by_status: collections.Counter = collections.Counter()
    for created, job, status in records:
        if created < since:
            continue
        outcome = {"SUCCESS": "ok", "FAILURE": "failed", "CANCELED": "canceled"}.get(status, status.lower())
        tally.add(f"dagster run {job}", outcome, at=created)
        tally.add("dagster runs (all)", outcome, at=created)
        by_status[status] += 1
    return dict(by_status)


STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)")


LOGGED_KINDS = ("ERROR lines", "tracebacks")


def log_errors(path: Path, kind: str, tally: Tally, since: float) -> None:
    """ERROR lines and tracebacks of a process's output, by the time stamp nearest above them."""
    import datetime as dt

    for what in LOGGED_KINDS:
        tally.counts[(0, f"{kind} {what}", "logged")] += 0  # a row even when there is none

    at = since
    with contextlib.suppress(OSError), open(path, errors="replace") as lines:
        for line in lines:
            if m := STAMP.search(line):
                with contextlib.suppress(ValueError):
                    at = dt.datetime.fromisoformat(f"{m[1]}T{m[2]}+00:00").timestamp()
            if at < since:
                continue
            if "Traceback (most recent call last)" in line:
                tally.add(f"{kind} tracebacks", "logged", at=at, example=line)
            elif re.search(r"\bERROR\b|\"level\": ?\"error\"", line):
                tally.add(f"{kind} ERROR lines", "logged", at=at, example=line)


def drain(url: str, timeout: float = 240) -> dict[str, int]:
    """Wait until no order is mid-way (paid, processing) and no provisioning job is open."""
    from resources.warehouse import engine_for
    from warehouse.tables.orders import orders, provisioning_jobs

    engine = engine_for(url)
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            busy = conn.execute(sa.select(sa.func.count()).select_from(orders).where(
                orders.c.tenant_id == TENANT, orders.c.status.in_(["paid", "processing"]))).scalar_one()
            jobs = conn.execute(sa.select(sa.func.count()).select_from(provisioning_jobs).where(
                provisioning_jobs.c.tenant_id == TENANT, provisioning_jobs.c.state != "done")).scalar_one()
        if (busy == 0 and jobs == 0) or time.monotonic() > deadline:
            return {"orders paid/processing": busy, "provisioning jobs open": jobs}
        time.sleep(2)


def accounting(url: str, sandbox: str, load: Load) -> tuple[list[str], list[str]]:
    """(lines to print, problems): every checkout's order, by SQL and by the providers' lists."""
    from resources.warehouse import engine_for
    from warehouse.tables.orders import order_effects, order_esims, orders, provisioning_attempts

    engine = engine_for(url)
    o, e, a, f = orders.c, order_esims.c, provisioning_attempts.c, order_effects.c
    with engine.connect() as conn:
        rows = {r.order_id: r for r in conn.execute(sa.select(o.order_id, o.status, o.quantity).where(
            o.tenant_id == TENANT))}
        esims = dict(conn.execute(sa.select(e.order_id, sa.func.count()).where(e.tenant_id == TENANT)
                                  .group_by(e.order_id)).all())
        double_success = conn.execute(sa.select(a.order_id, a.unit, sa.func.count()).where(
            a.tenant_id == TENANT, a.outcome == "succeeded").group_by(a.order_id, a.unit)
            .having(sa.func.count() > 1)).all()
        effects = conn.execute(sa.select(f.kind, f.state, sa.func.count()).where(f.tenant_id == TENANT)
                               .group_by(f.kind, f.state)).all()
    bought: collections.Counter = collections.Counter()
    for provider in ("esimcard", "mobimatter", "airalo"):
        for order in httpx.get(f"{sandbox}/_sandbox/{provider}/orders", timeout=60).json()["orders"]:
            bought[str(order["reference"])] += int(order.get("quantity") or 1)
    emails: collections.Counter = collections.Counter()
    for email in httpx.get(f"{sandbox}/_sandbox/resend/emails", timeout=60).json()["emails"]:
        tags = {t.get("name"): t.get("value") for t in email.get("tags") or []}
        if tags.get("kind") == "esim_ready":
            emails[tags.get("order")] += 1
    problems = []
    lost = sorted(set(load.orders) - set(rows))
    extra = sorted(set(rows) - set(load.orders))
    if lost:
        problems.append(f"{len(lost)} checkouts answered 201 have no order row: {lost[:5]}")
    if extra:
        problems.append(f"{len(extra)} order rows no checkout answered (a replay made a second order?): {extra[:5]}")
    if load.replay_mismatch:
        problems.append(f"{len(load.replay_mismatch)} replays of a checkout answered another order")
    by_fate: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for order_id, fate in load.orders.items():
        row = rows.get(order_id)
        by_fate[fate][row.status if row else "MISSING"] += 1
    paid_fates = {"pay", "async_ok"}
    twice, short, unpaid_provisioned, provider_twice, emailed_twice = [], [], [], [], []
    for order_id, row in rows.items():
        n = esims.get(order_id, 0)
        units_bought = sum(c for ref, c in bought.items() if ref == order_id or ref.startswith(f"{order_id}-"))
        if n > row.quantity:
            twice.append(order_id)
        if units_bought > row.quantity:
            provider_twice.append(f"{order_id} ({units_bought} bought for {row.quantity})")
        if load.orders.get(order_id) in paid_fates and row.status == "provisioned" and n != row.quantity:
            short.append(order_id)
        if emails[order_id] > 1:
            emailed_twice.append(f"{order_id} ({emails[order_id]} emails)")
        if load.orders.get(order_id) not in paid_fates and (n or units_bought):
            unpaid_provisioned.append(order_id)
    not_done = [oid for oid, fate in load.orders.items() if fate in paid_fates
                and (rows.get(oid) is None or rows[oid].status not in {"provisioned", "partially_provisioned",
                                                                       "failed", "refunded"})]
    for name, found in (("orders with more eSIMs than bought", twice), ("units succeeded twice", double_success),
                        ("providers sold more than the order's quantity", provider_twice),
                        ("provisioned orders missing eSIMs", short),
                        ("unpaid orders provisioned", unpaid_provisioned),
                        ("orders whose customer got the eSIM email more than once", emailed_twice),
                        ("paid orders not in a final state after the drain", not_done)):
        if found:
            problems.append(f"{len(found)} {name}: {list(found)[:5]}")
    lines = [f"checkouts answered 201: {len(load.orders)}; order rows for the shop: {len(rows)}; "
             f"lost {len(lost)}, extra {len(extra)}, replays answering another order {len(load.replay_mismatch)}"]
    for fate, statuses in sorted(by_fate.items()):
        lines.append(f"  customer {fate:<12} → " + ", ".join(f"{s} {c}" for s, c in statuses.most_common()))
    provisioned = [oid for oid, r in rows.items() if r.status == "provisioned"]
    lines.append(f"provisioned orders {len(provisioned)}: eSIMs in the warehouse {sum(esims.get(x, 0) for x in provisioned)}"
                 f" = units ordered {sum(rows[x].quantity for x in provisioned)}; bought at the providers "
                 f"{sum(bought.values())} units in all; eSIM emails sent {sum(emails.values())} "
                 f"to {len(emails)} orders")
    lines.append("order effects: " + ", ".join(f"{k}/{s} {c}" for k, s, c in sorted(effects)))
    engine.dispose()
    return lines, problems


# -- the run ---------------------------------------------------------------------------------

def report_windows(tally: Tally, windows: int) -> list[str]:
    kinds = sorted({k for _, k, _ in tally.counts})
    head = f"{'':<38}" + "".join(f"{f'{w * tally.window_s / 60:.0f}-{(w + 1) * tally.window_s / 60:.0f} min':>22}"
                                 for w in range(windows))
    lines = [head]
    for kind in kinds:
        cells = []
        for w in range(windows):
            c = {o: n for (ww, k, o), n in tally.counts.items() if ww == w and k == kind}
            if kind.endswith(LOGGED_KINDS):
                cells.append(str(c.get("logged", 0)))
                continue
            ok = c.pop("ok", 0)
            bad = " ".join(f"{o}:{n}" for o, n in sorted(c.items()))
            cells.append(f"{ok} ok" + (f" {bad}" if bad else ""))
        lines.append(f"{kind:<38}" + "".join(f"{cell:>22}" for cell in cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server (scratch databases sh_soak_* made there)")
    parser.add_argument("--base-port", type=int, default=9220, help="sandbox, API, code server, webserver: +0..+3")
    parser.add_argument("--checkouts-per-s", type=float, default=1.5)
    parser.add_argument("--pos-every", type=float, default=4.0, help="mean seconds between POS stock changes")
    parser.add_argument("--sync-every", type=float, default=60.0, help="seconds between manual sync requests")
    parser.add_argument("--malloc-arena-max", default="2",
                        help="glibc's MALLOC_ARENA_MAX for every process, as the image sets it (default 2; glibc's own "
                             "default is 8 per core)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of load before the first RSS figure")
    parser.add_argument("--window", type=float, help="minutes per error window (default: 5, or 1 under 15 minutes)")
    parser.add_argument("--timeout", type=float, default=15.0, help="client timeout per request, seconds")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--settle", type=float, default=300, help="seconds to wait for unfinished runs at the end")
    parser.add_argument("--log-dir", type=Path, help="where the Dagster processes' output goes (default: a new "
                        "folder under the temporary directory, kept)")
    args = parser.parse_args()
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="soak-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    window_s = 60 * (args.window or (5 if args.minutes >= 15 else 1))
    ports = {k: args.base_port + i for i, k in enumerate(("sandbox", "api", "grpc", "ui"))}
    print(f"soak: {args.minutes:g} min, {machine()}\nthe API's and Dagster's output in {log_dir}\nload average at start {load_avg()} "
          "(the machine is shared with other sessions)\n"
          f"every process with MALLOC_ARENA_MAX={args.malloc_arena_max}", flush=True)
    with scratch_pg(args.pg, prefix="storehouse_soak_wh") as url, scratch_pg(args.pg, prefix="storehouse_soak_dg") as dagster_url, \
            tempfile.TemporaryDirectory(prefix="soak-") as tmp, SandboxProcess(ports["sandbox"]) as sandbox:
        from warehouse.migrate import upgrade

        home = Path(tmp)
        upgrade(url)
        api_url = f"http://127.0.0.1:{ports['api']}"
        env = {**os.environ, "STOREHOUSE_HOME": str(home), "DATABASE_URL": url, "PYTHONPATH": str(ROOT),
               "DAGSTER_HOME": str(home / "dagster"), "STOREHOUSE_SANDBOX_PORT": str(ports["sandbox"]),
               "STOREHOUSE_SHOP_PUBLIC_URL": api_url, "STOREHOUSE_SHOP_SECRET_KEY": SECRET,
               "MALLOC_ARENA_MAX": args.malloc_arena_max}  # as deploy/Dockerfile sets it
        os.environ.update({k: env[k] for k in ("STOREHOUSE_HOME", "DATABASE_URL", "DAGSTER_HOME", "MALLOC_ARENA_MAX")})
        # the instance as deployed (storehouse/instance.py: queued coordinator, pools, run retries and
        # monitoring, no asset daemon), on dagster-postgres through psycopg2: with SQLAlchemy 2.1 a bare
        # postgresql:// URL means psycopg 3, on which dagster-postgres's NOTIFY fails
        env[DAGSTER_DB_VAR] = os.environ[DAGSTER_DB_VAR] = psycopg2_url(dagster_url)
        prepare_instance(Settings())
        t0 = time.perf_counter()
        from resources.dbt import prepare_manifest

        prepare_manifest()  # the marts' dbt manifest, which the definitions read (as `storehouse demo` does)
        stocked = plenty_of_stock(sandbox.url)
        with contextlib.redirect_stderr(io.StringIO()):  # the catalog run's debug log
            open_storefront(url, sandbox.url, api_url)
        connect_email(url, sandbox.url)
        pos_control = open_pos_shop(url, sandbox.url, api_url)
        register_mx_tenant(url, sandbox.url)
        httpx.put(f"{sandbox.url}/_sandbox/stripe/accounts/{STRIPE_KEY}/delivery", json={
            "duplicates": 2, "order": "shuffle", "hold_ms": 700, "concurrent": True}).raise_for_status()
        print(f"{stocked} eSIM packages stocked; tenants {TENANT} (eSIM shop), {POS_TENANT} (Shopify), {MX_TENANT} (MX) ready in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        metrics = home / "prometheus"
        metrics.mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)  # two workers: /metrics sums both, as `storehouse api`
        api_process = api_server(url, 2, ports["api"], log=log_dir / "api.log")
        api_process.start_timeout = 600  # two workers importing the app on a machine at load 25+
        with api_process as api, Dagster(home / "dagster", env, ports["grpc"], ports["ui"],
                                                                    log_dir / "dagster.log") as dg:
            workers = sorted(p for p in children(api.proc.pid) if "resource_tracker" not in cmdline(p))
            pids = {"sandbox": sandbox.proc.pid, "API master": api.proc.pid,
                    **{f"API worker {i + 1}": pid for i, pid in enumerate(workers)},
                    **{name: proc.pid for name, proc in dg.procs.items()}}
            print("processes: " + ", ".join(f"{n} {p}" for n, p in pids.items()), flush=True)
            sampler = Sampler(pids)
            sampler.sample()
            start = time.time()
            tally = Tally(start, window_s)
            load = Load(args, api.url, sandbox.url, pos_control, url, tally)
            sampler.start()
            seconds = args.minutes * 60
            asyncio.run(load.run(seconds))
            end_load = time.time()
            end_rss = sampler.sample()
            sampler.halt.set()
            print(f"load done after {(end_load - start) / 60:.1f} min; load average {load_avg()}; draining…", flush=True)
            httpx.post(f"{sandbox.url}/_sandbox/stripe/flush", json={"timeout_s": 60}, timeout=90)
            left = drain(url)
            seen: set[str] = set()
            stripe_deliveries(sandbox.url, tally, seen)
            try:
                runs = dagster_runs(env, tally, start, timeout=args.settle)
            except RuntimeError as exc:  # the report goes on without them, saying so
                runs = {"unreadable": str(exc).strip().splitlines()[-1]}
            failures = failed_run_reasons(env) if runs.get("FAILURE") else []
            hooks = pos_deliveries(sandbox.url)
            log_errors(log_dir / "api.log", "API log", tally, start)
            log_errors(log_dir / "dagster.log", "Dagster log", tally, start)
            lines, problems = accounting(url, sandbox.url, load)
            warm = sampler.at(start + args.warmup)
            first = sampler.samples[0][1]
    windows = max(int(-(-seconds // window_s)), 1 + max((w for w, _, _ in tally.counts), default=0))
    print(f"\n== errors per {window_s / 60:g}-minute window (ok, then anything else: 5xx, timeout, error, "
          "other status, failed runs) ==")
    print("\n".join(report_windows(tally, windows)))
    failed_hooks = [h for h in hooks if h.get("status") != "delivered"]
    print(f"POS webhook deliveries (Shopify → API): {len(hooks)}, not delivered {len(failed_hooks)}, "
          f"retried {sum(1 for h in hooks if h.get('attempts', 1) > 1)}; answers other than 2xx: "
          f"{collections.Counter(c for h in hooks for c in h.get('responses', []) if not str(c).startswith('2'))}")
    print(f"Dagster runs created during the load: {runs}; sync requests queued: "
          + ", ".join(f"{j} {s} {n}" for (j, s), n in sorted(load.sync_requests.items())))
    for key, example in sorted(tally.examples.items()):
        print(f"  e.g. {key}: {example}")
    for reason in failures:
        print(f"  failed run: {reason}")
    print(f"\n== RSS (MiB): at start, after the {args.warmup:g} s warm-up, at the end of the load; growth from warm-up ==")
    for name in pids:
        a, w, b = first.get(name), warm.get(name), end_rss.get(name)
        peak = max((s[1].get(name) or 0) for s in sampler.samples)
        growth = f"{(b - w) / w * 100:+.1f} %" if w and b else "?"
        print(f"  {name:<20} {a or 0:8.1f} {w or 0:8.1f} {b or 0:8.1f}   {growth:>8}   (peak {peak:.1f})")
    print(f"RSS (MiB) at the end of each {window_s / 60:g}-minute window, to tell growth that levels off from a leak:")
    for name in pids:
        curve = [sampler.at(start + (k + 1) * window_s).get(name) for k in range(int(-(-seconds // window_s)))]
        print(f"  {name:<20} " + " ".join(f"{v:7.1f}" if v else "      ?" for v in curve))
    print(f"\n== orders (after the drain: {left}) ==")
    print("\n".join(lines))
    print("\nPROBLEMS:\n  " + "\n  ".join(problems) if problems else "\nno order lost, none provisioned twice")
    print(f"load average at the end {load_avg()}")


if __name__ == "__main__":
    main()
