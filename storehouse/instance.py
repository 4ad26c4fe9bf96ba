"""The Dagster instance's configuration (``$DAGSTER_HOME/dagster.yaml``), written in this one place.

The embedded default keeps everything in SQLite files under ``DAGSTER_HOME``. With
``STOREHOUSE_DAGSTER_DATABASE_URL`` set, runs, events and schedules live in PostgreSQL
(``dagster-postgres``); the file then names the variable, never the URL, so no password is written
down. Either way: the queued run coordinator with a global cap and one run per tenant at a time,
per-provider pools (``POOL_LIMITS``, stored in the instance), runs retried only when they fail
for infrastructure reasons (a run worker lost, a code server gone), never for a failed asset or op,
and no asset daemon (nothing here is automation-condition driven; schedules and sensors are).

Used by ``storehouse ui``/``up``/``sync`` (through ``ensure_dagster_home``), by the deploy files
and CI (``python -m storehouse.instance write|prepare``), and by the tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from settings import Settings
from settings.logs import LogSettings

MARKER = "# Written by storehouse (storehouse/instance.py)"
OURS = "# Written by storehouse"  # also the first line of the files earlier versions wrote
MAX_CONCURRENT_RUNS = 8
RUN_RETRIES = 2
MAX_RUNTIME_S = 3 * 3600  # far above the longest sync measured: a first sync of a million MX payments, 4–9 minutes
# The most steps that call one provider at once, across every run and every worker (the assets'
# ``pool=``): MX Merchant and the POS APIs rate-limit per partner account; the eSIM providers' are
# the shop's own accounts, shared by every tenant.
POOL_LIMITS = {"mx_merchant": 4, "pos_api": 4, "esim_providers": 2}
DEFAULT_POOL_LIMIT = 4
DAGSTER_DB_VAR = "STOREHOUSE_DAGSTER_DATABASE_URL"


def python_logs(log_format: str) -> str:
    """With ``STOREHOUSE_LOG_FORMAT=json``, run workers write our loggers' lines (and Dagster's
    events) as JSON objects with the run id, job, step and tenant (``settings.logs``)."""
    if log_format != "json":
        return ""
    return """\
python_logs:
  managed_python_loggers: [storehouse]
  python_log_level: INFO
  dagster_handler_config:
    handlers:
      json: {class: logging.StreamHandler, stream: "ext://sys.stderr", formatter: json, filters: [redact_tokens]}
    formatters:
      json: {"()": settings.logs.JsonFormatter}
    filters:
      redact_tokens: {"()": settings.logs.RedactTokens}
"""


def instance_yaml(settings: Settings, log_format: str | None = None) -> str:
    """The dagster.yaml for these settings (PostgreSQL storage when a Dagster database is set;
    JSON run logs when ``STOREHOUSE_LOG_FORMAT=json``)."""
    if log_format is None:
        log_format = LogSettings().log_format
    if settings.dagster_database_url:
        storage = (
            "# Runs, events and schedules in PostgreSQL; the URL is read from the environment when the\n"
            "# instance loads (webserver, daemon, code server, run workers and Celery workers alike).\n"
            "storage:\n"
            "  postgres:\n"
            "    postgres_url:\n"
            f"      env: {DAGSTER_DB_VAR}\n"
        )
    else:
        storage = "# Runs, events and schedules in SQLite files under this folder (the embedded default).\n"
    return f"""\
{MARKER}; edits are overwritten. Remove the first line to keep a hand-written file.
telemetry:
  enabled: false
{storage}run_coordinator:
  module: dagster._core.run_coordinator.queued_run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: {MAX_CONCURRENT_RUNS}
    tag_concurrency_limits:
      # one run at a time per tenant; tenants run side by side
      - key: "dagster/partition"
        limit: 1
        value:
          applyLimitPerUniqueValue: true
  pools:
    # per-provider limits are set in the instance (POOL_LIMITS); a pool not set there gets this
    default_limit: {DEFAULT_POOL_LIMIT}
    granularity: op
run_retries:
  enabled: true
  max_retries: {RUN_RETRIES}
  # a run whose asset or op failed is not retried: its step retry policies already had their say
  retry_on_asset_or_op_failure: false
run_monitoring:
  # a run that never started in time is marked failed, and so retried by run_retries; where the
  # launcher can check its workers (Kubernetes' K8sRunLauncher) a lost run worker is too. The
  # default launcher (one process per run, compose and CI) cannot: a run whose process died is
  # cancelled after max_runtime_seconds instead, which frees its tenant's one-run slot (a longer
  # run can say so with the `dagster/max_runtime` tag)
  enabled: true
  start_timeout_seconds: 180
  max_runtime_seconds: {MAX_RUNTIME_S}
  poll_interval_seconds: 30
# No asset declares an automation condition (tests/test_definitions.py holds that): the asset daemon
# would only wake every 30 s to find nothing. Freshness policies are evaluated by their own daemon.
auto_materialize:
  enabled: false
  use_sensors: false
{python_logs(log_format)}"""


def check_dagster_url(url: str) -> None:
    """dagster-postgres needs psycopg2, named in the URL: SQLAlchemy 2.1 reads a plain
    ``postgresql://`` as psycopg 3, on which dagster-postgres's ``NOTIFY`` (bound parameters) fails."""
    parsed = make_url(url)
    if parsed.drivername != "postgresql+psycopg2":
        raise ValueError(f"{DAGSTER_DB_VAR} must be a postgresql+psycopg2://user@host:port/db URL "
                         f"(got {parsed.drivername}://…): dagster-postgres runs on psycopg2")


def ensure_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at the settings' folder and write its dagster.yaml (unless the file there
    was written by hand: one without our first line is left alone)."""
    home = settings.dagster_home_path
    home.mkdir(parents=True, exist_ok=True)
    if settings.dagster_database_url:
        check_dagster_url(settings.dagster_database_url)
    config = home / "dagster.yaml"
    wanted = instance_yaml(settings)
    if not config.exists() or (config.read_text().startswith(OURS) and config.read_text() != wanted):
        # every container writes it at start: a reader never sees half a file
        partial = config.with_name(f".dagster.yaml.{os.getpid()}")
        partial.write_text(wanted)
        os.replace(partial, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def set_pool_limits(instance) -> dict[str, int]:
    """Store ``POOL_LIMITS`` in the instance (what `dagster instance concurrency set` does)."""
    for pool, limit in POOL_LIMITS.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return dict(POOL_LIMITS)


def prepare(settings: Settings) -> Path:
    """The instance ready for the daemon and workers: its dagster.yaml written, its storage
    migrated (PostgreSQL), and the pool limits set."""
    import dagster as dg

    home = ensure_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        instance.upgrade()
        set_pool_limits(instance)
    return home


USAGE = """usage: python -m storehouse.instance write|prepare
  write    $DAGSTER_HOME/dagster.yaml from the settings (every container, at start)
  prepare  that, the instance's storage created or upgraded, and the pool limits set (once per deploy)"""


def main(argv: list[str]) -> int:
    """``python -m storehouse.instance write|prepare`` for the processes of a deployment."""
    if argv not in (["write"], ["prepare"]):
        print(USAGE, file=sys.stderr)
        return 2
    settings = Settings()
    where = "PostgreSQL" if settings.dagster_database_url else "SQLite"
    if argv == ["write"]:
        home = ensure_dagster_home(settings)
        print(f"{home / 'dagster.yaml'} written ({where} storage)")
    else:
        home = prepare(settings)
        print(f"dagster instance at {home} ready ({where} storage); pools {POOL_LIMITS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
