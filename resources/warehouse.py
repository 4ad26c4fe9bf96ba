"""The warehouse as a Dagster resource: one engine per URL per process."""

from __future__ import annotations

from functools import lru_cache

import dagster as dg
import sqlalchemy as sa

from settings import Settings
from warehouse.db import make_engine


@lru_cache(maxsize=8)
def engine_for(url: str) -> sa.Engine:
    return make_engine(url)


class WarehouseResource(dg.ConfigurableResource):
    """Where assets write: a SQLAlchemy URL; unset means ``DATABASE_URL`` or the SQLite default."""

    url: str | None = None

    @property
    def resolved_url(self) -> str:
        return self.url or Settings().warehouse_url

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.resolved_url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name
