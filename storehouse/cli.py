"""The `storehouse` command: demo, up, sandbox, migrate, tenants, sync, api, docs, ui."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from settings import Settings
from storehouse.users_cli import users_app

app = typer.Typer(help="Storehouse: commerce data for small merchants.", no_args_is_help=True, add_completion=False)
tenants_app = typer.Typer(help="Register, list and remove tenants.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
secrets_app = typer.Typer(help="The key that encrypts tenant credentials.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")
app.add_typer(users_app, name="users")
console = Console()


def _engine(settings: Settings) -> sa.Engine:
    from resources.warehouse import engine_for

    return engine_for(settings.warehouse_url)


def _migrate(settings: Settings) -> None:
    from warehouse.db import redact
    from warehouse.migrate import upgrade

    upgrade(settings.warehouse_url)
    console.print(f"[green]✓[/] warehouse migrated: {redact(settings.warehouse_url)}")


def _parse_pairs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@app.command()
def migrate() -> None:
    """Create or upgrade the warehouse schema (Alembic)."""
    _migrate(Settings())


@app.command()
def sandbox(port: Annotated[Optional[int], typer.Option(help="port (default STOREHOUSE_SANDBOX_PORT)")] = None) -> None:
    """Serve the fake providers on 127.0.0.1 in the foreground."""
    from sandbox.server import serve

    settings = Settings()
    serve(port or settings.sandbox_port, settings.sandbox_host)


@tenants_app.command("add")
def tenants_add(
    tenant: str,
    name: Annotated[Optional[str], typer.Option(help="display name")] = None,
    system: Annotated[Optional[str], typer.Option(help="outside system, e.g. mx_merchant")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="the system's base URL (sandbox or production)")] = None,
    credential: Annotated[list[str], typer.Option(help="key=value, repeatable (stored, never printed)")] = [],
    option: Annotated[list[str], typer.Option(help="key=value (JSON values allowed), repeatable")] = [],
) -> None:
    """Add a tenant, or set one of its connections (re-running replaces it); prints a POS's webhook URL.

    The credentials and options are checked against what the system declares: a missing or
    unknown field is refused, by name, before anything is stored.
    """
    from resources.connection import ConnectionConfigError
    from resources.systems import spec_for
    from commerce.pos_webhooks import setup_note
    from warehouse.secrets import SecretsKeyError
    from warehouse.tenants import add_tenant, get_connection, set_connection

    credentials, options = _parse_pairs(credential), _parse_pairs(option)
    if system:
        if not base_url:
            raise typer.BadParameter("--base-url is required with --system")
        try:
            spec_for(system).check(credentials, options, base_url)
        except ConnectionConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="--system/--base-url/--credential/--option") from None
    elif credentials or options:
        raise typer.BadParameter("--credential and --option need --system")
    settings = Settings()
    _migrate(settings)
    note = None
    try:
        with _engine(settings).begin() as conn:
            add_tenant(conn, tenant, name)
            if system:
                set_connection(conn, tenant, system, base_url, credentials, options)
                note = setup_note(conn, get_connection(conn, tenant, system), settings.api_url)
    except SecretsKeyError as exc:  # the key in force cannot open the connections already stored
        console.print(f"[red]nothing stored[/]: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"[green]✓[/] tenant {tenant}" + (f" connected to {system} at {base_url}" if system else ""))
    if note:
        console.print(note, soft_wrap=True)


@tenants_app.command("webhook-url")
def tenants_webhook_url(tenant: str, system: str) -> None:
    """Issue a new webhook URL token for a POS that does not sign (the old URL stops working)."""
    from commerce.webhook_tokens import UNSIGNED, issue, webhook_url
    from warehouse.tenants import get_connection

    if system not in UNSIGNED:
        raise typer.BadParameter(f"{system!r} needs no URL token; one of: {', '.join(sorted(UNSIGNED))}",
                                 param_hint="SYSTEM")
    settings = Settings()
    with _engine(settings).begin() as conn:
        if get_connection(conn, tenant, system) is None:
            console.print(f"[red]{tenant} has no {system} connection[/]")
            raise typer.Exit(1)
        token = issue(conn, tenant, system)
    url = webhook_url(settings.api_url, tenant, system, token)
    console.print(f"{system} webhook URL (register it with {system}; it is shown this once): {url}", soft_wrap=True)


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants and the systems they connect (no credentials)."""
    from warehouse.tenants import list_tenants

    settings = Settings()
    with _engine(settings).connect() as conn:
        rows = list_tenants(conn)
    table = Table("tenant", "name", "status", "systems")
    for row in rows:
        table.add_row(row["tenant_id"], row["name"], row["status"], ", ".join(row["systems"]))
    console.print(table)


@tenants_app.command("remove")
def tenants_remove(tenant: str) -> None:
    """Remove a tenant; the discovery sensor then deletes its partition."""
    from warehouse.tenants import remove_tenant

    with _engine(Settings()).begin() as conn:
        found = remove_tenant(conn, tenant)
    if not found:
        console.print(f"[red]no tenant {tenant}[/]")
        raise typer.Exit(1)
    console.print(f"[green]✓[/] removed {tenant}")


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every tenant's credentials under a new key (the old one still opens them until done).

    With the key file: a new key is made and put first in the file, the rows are re-encrypted,
    then the old key is dropped. With STOREHOUSE_SECRETS_KEY: put the new key first
    (`STOREHOUSE_SECRETS_KEY=new,old`), run this, then drop the old one from the setting.
    """
    from warehouse import secrets
    from warehouse.tenants import reseal_credentials, resealed_credentials, store_credentials

    settings = Settings()
    _migrate(settings)
    value, path = secrets.key_source()
    try:
        if value is not None:
            ring = secrets.Keyring(secrets.parse_keys(value), secrets.SETTING)
            if len(ring.keys) < 2:
                console.print(f"[red]{secrets.SETTING} holds one key[/]: put the new key first, then the old one "
                              f"({secrets.SETTING}=new,old), run this again, then drop the old key "
                              "(a new key: `storehouse secrets new-key`)")
                raise typer.Exit(2)
            with _engine(settings).begin() as conn:
                count = reseal_credentials(conn, ring)
            secrets.forget()
            console.print(f"[green]✓[/] {count} connection(s) re-encrypted under the first key of "
                          f"{secrets.SETTING}; remove the old key(s) from it now")
            return
        old = list(secrets.keyring().keys) if path.exists() else []
        new = secrets.generate_key()
        ring = secrets.Keyring([new, *old], secrets.file_source(path))
        with _engine(settings).begin() as conn:
            sealed = resealed_credentials(conn, ring)  # every row opened (and locked) before the file changes
            secrets.write_key_file(path, [new, *old])  # both open every row while they are rewritten
            secrets.forget()
            store_credentials(conn, sealed)
    except secrets.SecretsKeyError as exc:
        console.print(f"[red]not rotated, nothing changed[/]: {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    secrets.write_key_file(path, [new])
    secrets.forget()
    console.print(f"[green]✓[/] {len(sealed)} connection(s) re-encrypted under a new key in {path}")


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new key, e.g. for STOREHOUSE_SECRETS_KEY."""
    from warehouse.secrets import generate_key

    print(generate_key())


@app.command()
def sync(
    tenant: str,
    job: Annotated[Optional[list[str]], typer.Option(help="job name(s); default every job")] = None,
    request: Annotated[bool, typer.Option("--request", help="queue it for the sync-request sensor instead")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="with --request: show its progress until it ends")] = False,
    recover_from: Annotated[Optional[str], typer.Option(
        "--recover-from", help="recovery mode (MX): re-read up to 1,000 payments from this day (YYYY-MM-DD)")] = None,
    recover_to: Annotated[Optional[str], typer.Option(
        "--recover-to", help="recovery mode: the range's last day (default: --recover-from)")] = None,
    timeout: Annotated[float, typer.Option(help="--wait: give up watching after this many seconds")] = 3600,
) -> None:
    """Materialise one tenant now (or, with --request, ask the running daemon to), with the MX sync's
    progress as a bar (the seed's eight steps and the counts)."""
    from storehouse.instance import ensure_dagster_home
    from storehouse.runner import jobs_for_tenant
    from warehouse.tenants import list_tenants

    settings = Settings()
    with _engine(settings).connect() as conn:
        known = tenant in {t["tenant_id"] for t in list_tenants(conn)}
    if not known:
        console.print(f"[red]no tenant {tenant}[/] (see `storehouse tenants list`)")
        raise typer.Exit(1)
    jobs = job or jobs_for_tenant(tenant)
    if not jobs:
        console.print(f"[red]{tenant} connects no system that has a sync job[/] (see `storehouse tenants list`)")
        raise typer.Exit(1)
    from pipelines.definitions import ALL_JOBS

    names = sorted(j.name for j in ALL_JOBS)
    if unknown := sorted(set(jobs) - set(names)):
        console.print(f"[red]unknown job {', '.join(unknown)}[/]; one of: {', '.join(names)}")
        raise typer.Exit(1)
    mode, window = _sync_mode(recover_from, recover_to, jobs)
    if request:
        from warehouse.syncs import request_sync

        engine = _engine(settings)
        progress_id = _manual_sync(engine, tenant, mode, window) if MX_JOB in jobs else None
        with engine.begin() as conn:
            ids = [request_sync(conn, tenant, name, "cli") for name in jobs if name != MX_JOB]
        ids = sorted(ids + ([progress_id] if progress_id else []))
        console.print(f"[green]✓[/] sync requested for {tenant} (request ids {ids}); the sync_requests sensor runs it")
        if wait and progress_id:
            raise typer.Exit(0 if _watch(engine, tenant, progress_id, timeout_s=timeout) else 1)
        return
    ensure_dagster_home(settings)
    _close_abandoned_syncs(settings)
    ok = _run_with_progress(_engine(settings), tenant, jobs, mode, window) if MX_JOB in jobs \
        else _run_and_report([tenant], jobs)
    raise typer.Exit(0 if ok else 1)


MX_JOB = "mx_merchant_sync"  # the one sync that reports the seed's eight steps


def _sync_mode(recover_from: str | None, recover_to: str | None, jobs: list[str]):
    """("incremental", None) or ("recovery", (from, to)) with to exclusive, as UTC datetimes."""
    import datetime as dt

    if recover_from is None:
        if recover_to is not None:
            console.print("[red]--recover-to needs --recover-from[/]")
            raise typer.Exit(1)
        return "incremental", None
    if jobs != [MX_JOB]:
        console.print(f"[red]recovery mode is the MX sync's: add --job {MX_JOB}[/]")
        raise typer.Exit(1)
    try:
        first = dt.date.fromisoformat(recover_from)
        last = dt.date.fromisoformat(recover_to or recover_from)
    except ValueError:
        console.print("[red]dates are YYYY-MM-DD[/]")
        raise typer.Exit(1) from None
    if last < first:
        console.print("[red]--recover-to is before --recover-from[/]")
        raise typer.Exit(1)
    return "recovery", (dt.datetime.combine(first, dt.time(), dt.timezone.utc),
                        dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.timezone.utc))


def _manual_sync(engine: sa.Engine, tenant: str, mode: str, window, run_here: bool = False) -> int:
    from warehouse.sync_progress import Busy, request_manual_sync

    try:
        return request_manual_sync(engine, tenant, MX_JOB, None, mode, *(window or (None, None)), label="cli",
                                   run_here=run_here)
    except Busy as busy:
        console.print(f"[red]a manual sync of {tenant} is already queued or running[/] (sync {busy.request_id}); "
                      "wait for it to finish")
        raise typer.Exit(1) from None


def _watch(engine: sa.Engine, tenant: str, request_id: int, stop=None, timeout_s: float | None = None) -> bool:
    from storehouse.sync_watch import watch

    return _summary(tenant, request_id, watch(engine, tenant, request_id, console, stop, timeout_s))


def _summary(tenant: str, request_id: int, row) -> bool:
    if row is None or row["status"] not in ("succeeded", "failed"):
        console.print(f"[yellow]sync {request_id} still {row['status'] if row else 'unknown'}[/]: stopped watching")
        return False
    mark = "[green]✓[/]" if row["status"] == "succeeded" else "[red]✗[/]"
    console.print(f"{mark} manual sync {request_id} · {tenant} · {row['mode']} · {row['status']}"
                  + (f": {row['error']}" if row["error"] else ""))
    return row["status"] == "succeeded"


def _run_with_progress(engine: sa.Engine, tenant: str, jobs: list[str], mode: str, window) -> bool:
    """Run the jobs in this process; the MX one as a manual sync whose progress shows as a bar."""
    import threading

    from storehouse.runner import run_tenant_jobs
    from storehouse.sync_watch import watch
    from warehouse.sync_progress import TAG, finish, get

    request_id = _manual_sync(engine, tenant, mode, window, run_here=True)
    stop, outcomes = threading.Event(), []

    def run() -> None:
        try:
            outcomes.extend(run_tenant_jobs(tenant, [MX_JOB], tags={TAG: str(request_id)}))
        finally:
            stop.set()

    worker = threading.Thread(target=run, name="storehouse-sync")
    worker.start()
    try:
        watch(engine, tenant, request_id, console, stop)
    finally:
        worker.join()
    outcome = outcomes[0] if outcomes else None
    finish(engine, request_id, "succeeded" if outcome and outcome.success else "failed",
           (outcome.error if outcome else None) or (None if outcome and outcome.success else "the run failed"),
           outcome.run_id if outcome else None)
    with engine.connect() as conn:
        _summary(tenant, request_id, get(conn, tenant, request_id))
    ok = _report(tenant, outcomes)
    others = [j for j in jobs if j != MX_JOB]
    return (_run_and_report([tenant], others) if others else True) and ok


def _close_abandoned_syncs(settings: Settings) -> None:
    """What the daemon's abandoned_syncs sensor does, for machines that run syncs without it."""
    import dagster as dg

    from sensors.abandoned_syncs import close_abandoned_syncs

    for sync_id, reason in close_abandoned_syncs(dg.DagsterInstance.get(), _engine(settings)).items():
        console.print(f"[yellow]sync_runs {sync_id} closed[/]: {reason}")


def _run_and_report(tenant_ids: list[str], jobs: list[str] | None) -> bool:
    from storehouse.runner import run_tenant_jobs

    ok = True
    for tenant_id in tenant_ids:
        with console.status(f"syncing {tenant_id}…") as status:
            outcomes = run_tenant_jobs(tenant_id, jobs, on_event=lambda text: status.update(f"running {text}…"))
        ok &= _report(tenant_id, outcomes)
    return ok


def _report(tenant_id: str, outcomes) -> bool:
    ok = True
    for outcome in outcomes:
        mark = "[green]✓[/]" if outcome.success else "[red]✗[/]"
        console.print(f"{mark} {outcome.job} · {tenant_id} · run {outcome.run_id[:8]}")
        for asset, meta in outcome.metadata.items():
            if meta.get("skipped"):
                continue
            figures = ", ".join(
                f"{k}={meta[k]}" for k in ("dagster/row_count", "rows_written", "api_calls", "quarantined", "duration_s")
                if k in meta
            )
            console.print(f"    {asset}: {figures}")
        for check in outcome.failed_checks:
            figures = ", ".join(f"{k}={v}" for k, v in check.metadata.items())
            mark = "[red]✗ check failed[/]" if check.is_error else "[yellow]! check failed (warning)[/]"
            console.print(f"    {mark} {check.asset}: {check.check}" + (f" ({figures})" if figures else ""))
        for stale in outcome.not_refreshed:
            console.print(f"    [red]✗ {stale.describe()}[/]")
        if outcome.error:
            console.print(f"    [red]{outcome.error}[/]")
        ok &= outcome.success
    return ok


def _build_marts_and_report() -> bool:
    from storehouse.runner import run_marts

    with console.status("building the marts (dbt build)…"):
        outcome = run_marts()
    mark = "[green]✓[/]" if outcome.success else "[red]✗[/]"
    console.print(f"{mark} {outcome.job} · {len(outcome.metadata)} dbt models built and tested · run {outcome.run_id[:8]}")
    if outcome.error:
        console.print(f"    [red]{outcome.error}[/]")
    return outcome.success


@app.command()
def demo(
    keep_serving: Annotated[bool, typer.Option(help="keep the sandbox running afterwards")] = False,
) -> None:
    """The main job on the embedded default: sandbox, warehouse, demo tenants, every asset."""
    from resources.dbt import prepare_manifest
    from sandbox.server import SandboxThread, is_up
    from storehouse.demo import register_demo_tenants, webhook_notes
    from storehouse.demo_people import demo_users
    from storehouse.instance import ensure_dagster_home
    from storehouse.summary import print_summary
    from warehouse.types import now_utc

    settings = Settings()
    started, since = time.perf_counter(), now_utc()
    server = None
    if is_up(settings.sandbox_url):
        console.print(f"[green]✓[/] using the sandbox already running at {settings.sandbox_url}")
    else:
        server = SandboxThread(settings.sandbox_port, settings.sandbox_host).start()
        console.print(f"[green]✓[/] sandbox started at {server.url}")
    try:
        _migrate(settings)
        prepare_manifest()  # the marts' dbt models as they are now, before the definitions load
        home = ensure_dagster_home(settings)
        tenants = register_demo_tenants(_engine(settings), settings.sandbox_url)
        console.print(f"[green]✓[/] {len(tenants)} demo tenants registered: {', '.join(t.tenant_id for t in tenants)}")
        for note in webhook_notes(_engine(settings), tenants, settings.api_url):
            console.print(f"    {note}", soft_wrap=True)
        ok = _run_and_report([t.tenant_id for t in tenants], None)
        print_summary(console, _engine(settings), [t.tenant_id for t in tenants], since)
        console.print("\nStaff API users, one per role (seed 003), once `storehouse api` runs:")
        for line in demo_users(_engine(settings), settings.api_url):
            console.print(f"    {line}", soft_wrap=True)
        from storehouse.demo_studio import STUDIO, demo_studio

        console.print(f"\n3D-print studio ({STUDIO}): clients, quotes and invoices in different states; sign in as")
        for line in demo_studio(_engine(settings), settings.api_url, settings.sandbox_url):
            console.print(f"    {line}", soft_wrap=True)
        from storehouse.demo_storefront import STOREFRONT, buy_one_esim

        console.print("\neSIM shop (NumnaRoad): one purchase end to end through the shop API")
        ok &= buy_one_esim(console, _engine(settings), settings)
        console.print("\nThe shop's hourly job again, then the marts (dbt, every tenant), so they count the purchase:")
        ok &= _run_and_report([STOREFRONT], ["orders_hourly"])
        ok &= _build_marts_and_report()
        console.print(f"\nDone in {time.perf_counter() - started:.1f} s.")
        console.print(
            "Next:\n"
            f"  • Everything:   storehouse up      (sandbox {settings.sandbox_url}, shop API {settings.api_url}, "
            f"Dagster UI {settings.ui_url}; the steps below need it running)\n"
            f"  • Dagster UI:   {settings.ui_url}   (DAGSTER_HOME={home}; runs above are in its history)\n"
            f"  • Query:        sqlite3 {settings.warehouse_url.removeprefix('sqlite:///')} "
            "\"select tenant_id, count(*) from transactions group by 1\"\n"
            "  • Tenants:      storehouse tenants list; storehouse sync downtown-medical\n"
            f"  • Shop API:     {settings.api_url}/docs   (OpenAPI)"
        )
        if keep_serving and server:
            console.print("sandbox still serving; Ctrl-C to stop")
            while True:
                time.sleep(3600)
    finally:
        if server:
            server.stop()
    raise typer.Exit(0 if ok else 1)


@app.command()
def api(
    host: Annotated[Optional[str], typer.Option(help="bind address (default STOREHOUSE_API_HOST)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default STOREHOUSE_API_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes; they share the warehouse and its job queue")] = 1,
) -> None:
    """Serve the shop API (OpenAPI at /docs): catalog, checkout, Stripe webhooks, orders, provisioning."""
    import uvicorn

    from api.settings import ApiSettings
    from warehouse.db import redact

    from studio.slicing.settings import SettingsError, load as slicer_settings

    try:  # refused in one clear line here, not as a traceback from each worker's start-up
        slicer_settings()
    except SettingsError as exc:
        console.print(f"[red]bad slicer setting:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    settings = Settings()
    _migrate(settings)
    host, port = host or settings.api_host, port or settings.api_port
    # Worker processes read their settings from the environment: hand these down.
    os.environ.setdefault("STOREHOUSE_SHOP_PUBLIC_URL", f"http://{host}:{port}")
    os.environ.setdefault("STOREHOUSE_SHOP_DATABASE_URL", settings.warehouse_url)
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Several processes: /metrics sums them all from files in this (emptied) folder.
        import shutil

        metrics_dir = (settings.home / "prometheus").resolve()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    options = ApiSettings().uvicorn_options()  # keep-alive; proxy headers off (api.middleware reads them)
    console.print(f"shop API on http://{host}:{port} ({workers} worker(s)), warehouse {redact(settings.warehouse_url)}")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info", **options)


@app.command()
def docs(
    port: Annotated[int | None, typer.Option(help="serve the data dictionary on this port "
                                             "(default STOREHOUSE_DOCS_PORT, 8080)")] = None,
    serve: Annotated[bool, typer.Option(help="serve it after generating it")] = True,
) -> None:
    """The analysts' data dictionary: `dbt docs generate` of the marts (offline), served on a port."""
    import functools
    import http.server

    from resources.dbt import generate_docs

    settings = Settings()
    _migrate(settings)
    folder = generate_docs(settings.warehouse_url, settings.home / "dbt-docs")
    console.print(f"[green]✓[/] data dictionary written to {folder} (static_index.html is one self-contained file)")
    if not serve:
        return
    port = port or settings.docs_port
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        console.print(f"serving it on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


@app.command()
def ui(
    host: Annotated[Optional[str], typer.Option(help="bind address (default STOREHOUSE_UI_HOST)")] = None,
    port: Annotated[Optional[int], typer.Option(help="webserver port (default STOREHOUSE_UI_PORT)")] = None,
) -> None:
    """Start the Dagster webserver and daemon (`dagster dev`) on this project's DAGSTER_HOME."""
    from storehouse.instance import prepare

    settings = Settings()
    home = prepare(settings)
    host, port = host or settings.ui_host, port or settings.ui_port
    console.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home})")
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"  # whatever the current directory
    sys.stdout.flush()
    # This process becomes `dagster dev` (it starts the webserver and the daemon): Ctrl-C reaches it directly.
    os.execv(sys.executable, [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", host, "-p", str(port)])


@app.command()
def up() -> None:
    """Run the sandbox, the shop API and the Dagster webserver with its daemon together, in the
    foreground (ports from STOREHOUSE_SANDBOX_PORT, STOREHOUSE_API_PORT, STOREHOUSE_UI_PORT); Ctrl-C stops all."""
    from storehouse.instance import ensure_dagster_home
    from storehouse.up import run

    settings = Settings()
    _migrate(settings)
    ensure_dagster_home(settings)
    raise typer.Exit(run(console, settings))


from storehouse.warehouse_cli import warehouse_app  # noqa: E402  (its commands import this module's helpers)

app.add_typer(warehouse_app, name="warehouse")


if __name__ == "__main__":
    app()
