"""Helpers shared by the benchmarks: repo on sys.path, rows as the sync makes them, RSS, medians,
a sandbox in its own process, and a scratch PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
TENANT = "bench-tenant"


# -- reporting -------------------------------------------------------------------------------

def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{platform.node()} · {os.cpu_count()} cores · {cpu} · Python {platform.python_version()}"


def peak_rss_mib() -> float:
    """Peak resident set of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_status_mib(pid: int | str, field: str) -> float | None:
    """A memory figure of a process from /proc (``VmRSS`` now, ``VmHWM`` its peak), in MiB;
    None once it has gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return None


def proc_peak_rss_mib(pid: int) -> float | None:
    """VmHWM (peak RSS) of another process."""
    return proc_status_mib(pid, "VmHWM")


def rss_mib(pid: int | str = "self") -> float | None:
    """VmRSS (resident set now) of a process, this one by default."""
    return proc_status_mib(pid, "VmRSS")


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return "/".join(f"{v:,.0f}" for v in values)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def load_avg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


# -- rows exactly as the sync produces them ------------------------------------------------------

def sync_rows(n: int, merchant_id: int = 1_000_777, seed: int = 5, tenant_id: str = TENANT) -> list[dict]:
    """``n`` normalised transaction rows: the sandbox's payments through the sync's own parser
    (pydantic ``Decimal`` amounts, tz-aware datetimes, strings), newest first like the API."""
    from syncing.mx import parse_payments
    from sandbox.mx_merchant import Merchant, MerchantSpec

    m = Merchant(MerchantSpec(merchant_id=merchant_id, consumer_key="k", consumer_secret="s",
                              transactions=n, seed=seed))
    rows: list[dict] = []
    for start in range(0, n, 10_000):
        raws = [m.payment(n - 1 - k) for k in range(start, min(n, start + 10_000))]
        parsed, rejected = parse_payments(tenant_id, raws)
        assert not rejected
        rows.extend(parsed)
    return rows


# -- the sandbox in its own process ---------------------------------------------------------

def free_port() -> int:
    """A free local port: any, or one of ``STOREHOUSE_BENCH_PORTS`` (``9200-9219``) when it is set,
    for a machine whose sessions share out port ranges."""
    span = os.environ.get("STOREHOUSE_BENCH_PORTS")
    candidates = [0]
    if span:
        low, _, high = span.partition("-")
        candidates = list(range(int(low), int(high or low) + 1))
        # Benches run side by side pick a port long before their server binds it: start each
        # process's search at its own place in the range so they do not pick the same one.
        start = os.getpid() % len(candidates)
        candidates = candidates[start:] + candidates[:start]
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            if not span or port not in _handed_out:
                _handed_out.add(s.getsockname()[1])
                return s.getsockname()[1]
    raise RuntimeError(f"no free port in STOREHOUSE_BENCH_PORTS={span}")


_handed_out: set[int] = set()  # a port handed out may not be bound yet when the next is asked for


class SandboxProcess:
    """``uvicorn sandbox.app:create_app`` in a child process (its CPU off our GIL)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "SandboxProcess":
        import httpx

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "sandbox.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
             "--no-access-log", "--lifespan", "off", "--backlog", "4096"],
            cwd=ROOT, stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120  # a shared machine under load starts it slowly
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.__exit__()  # not left running behind the error
                raise RuntimeError("sandbox did not start")
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            stop(self.proc, 10)

    def cpu_seconds(self) -> float | None:
        """User+system CPU the sandbox process has used (from /proc/<pid>/stat)."""
        with contextlib.suppress(OSError, AttributeError):
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return None


def stop(proc: subprocess.Popen, wait_s: float) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``wait_s``; reaped either way."""
    proc.terminate()
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def proc_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of any local process (e.g. a PostgreSQL backend)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- a scratch PostgreSQL database ------------------------------------------------------------

def psycopg2_url(url: str) -> str:
    """``url`` with the driver dagster-postgres runs on (storehouse.instance.check_dagster_url)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


@contextlib.contextmanager
def scratch_pg(base_url: str, prefix: str | None = None) -> Iterator[str]:
    """Create a uniquely named database (``prefix`` + a random tail) on ``base_url``'s server,
    yield its URL, drop it."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(base_url)
    # ``prefix``, else STOREHOUSE_BENCH_DB_PREFIX, else the URL's own database when it names one
    # (sh_x → sh_x_<hex>), so a session given its own databases keeps to them.
    own = parsed.database if parsed.database and parsed.database != "postgres" else "storehouse_bench"
    name = f"{prefix or os.environ.get('STOREHOUSE_BENCH_DB_PREFIX', own)}_{uuid.uuid4().hex[:8]}"
    admin = parsed.set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_dagster_home(base_url: str, prefix: str) -> Iterator[Path]:
    """A temporary DAGSTER_HOME whose instance is on a scratch ``dagster-postgres`` database (made
    by :func:`scratch_pg`, dropped after); ``DAGSTER_HOME`` is set to it for this process."""
    import tempfile

    with scratch_pg(base_url, prefix=prefix) as url, tempfile.TemporaryDirectory() as home:
        Path(home, "dagster.yaml").write_text('telemetry:\n  enabled: false\nstorage:\n  postgres:\n'
                                              f'    postgres_url: "{psycopg2_url(url)}"\n')
        os.environ["DAGSTER_HOME"] = home
        yield Path(home)
