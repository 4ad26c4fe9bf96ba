"""Fan-out: N tenants' hourly MX refresh with nothing new, driven through the Dagster daemon.

The production shape on this machine: a Dagster instance on PostgreSQL (``dagster-postgres``),
the ``QueuedRunCoordinator``, a gRPC code server, ``dagster-daemon``, the default run launcher
(one run worker process per run), a PostgreSQL warehouse, and the sandbox in its own process.
For each N: N tenants, each with its own MX merchant on the sandbox, are seeded and synced once
(in this process, through the sync engine; discovery's partitions added as it would), then the
``mx_merchant_sync_schedule``'s latest tick is made due and the daemon is started: schedule tick
→ runs → done. Printed per N: wall time (tick to last run's end), runs launched, API calls (the
sandbox's own count), and CPU seconds per tenant, summed over every process the bench started
(daemon, code server, run workers, sandbox) and the PostgreSQL backends serving the two
databases, each apart. Above the measured N the curve is extrapolated (labelled) from the
measured fixed and per-tenant costs.

    python bench/fanout_bench.py                    # N = 100 and 1,000
    python bench/fanout_bench.py --tenants 100      # one N
    python bench/fanout_bench.py --extrapolate 10000,100000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, SandboxProcess, load_avg, machine, psycopg2_url  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
DBS = {"warehouse": "sh_fanout_bench_wh", "dagster": "sh_fanout_bench_dg"}
CODE_PORT = 9141
SANDBOX_PORT = 9142
SCHEDULE = "mx_merchant_sync_schedule"
TX_PER_MERCHANT = 5
TICK = os.sysconf("SC_CLK_TCK")

DAGSTER_YAML = """\
telemetry:
  enabled: false
{storage}run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 2
run_launcher:
  module: dagster._core.launcher
  class: DefaultRunLauncher
concurrency:
  runs:
    max_concurrent_runs: 2          # two cores
    tag_concurrency_limits:
      - key: "dagster/partition"    # one run at a time per tenant (runs of a range hold the ledger's lease)
        limit: 1
        value:
          applyLimitPerUniqueValue: true
  pools:
    default_limit: 4
"""
WORKSPACE_YAML = f"""\
load_from:
  - grpc_server:
      host: 127.0.0.1
      port: {CODE_PORT}
      location_name: storehouse
"""


# -- CPU of every process the bench started, and of the PostgreSQL backends ----------------------

def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _kind(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    if "dagster-daemon" in cmd:
        return "daemon"
    if "code-server" in cmd or "grpc" in cmd:
        return "code server"
    if "execute_run" in cmd or "multiprocessing.spawn" in cmd or "tail -F" in cmd:
        return "run workers"  # the code server starts each run in a spawned process, which tails its logs
    if "sandbox" in cmd:
        return "sandbox"
    return "other"


class CpuSampler:
    """Samples, every ``every`` s, the CPU of each descendant of this process and of each
    PostgreSQL backend serving the bench's databases; keeps each pid's last value (a process
    that ended keeps what it had used at its last sample, at most ``every`` s short)."""

    def __init__(self, pg_admin, every: float = 0.2):
        self.pg_admin, self.every = pg_admin, every
        self.last: dict[int, tuple[str, float]] = {}
        self.base: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _descendants(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                found = _stat(int(entry.name))
                if found:
                    parents[int(entry.name)] = found[0]
        me, out, frontier = os.getpid(), [], {os.getpid()}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier and pid != me}
            out += frontier
        return out

    def _pg_backends(self) -> list[int]:
        if self.pg_admin is None:
            return []
        with contextlib.suppress(Exception):
            return [r[0] for r in self.pg_admin.execute(
                "select pid from pg_stat_activity where datname = any(%s) and pid <> pg_backend_pid()",
                (list(DBS.values()),)).fetchall()]
        return []

    def sample(self) -> None:
        for pid, kind in [*((p, None) for p in self._descendants()), *((p, "postgresql") for p in self._pg_backends())]:
            found = _stat(pid)
            if found is None:
                continue
            if pid not in self.last:
                self.base.setdefault(pid, found[1] if kind == "postgresql" else 0.0)  # pooled backends: from now
            self.last[pid] = (kind or self.last.get(pid, (None,))[0] or _kind(pid), found[1])

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def start(self) -> "CpuSampler":
        """From now: what the processes already running (the code server, the sandbox) used
        before is not counted."""
        self.sample()
        self.base.update({pid: cpu for pid, (_, cpu) in self.last.items()})
        self._thread.start()
        return self

    def totals(self) -> dict[str, float]:
        self.sample()
        by_kind: dict[str, float] = defaultdict(float)
        for pid, (kind, cpu) in self.last.items():
            by_kind[kind] += cpu - self.base.get(pid, 0.0)
        return dict(by_kind)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.totals()


# -- set-up --------------------------------------------------------------------------------

# dagster-postgres runs on psycopg2, named in the URL (SQLAlchemy 2.1 reads a bare postgresql:// as
# psycopg 3, on which its `NOTIFY run_events, :id` fails and the schedule's tick dies: see
# storehouse.instance.check_dagster_url).
PG_STORAGE = """\
storage:
  postgres:
    postgres_url: {pg_url}
"""


def fresh_databases(admin, home: Path) -> dict[str, str]:
    """The warehouse's and the Dagster instance's databases, new: PostgreSQL (the production
    shape), or with ``admin`` None SQLite files under ``home`` (Dagster's default storage)."""
    if admin is None:
        return {"warehouse": f"sqlite:///{home}/warehouse.db", "dagster": ""}
    for name in DBS.values():
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return {role: f"{PG}/{name}" for role, name in DBS.items()}


def seed(n: int, sandbox_url: str, warehouse_url: str) -> list[str]:
    """N tenants, each with its own sandbox merchant, synced once through the sync engine."""
    import httpx

    from resources.dagster_resources import MxMerchantResource
    from syncing.mx import MxSyncOptions, sync_invoices, sync_products, sync_transactions
    from warehouse.db import make_engine
    from warehouse.migrate import upgrade
    from warehouse.tenants import add_tenant, get_connection, set_connection

    upgrade(warehouse_url)
    engine = make_engine(warehouse_url)
    tenants = [f"fan-{i:05d}" for i in range(n)]
    resource = MxMerchantResource()

    def one(i_tenant: tuple[int, str]) -> None:
        i, tenant = i_tenant
        merchant_id = 3_000_000 + i
        body = {"merchant_id": merchant_id, "consumer_key": f"k{merchant_id}", "consumer_secret": f"s{merchant_id}",
                "transactions": TX_PER_MERCHANT, "seed": i % 97}
        httpx.post(f"{sandbox_url}/_sandbox/mx/merchants", json=body, timeout=30).raise_for_status()
        with engine.begin() as conn:
            add_tenant(conn, tenant, tenant)
            set_connection(conn, tenant, "mx_merchant", f"{sandbox_url}/mx",
                           {"merchant_id": merchant_id, "consumer_key": body["consumer_key"],
                            "consumer_secret": body["consumer_secret"]}, {})
            connection = get_connection(conn, tenant, "mx_merchant")
        client = resource.client_for(connection)
        try:
            sync_transactions(engine, client, tenant, MxSyncOptions())
            sync_invoices(engine, client, tenant, MxSyncOptions())
            sync_products(engine, tenant, {})
        finally:
            client.close()

    with engine.begin() as conn:  # the first connection makes the key; then threads share it
        add_tenant(conn, "fan-key", "fan-key")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, enumerate(tenants)))
    engine.dispose()
    return tenants


def sandbox_calls(sandbox_url: str, n: int) -> int:
    import httpx

    total = 0
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            calls = client.get(f"{sandbox_url}/_sandbox/mx/merchants/{3_000_000 + i}/stats").json()["calls"]
            total += sum(calls.values())
    return total


def backdate_schedule(instance, when: dt.datetime) -> None:
    """Make the schedule's latest tick due now: its state says it has run since ``when``, so
    the daemon's first look finds the tick at :15 past it not yet evaluated (what it does after
    a restart across a tick)."""
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus, ScheduleInstigatorData
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with WorkspaceProcessContext(instance, WorkspaceFileTarget([str(instance.root_directory) + "/workspace.yaml"])
                                 ) as ctx:
        location = ctx.create_request_context().get_code_location("storehouse")
        [repo] = location.get_repositories().values()
        schedule = repo.get_schedule(SCHEDULE)
        state = InstigatorState(schedule.get_remote_origin(), InstigatorType.SCHEDULE, InstigatorStatus.RUNNING,
                                ScheduleInstigatorData(schedule.cron_schedule, start_timestamp=when.timestamp()))
        existing = instance.get_instigator_state(schedule.get_remote_origin_id(), schedule.selector_id)
        (instance.update_instigator_state if existing else instance.add_instigator_state)(state)


def wait_for_first_run(instance, deadline_s: float) -> float:
    import dagster as dg

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        records = instance.get_run_records(dg.RunsFilter(tags={"dagster/schedule_name": SCHEDULE}), limit=1,
                                           order_by="create_timestamp", ascending=True)
        if records:
            return records[0].create_timestamp.timestamp()
        time.sleep(0.2)
    raise RuntimeError("the schedule launched no run")


def wait_for_runs(instance, deadline_s: float) -> tuple[list, float | None]:
    """The schedule's runs once its tick has launched them all and they ended."""
    import dagster as dg

    done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        ticks = [t for t in instance.get_ticks(*_schedule_ids(instance)) if t.status.value != "STARTED"] \
            if _schedule_ids(instance) else []
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/schedule_name": SCHEDULE}))
        if ticks and runs and all(r.status in done for r in runs) and len(runs) >= len(ticks[0].run_ids):
            return runs, ticks[0].timestamp
        time.sleep(1)
    return instance.get_runs(dg.RunsFilter(tags={"dagster/schedule_name": SCHEDULE})), None


_IDS: dict = {}


def _schedule_ids(instance):
    if not _IDS:
        for state in instance.all_instigator_state():
            if state.name == SCHEDULE:
                _IDS["ids"] = (state.instigator_origin_id, state.selector_id)
    return _IDS.get("ids")


def measure(n: int, admin) -> dict:
    import dagster as dg
    import psycopg

    home = Path(f"/tmp/fanout-bench-{n}")
    subprocess.run(["rm", "-rf", str(home)], check=True)
    home.mkdir(parents=True)
    urls = fresh_databases(admin, home)
    storage = PG_STORAGE.format(pg_url=psycopg2_url(urls["dagster"])) if admin is not None else ""
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(storage=storage))
    (home / "workspace.yaml").write_text(WORKSPACE_YAML)
    env = {**os.environ, "DAGSTER_GRPC_TIMEOUT_SECONDS": "300",  # a loaded machine starts runs slowly
           "DAGSTER_HOME": str(home), "DATABASE_URL": urls["warehouse"],
           "STOREHOUSE_HOME": str(home / "storehouse"), "STOREHOUSE_SECRETS_KEY_FILE": str(home / "secrets.key"),
           "PYTHONPATH": str(ROOT)}
    os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "DATABASE_URL", "STOREHOUSE_HOME",
                                           "STOREHOUSE_SECRETS_KEY_FILE")})
    bin_dir = Path(sys.executable).parent
    sampler_admin = psycopg.connect(f"{PG}/postgres", autocommit=True) if admin is not None else None
    with SandboxProcess(SANDBOX_PORT) as sandbox:
        t0 = time.perf_counter()
        tenants = seed(n, sandbox.url, urls["warehouse"])
        seeded_s = time.perf_counter() - t0
        seed_calls = sandbox_calls(sandbox.url, n)
        instance = dg.DagsterInstance.get()
        from pipelines.definitions import RESOURCES
        from sensors.tenants import reconcile_partitions

        reconcile_partitions(instance, RESOURCES["warehouse"])  # what tenant discovery's first tick does
        code = subprocess.Popen([str(bin_dir / "dagster"), "code-server", "start", "-m", "pipelines.definitions",
                                 "-a", "defs", "-h", "127.0.0.1", "-p", str(CODE_PORT), "--log-level", "warning"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(home / "code.log", "w"))
        daemon = None
        try:
            _wait_port(CODE_PORT, 120)
            now = dt.datetime.now(dt.timezone.utc)
            last_tick = now.replace(minute=15, second=0, microsecond=0)
            if last_tick > now:
                last_tick -= dt.timedelta(hours=1)
            backdate_schedule(instance, last_tick - dt.timedelta(seconds=1))
            sampler = CpuSampler(sampler_admin).start()
            started = time.time()
            daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                      stderr=open(home / "daemon.log", "w"))
            first_run = wait_for_first_run(instance, 600)
            at_first_run = sampler.totals()  # the daemon's start-up and the tick's evaluation
            runs, _ = wait_for_runs(instance, deadline_s=3600)
            ended = max((rec.end_time or 0 for rec in instance.get_run_records(
                dg.RunsFilter(tags={"dagster/schedule_name": SCHEDULE}))), default=time.time())
            cpu = sampler.stop()
        finally:
            for proc in (daemon, code):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(30)
                    if proc.poll() is None:
                        proc.kill()
        calls = sandbox_calls(sandbox.url, n) - seed_calls
    if sampler_admin is not None:
        sampler_admin.close()
    statuses = defaultdict(int)
    for run in runs:
        statuses[run.status.value] += 1
    materialized = _materialized(instance, tenants)
    instance.dispose()
    return {"n": n, "seeded_s": seeded_s, "wall_s": ended - first_run, "from_daemon_start_s": ended - started,
            "runs": len(runs), "statuses": dict(statuses), "calls": calls, "startup_cpu": at_first_run,
            "cpu": {k: v - at_first_run.get(k, 0.0) for k, v in cpu.items()}, "materialized": materialized,
            "load": load_avg()}


def _materialized(instance, tenants: list[str]) -> int:
    import dagster as dg

    from assets.partitions import mx_merchant_partitions

    status = instance.get_status_by_partition(dg.AssetKey(["mx_merchant", "product_categories"]), tenants,
                                              mx_merchant_partitions) or {}
    return sum(1 for s in status.values() if s == dg.AssetPartitionStatus.MATERIALIZED)


def _wait_port(port: int, timeout: float) -> None:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.5)
    raise RuntimeError(f"nothing listens on {port}")


def report(results: list[dict], extrapolate: list[int], storage: str) -> None:
    print(f"\nfanout_bench · {machine()} · MX no-change hourly refresh through the daemon "
          f"({TX_PER_MERCHANT} payments per merchant) · warehouse and Dagster storage on {storage}")
    kinds = sorted({k for r in results for k in r["cpu"]})
    print("CPU: from the tick's first run to the last run's end, per process kind (the daemon's start-up and "
          "its first tick evaluation listed apart below); wall: first run created → last run ended")
    print("| N | wall s | runs | API calls | CPU s/tenant (all) | " + " | ".join(kinds) + " | partitions materialised | load |")
    print("|---|---|---|---|---|" + "---|" * len(kinds) + "---|---|")
    for r in results:
        total = sum(r["cpu"].values())
        per = " | ".join(f"{r['cpu'].get(k, 0.0) / r['n']:.3f}" for k in kinds)
        print(f"| {r['n']:,} | {r['wall_s']:.1f} | {r['runs']} {r['statuses']} | {r['calls']:,} | "
              f"{total / r['n']:.3f} | {per} | {r['materialized']:,}/{r['n']:,} | {r['load']} |")
    for r in results:
        print(f"  N={r['n']}: seeded in {r['seeded_s']:.1f} s; daemon start → last run ended {r['from_daemon_start_s']:.1f} s; "
              f"CPU s total by process: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(r['cpu'].items()))
              + "; before the first run (daemon start-up, tick): "
              + ", ".join(f"{k} {v:.1f}" for k, v in sorted(r['startup_cpu'].items())))
    if len(results) >= 2 and extrapolate:
        a, b = results[0], results[-1]
        per_cpu = (sum(b["cpu"].values()) - sum(a["cpu"].values())) / (b["n"] - a["n"])
        fixed_cpu = sum(a["cpu"].values()) - per_cpu * a["n"]
        per_wall = (b["wall_s"] - a["wall_s"]) / (b["n"] - a["n"])
        fixed_wall = a["wall_s"] - per_wall * a["n"]
        print(f"\nEXTRAPOLATED (not measured; linear fit through N={a['n']} and N={b['n']}: "
              f"{fixed_cpu:.1f} s CPU + {per_cpu:.3f} s/tenant, wall {fixed_wall:.1f} s + {per_wall:.3f} s/tenant)")
        for n in extrapolate:
            print(f"| {n:,} (extrapolated) | {fixed_wall + per_wall * n:,.0f} | {-(-n // 50)} | {n:,} | "
                  f"{(fixed_cpu + per_cpu * n) / n:.3f} |")


def main() -> None:
    import psycopg

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", default="100,1000", help="comma-separated N to measure")
    parser.add_argument("--extrapolate", default="10000,100000", help="comma-separated N to extrapolate to")
    parser.add_argument("--sqlite", action="store_true", help="SQLite warehouse and Dagster storage instead of "
                        "PostgreSQL (the embedded default; for a PostgreSQL server without free connections)")
    args = parser.parse_args()
    results = []
    with (contextlib.nullcontext() if args.sqlite else psycopg.connect(f"{PG}/postgres", autocommit=True)) as admin:
        try:
            for n in [int(x) for x in args.tenants.split(",")]:
                results.append(measure(n, admin))
                report(results, [], "SQLite" if args.sqlite else "PostgreSQL")
        finally:
            for name in DBS.values() if admin is not None else ():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report(results, [int(x) for x in args.extrapolate.split(",") if x], "SQLite" if args.sqlite else "PostgreSQL")


if __name__ == "__main__":
    main()
