"""Alembic, driven from code: ``upgrade(url)`` brings any warehouse to the latest schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from warehouse.db import normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply every migration not yet applied (each domain's branch: hence ``heads``)."""
    command.upgrade(alembic_config(url), revision)


def current(url: str) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    from warehouse.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def applied(url: str) -> set[str]:
    """Every revision applied: the current heads and all they rest on (down revisions and dependencies)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    return {r.revision for r in script.iterate_revisions(tuple(current(url)), "base")}
