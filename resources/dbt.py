"""The dbt project of the marts (``analytics/``) and the profile that points it at the warehouse.

No profile is committed: ``write_profiles`` derives one from the warehouse URL at run time
(SQLite: the ``main`` schema is the warehouse file; PostgreSQL: host, port, user, database) into
a folder under ``STOREHOUSE_HOME``. A PostgreSQL password never lands in that file: the profile
reads it with ``env_var``, and ``dbt_env`` puts it in the environment of the dbt process alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

from warehouse.marts import model_names, not_dbt_owned  # noqa: F401  (the tables dbt owns)

PROJECT_DIR = Path(__file__).resolve().parent.parent / "analytics"
TARGET_DIR = PROJECT_DIR / "target"
MANIFEST = TARGET_DIR / "manifest.json"
PROFILE = "storehouse"
PASSWORD_VAR = "STOREHOUSE_DBT_PASSWORD"


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
    """Environment for a dbt process: the password the profile reads, and no usage tracking."""
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    password = make_url(url).password
    env[PASSWORD_VAR] = str(password) if password else ""
    return env


def dbt_executable() -> str:
    """The ``dbt`` installed beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


def run_dbt(args: list[str], url: str, profiles_dir: Path, target_path: Path | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run one dbt command on the warehouse at ``url`` (output captured; raises on failure when ``check``)."""
    write_profiles(url, profiles_dir)
    command = [dbt_executable(), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(profiles_dir)]
    if target_path is not None:
        command += ["--target-path", str(target_path)]
    result = subprocess.run(command, cwd=PROJECT_DIR, env={**os.environ, **dbt_env(url)},
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return result


def profiles_dir() -> Path:
    """Where the generated profile lives: under STOREHOUSE_HOME, never in the repository."""
    from storehouse.settings import Settings

    return (Settings().home / "dbt").resolve()


def prepare_manifest(url: str | None = None) -> Path:
    """Parse the project into ``analytics/target/manifest.json``: no database is touched. The
    definitions read it (set-up, the test session and ``storehouse demo``/``ui`` call this)."""
    from storehouse.settings import Settings

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
