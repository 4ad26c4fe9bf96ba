"""Column types that keep money exact and time in UTC on both PostgreSQL and SQLite.

SQLite has no decimal type (``Numeric`` comes back as float) and SQLAlchemy's SQLite
``DateTime`` drops the UTC offset, so both are stored there as text in a sortable form.
``raw(value, dialect)`` converts a Python value for the raw DBAPI path of ``warehouse.upsert``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

UTC = dt.timezone.utc
_FOUR_PLACES = Decimal("0.0001")


def to_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_time(value: dt.datetime) -> str:
    return to_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


class Money(TypeDecorator):
    """Exact decimal: NUMERIC(18, 4) on PostgreSQL, canonical decimal text on SQLite."""

    impl = sa.Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(sa.Numeric(18, 4, asdecimal=True))

    def process_bind_param(self, value, dialect):
        return self.raw(value, dialect.name)

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)

    @staticmethod
    def raw(value: Any, dialect: str) -> Any:
        if value is None:
            return None
        value = value if isinstance(value, Decimal) else Decimal(str(value))
        # One canonical text per amount on SQLite, so '12.5' and '12.50' compare equal.
        return str(value.quantize(_FOUR_PLACES)) if dialect == "sqlite" else value


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps: TIMESTAMPTZ on PostgreSQL, sortable UTC text on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))

    def process_bind_param(self, value, dialect):
        return self.raw(value, dialect.name)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            return dt.datetime.fromisoformat(value).replace(tzinfo=UTC)
        return to_utc(value)

    @staticmethod
    def raw(value: Any, dialect: str) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return sqlite_time(value) if dialect == "sqlite" else to_utc(value)


class JSONDoc(TypeDecorator):
    """A JSON document: JSONB on PostgreSQL, JSON text on SQLite."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value
        return orjson.dumps(value, default=str).decode()

    def process_result_value(self, value, dialect):
        if value is None or not isinstance(value, (str, bytes)):
            return value
        return orjson.loads(value)

    @staticmethod
    def raw(value: Any, dialect: str) -> Any:
        if value is None:
            return None
        text = orjson.dumps(value, default=str).decode()
        return text


def now_utc() -> dt.datetime:
    return dt.datetime.now(UTC)
