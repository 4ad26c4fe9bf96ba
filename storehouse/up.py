"""`storehouse up`: the sandbox, the shop API and the Dagster webserver with its daemon, together
in the foreground, on the ports the settings name.

Each runs as its own `storehouse` command (`sandbox`, `api`, `ui`) in its own process group;
Ctrl-C (or SIGTERM) stops them all, and so does any one of them exiting. Once all three answer,
the URLs are printed and, when the demo's eSIM shop is registered, its Stripe webhook is pointed
at this API, so a checkout paid in the sandbox completes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
from rich.console import Console

from settings import Settings

STOP_GRACE_S = 15


@dataclass
class Service:
    name: str
    argv: list[str]
    url: str
    ready_path: str  # answers 2xx once the service serves
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(self.url + self.ready_path, timeout=1).is_success
        return False


def plan(settings: Settings) -> list[Service]:
    """The three services, each a `storehouse` command on its port from the settings."""
    cli = [sys.executable, "-m", "storehouse.cli"]
    api_local = f"http://{settings.api_host}:{settings.api_port}"
    return [
        Service("sandbox", [*cli, "sandbox", "--port", str(settings.sandbox_port)], settings.sandbox_url, "/healthz"),
        Service("shop API", [*cli, "api", "--host", settings.api_host, "--port", str(settings.api_port)], api_local,
                "/readyz"),
        Service("Dagster UI", [*cli, "ui", "--host", settings.ui_host, "--port", str(settings.ui_port)],
                settings.ui_url, "/server_info"),
    ]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we cannot signal is still a member
        return True
    return True


def _stop(services: list[Service]) -> None:
    """Ctrl-C to each service's whole process group (what a terminal sends; each shuts down
    cleanly, `dagster dev` its webserver, daemon and code server too), then SIGKILL to whatever
    of a group outlives the grace period, so nothing is left running."""
    groups = [s.proc.pid for s in services if s.proc]
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for service in services:
        if service.proc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(max(0.1, deadline - time.monotonic()))
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    for service in services:
        if service.proc and service.proc.poll() is None:
            service.proc.wait(5)


def _connect_demo_storefront(console: Console, settings: Settings) -> None:
    """Point the demo shop's and the demo studio's Stripe webhooks at this API (the sandbox
    forgets them when it stops)."""
    import sqlalchemy as sa

    from resources.warehouse import engine_for
    from storehouse.demo_storefront import STOREFRONT, connect_webhook
    from storehouse.demo_studio import STUDIO
    from warehouse.tenants import get_connection

    engine = engine_for(settings.warehouse_url)
    try:
        for tenant, what in ((STOREFRONT, "checkouts complete"), (STUDIO, "invoices paid online settle")):
            with engine.connect() as conn:
                stripe = get_connection(conn, tenant, "stripe")
            if stripe is None or not stripe.base_url.startswith(settings.sandbox_url):
                continue
            connect_webhook(engine, settings.api_url, tenant)
            console.print(f"[green]✓[/] {tenant}'s Stripe webhook points at {settings.api_url}: {what}")
    except sa.exc.SQLAlchemyError as exc:  # no warehouse yet: nothing registered to connect
        console.print(f"[yellow]![/] demo shop not connected ({type(exc).__name__}); run `storehouse demo` first")
    finally:
        engine.dispose()


def run(console: Console, settings: Settings, start_timeout_s: float = 180) -> int:
    """Start everything, print where it is, and wait; the exit code for the command."""
    services = plan(settings)
    stopping = False

    def on_signal(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for service in services:
            console.print(f"starting {service.name}: {' '.join(service.argv[2:])}")
            service.proc = subprocess.Popen(service.argv, start_new_session=True, env=os.environ.copy())
        deadline = time.monotonic() + start_timeout_s
        waiting = list(services)
        while waiting and not stopping:
            for service in list(waiting):
                if service.proc.poll() is not None:
                    console.print(f"[red]✗[/] {service.name} exited ({service.proc.returncode}) before it served")
                    return 1
                if service.ready():
                    waiting.remove(service)
            if waiting and time.monotonic() > deadline:
                console.print(f"[red]✗[/] not up after {start_timeout_s:.0f} s: {', '.join(s.name for s in waiting)}")
                return 1
            time.sleep(0.5)
        if stopping:
            return 130
        _connect_demo_storefront(console, settings)
        console.print(
            "\n[bold]Storehouse is up[/] (Ctrl-C stops everything):\n"
            f"  • Dagster UI:  {settings.ui_url}   (webserver and daemon: schedules, sensors, sync requests)\n"
            f"  • Shop API:    {settings.api_url}   (OpenAPI at {settings.api_url}/docs)\n"
            f"  • Sandbox:     {settings.sandbox_url}   (the fake providers)\n"
        )
        while not stopping:
            for service in services:
                if service.proc.poll() is not None:
                    console.print(f"[red]✗[/] {service.name} exited ({service.proc.returncode}); stopping the rest")
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        console.print("stopping…")
        _stop(services)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
