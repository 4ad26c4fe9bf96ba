"""Shared fixtures: a live sandbox on a free port, and a migrated warehouse per test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import httpx
import pytest

# One key for tenant credentials across the whole run, subprocesses included: tests (and the API
# and CLI processes they start) point STOREHOUSE_HOME at temp folders, whose default key files
# would each be a different key for the same encrypted rows.
os.environ.setdefault("STOREHOUSE_SECRETS_KEY_FILE",
                      str(Path(tempfile.mkdtemp(prefix="storehouse-keys-")) / "secrets.key"))

from sandbox.server import SandboxThread


def pytest_configure(config):
    """Parse the dbt project once per session, before any test imports the definitions (they read
    its manifest; nothing reaches a database)."""
    from resources.dbt import prepare_manifest

    prepare_manifest()


@pytest.fixture(scope="session")
def sandbox():
    """The whole sandbox app served over real HTTP on 127.0.0.1 (a free port)."""
    server = SandboxThread().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox_reset(sandbox):
    """The sandbox with every fake's state and every fault switch reset before the test."""
    httpx.post(f"{sandbox.url}/_sandbox/reset", timeout=10).raise_for_status()
    yield sandbox
    httpx.delete(f"{sandbox.url}/_sandbox/faults", timeout=10)


# -- the warehouse ------------------------------------------------------------------------
import os
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from resources.warehouse import WarehouseResource, engine_for
from warehouse.db import make_engine, normalise_url
from warehouse.migrate import upgrade
from warehouse.tables.core import tenant_connections


def postgres_url() -> str | None:
    """DATABASE_URL when it points at PostgreSQL (CI sets it for the second run)."""
    url = os.environ.get("DATABASE_URL")
    if url and make_url(url).get_backend_name() == "postgresql":
        return url
    return None


@pytest.fixture(scope="session")
def warehouse_url(tmp_path_factory) -> str:
    """PostgreSQL when DATABASE_URL names one, else a fresh SQLite file: migrated once."""
    url = postgres_url() or f"sqlite:///{tmp_path_factory.mktemp('warehouse') / 'warehouse.db'}"
    upgrade(url)
    if postgres_url():  # a reused database keeps earlier runs' connections, sealed under their runs' keys:
        engine = make_engine(url)  # none can be opened now, and set_connection refuses to seal beside them
        try:
            with engine.begin() as conn:
                conn.execute(sa.delete(tenant_connections))
        finally:
            engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(warehouse_url) -> sa.Engine:
    return engine_for(warehouse_url)


@pytest.fixture(scope="session")
def warehouse(warehouse_url) -> WarehouseResource:
    return WarehouseResource(url=warehouse_url)


@pytest.fixture
def tenant_id() -> str:
    """A fresh tenant id per test: tests share one warehouse and never see each other's rows."""
    return f"t-{uuid.uuid4().hex[:10]}"


def requires_postgres(reason: str = "needs PostgreSQL") -> pytest.MarkDecorator:
    return pytest.mark.skipif(postgres_url() is None, reason=f"{reason}: set DATABASE_URL=postgresql://… to run it")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_warehouse(request, tmp_path) -> Iterator[str]:
    """A warehouse no migration has touched yet: a SQLite file, or a scratch PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    base = postgres_url()
    if base is None:
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgresql://… to run it")
    name = f"storehouse_migrate_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(normalise_url(base)).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
