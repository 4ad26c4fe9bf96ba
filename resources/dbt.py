"""The dbt project of the marts (``analytics/``) and the profile that points it at the warehouse.

No profile is committed: ``write_profiles`` derives one from the warehouse URL at run time
(SQLite: the ``main`` schema is the warehouse file; PostgreSQL: host, port, user, database) into
a folder under ``STOREHOUSE_HOME``. A PostgreSQL password never lands in that file: the profile
reads it with ``env_var``, and ``dbt_env`` puts it in the environment while dbt runs.

dbt runs in this process (``dbtRunner``, dbt's programmatic entry point), never as a ``dbt``
subprocess: a new Python with dbt imported anew cost 5 to 15 s a build, more than the SQL of a
small rebuild (``bench/marts_bench.py``). The Dagster asset (``assets/marts.py``), the tests, the
demo and the benchmark all go through ``run_dbt``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

from warehouse.marts import model_names, not_dbt_owned  # noqa: F401  (the tables dbt owns)

PROJECT_DIR = Path(__file__).resolve().parent.parent / "analytics"
TARGET_DIR = PROJECT_DIR / "target"
MANIFEST = TARGET_DIR / "manifest.json"
PROFILE = "storehouse"
PASSWORD_VAR = "STOREHOUSE_DBT_PASSWORD"
PRUNE_REMOVED_TENANTS = "STOREHOUSE_PRUNE_REMOVED_TENANTS"  # "false": the incremental models' pre-hook skips its scan
JIT_OFF = "-c jit=off"  # PostgreSQL session option of every dbt connection (PGOPTIONS, read by libpq)
TESTS_THIS_BUILD_ONLY = "STOREHOUSE_TESTS_THIS_BUILD_ONLY"  # "true": incremental models' tests read this build's rows


def profile_target(url: str) -> dict:
    """The dbt target for a warehouse URL (SQLite file or PostgreSQL)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            raise ValueError("dbt needs a SQLite warehouse file, not an in-memory database")
        path = Path(database).resolve()
        return {"type": "sqlite", "threads": 1, "database": "main", "schema": "main",
                "schemas_and_paths": {"main": str(path)}, "schema_directory": str(path.parent)}
    if backend == "postgresql":
        return {"type": "postgres", "threads": 2, "host": parsed.host or "127.0.0.1", "port": parsed.port or 5432,
                "user": parsed.username or "postgres", "password": f"{{{{ env_var('{PASSWORD_VAR}', '') }}}}",
                "dbname": parsed.database or "postgres", "schema": "analytics"}  # the analysts' schema (warehouse/schemas.py)
    raise ValueError(f"dbt marts support SQLite and PostgreSQL warehouses, not {backend}")


def write_profiles(url: str, folder: Path) -> Path:
    """Write ``profiles.yml`` for the warehouse URL into ``folder`` (no secret in it); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    profile = {PROFILE: {"target": "warehouse", "outputs": {"warehouse": profile_target(url)}}}
    (folder / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def dbt_env(url: str) -> dict[str, str]:
    """Environment while dbt runs: the password the profile reads, no usage tracking, and on
    PostgreSQL no JIT (``bench/marts_bench.py``: 0.1-0.2 s of a 0.4 s incremental statement was JIT
    compilation, set off by row estimates far above the rows read)."""
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    if make_url(url).get_backend_name() == "postgresql":  # JIT compiled each small incremental query for
        env["PGOPTIONS"] = " ".join([os.environ.get("PGOPTIONS", ""), JIT_OFF]).strip()  # longer than it ran
    password = make_url(url).password
    env[PASSWORD_VAR] = str(password) if password else ""
    return env


def dbt_executable() -> str:
    """The ``dbt`` installed beside this interpreter (the venv's), else the one on PATH (for a shell)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


_one_at_a_time = threading.Lock()  # dbt keeps its flags, adapters and event manager process-wide


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` while dbt runs (its ``env_var`` reads them), the old ones after."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def project_vars() -> dict[str, list[str]]:
    """The dbt vars every invocation passes: what the models' tests accept, from the provider
    registry (a new POS system or eSIM provider needs no edit of the dbt project)."""
    from resources.esim import ESIM_PROVIDERS
    from resources.pos import POS_SYSTEMS

    return {"pos_systems": sorted(POS_SYSTEMS), "esim_providers": sorted(p.system for p in ESIM_PROVIDERS)}


def run_dbt(args: list[str], url: str, profiles_dir: Path, target_path: Path | None = None,
            check: bool = True, project_dir: Path | None = None,
            on_event: Callable[[dict], None] | None = None, events: Collection[str] | None = None,
            env: dict[str, str] | None = None, extra_vars: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess:
    """Run one dbt command on the warehouse at ``url``, in this process.

    Returns what a ``dbt`` process would have: the return code (0 success, 1 a model or test
    failed, 2 dbt itself failed) and its log lines as ``stdout``. ``on_event`` receives every dbt
    event (or those named in ``events``: a build fires a thousand, and turning each into a dict
    costs) as the dict dbt's JSON log prints (dagster-dbt turns those into Dagster events);
    ``env`` joins dbt's environment while it runs (read at run time by ``env_var`` in a macro: a
    different var would make dbt parse the whole project anew); ``extra_vars`` adds dbt vars to the
    registry's (``studio_as_of``: the day receivables are aged at). Raises on failure when ``check``."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    write_profiles(url, profiles_dir)
    project = project_dir or PROJECT_DIR
    command = [*args, "--log-level", "none",  # nothing on the terminal: its lines come back in ``stdout``
               "--project-dir", str(project), "--profiles-dir", str(profiles_dir),
               "--vars", json.dumps({**project_vars(), **(extra_vars or {})})]
    if target_path is not None:
        command += ["--target-path", str(target_path)]
    lines: list[str] = []

    def keep(event) -> None:
        if event.info.level in ("info", "warn", "error") and event.info.msg:
            lines.append(event.info.msg)
        if on_event is not None and (events is None or event.info.name in events):
            on_event(msg_to_dict(event))

    with _one_at_a_time, _environment({**dbt_env(url), **(env or {})}):
        outcome = dbtRunner(callbacks=[keep]).invoke(command)
    returncode = 0 if outcome.success else 2 if outcome.exception is not None else 1
    stdout = "\n".join(lines) + ("\n" + str(outcome.exception) if outcome.exception is not None else "")
    if check and returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{stdout[-6000:]}")
    return subprocess.CompletedProcess(["dbt", *command], returncode, stdout, "")


def profiles_dir() -> Path:
    """Where the generated profile lives: under STOREHOUSE_HOME, never in the repository."""
    from settings import Settings

    return (Settings().home / "dbt").resolve()


def parse_state(url: str) -> Path:
    """Where a run on this warehouse keeps dbt's partial-parse state for the next one: dbt parses
    the whole project anew (seconds) when the profile differs from the parse it reads, and
    ``prepare_manifest``'s parse is of the default warehouse's profile."""
    digest = hashlib.sha256(json.dumps(profile_target(url), sort_keys=True).encode()).hexdigest()[:16]
    return profiles_dir() / "parse" / digest / "partial_parse.msgpack"


def prepare_manifest(url: str | None = None) -> Path:
    """Parse the project into ``analytics/target/manifest.json``: no database is touched. The
    definitions read it (set-up, the test session and ``storehouse demo``/``ui`` call this)."""
    from settings import Settings

    run_dbt(["parse", "--quiet"], url or Settings().warehouse_url, profiles_dir(), target_path=TARGET_DIR)
    return MANIFEST


def generate_docs(url: str, folder: Path) -> Path:
    """``dbt docs generate`` into ``folder``: index.html (dbt's own page, no internet needed),
    manifest.json, catalog.json (the warehouse's columns and types) and static_index.html, one
    self-contained file of all three."""
    run_dbt(["docs", "generate", "--static"], url, profiles_dir(), target_path=folder.resolve())
    return folder.resolve()


if __name__ == "__main__" and sys.argv[1:] == ["parse"]:
    print(prepare_manifest())
