"""Column types that keep money exact and time in UTC on both PostgreSQL and SQLite.

* ``Money``: ``NUMERIC(18, 4)`` on PostgreSQL. SQLite has no decimal type, so there the column has
  NUMERIC affinity and holds numbers (INTEGER or REAL): they compare, sort and aggregate as
  numbers, and read back as the exact ``Decimal`` written, quantised to 4 places (as Django's
  decimal field does). An IEEE double is exact to 15 significant digits, so SQLite takes amounts
  up to ``SQLITE_MONEY_LIMIT`` (99,999,999,999.9999) and refuses larger ones rather than round them.
* ``UTCDateTime``: ``TIMESTAMPTZ`` on PostgreSQL; on SQLite one text format with fixed
  microseconds and an explicit offset, ``2026-12-06 02:14:25.123456+00:00``, so text order is
  time order and SQLite's own date functions read it. ``utc_now()`` is "now" in that form.

``raw(value, dialect)`` converts a Python value for the raw DBAPI path of ``warehouse.upsert``;
``stored_type`` names how the warehouse in use stores a column (Dagster's Columns tab).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

UTC = dt.timezone.utc
_FOUR_PLACES = Decimal("0.0001")
SQLITE_MONEY_LIMIT = Decimal("99999999999.9999")  # 15 significant digits: exact as an IEEE double
SQLITE_TIME_FORMAT = "YYYY-MM-DD HH:MM:SS.ffffff+00:00"
# SQLite's "now" in that format: strftime's %f is SS.SSS (milliseconds), padded to microseconds.
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now')"


def to_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_time(value: dt.datetime) -> str:
    """The one SQLite text form of a time: UTC, fixed microseconds, explicit offset."""
    return to_utc(value).isoformat(" ", "microseconds")


def sqlite_money(value: Any) -> float | None:
    """An amount as SQLite stores it: the double nearest its 4-place quantisation (exact within the limit).

    Halves round away from zero, as PostgreSQL's NUMERIC does."""
    if value is None:
        return None
    value = value if value.__class__ is Decimal else Decimal(str(value))
    if not value.is_finite() or abs(value) > SQLITE_MONEY_LIMIT:
        raise ValueError(f"amount {value} is outside what SQLite stores exactly "
                         f"(±{SQLITE_MONEY_LIMIT}); use PostgreSQL for larger amounts")
    return float(value.quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP))


def decimal_of(value: Any) -> Decimal | None:
    """A stored amount (Decimal, INTEGER, REAL or legacy text) as the exact 4-place Decimal."""
    if value is None:
        return None
    if value.__class__ is not Decimal:
        value = Decimal(value if isinstance(value, (str, int)) else repr(value))
    return value.quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP)


class Money(TypeDecorator):
    """Exact decimal: NUMERIC(18, 4) on PostgreSQL, a NUMERIC-affinity number on SQLite."""

    impl = sa.Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Numeric(18, 4, asdecimal=False))
        return dialect.type_descriptor(sa.Numeric(18, 4, asdecimal=True))

    def process_bind_param(self, value, dialect):
        return self.raw(value, dialect.name)

    def process_result_value(self, value, dialect):
        return decimal_of(value)

    @staticmethod
    def raw(value: Any, dialect: str) -> Any:
        if dialect == "sqlite":
            return sqlite_money(value)
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps: TIMESTAMPTZ on PostgreSQL, one sortable UTC text on SQLite."""

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
        if isinstance(value, str):  # also reads the offset-less text older versions wrote
            value = dt.datetime.fromisoformat(value)
        return to_utc(value)

    @staticmethod
    def raw(value: Any, dialect: str) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return sqlite_time(value) if dialect == "sqlite" else to_utc(value)


class utc_now(FunctionElement):
    """The current time as a column value: ``CURRENT_TIMESTAMP``, or its one UTC text form on SQLite.

    Use it for server defaults and ``updated_at = …`` in SQL instead of ``func.current_timestamp()``,
    whose SQLite text has neither microseconds nor an offset."""

    type = UTCDateTime()
    inherit_cache = True
    name = "utc_now"


@compiles(utc_now)
def _utc_now_default(element, compiler, **kw) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utc_now, "sqlite")
def _utc_now_sqlite(element, compiler, **kw) -> str:
    return SQLITE_NOW


def now_sql(dialect: str) -> str:
    """``utc_now()`` as SQL text, for statements written by hand (the upsert's ``updated_at``)."""
    return SQLITE_NOW if dialect == "sqlite" else "CURRENT_TIMESTAMP"


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


_DIALECTS = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}


def stored_type(col_type: sa.types.TypeEngine, dialect: str) -> str:
    """How the warehouse on ``dialect`` (postgresql or sqlite) really stores a column of this type."""
    pg = dialect == "postgresql"
    if isinstance(col_type, Money):
        return "NUMERIC(18,4)" if pg else f"NUMERIC (exact to 4 places up to ±{SQLITE_MONEY_LIMIT:,})"
    if isinstance(col_type, UTCDateTime):
        return "TIMESTAMPTZ (UTC)" if pg else f"TEXT (UTC ISO-8601, {SQLITE_TIME_FORMAT})"
    if isinstance(col_type, JSONDoc):
        return "JSONB" if pg else "TEXT (JSON)"
    if not pg and isinstance(col_type, sa.Boolean):
        return "BOOLEAN (INTEGER 0 or 1)"
    if not pg and isinstance(col_type, sa.Date):
        return "DATE (TEXT YYYY-MM-DD)"
    try:
        return col_type.compile(dialect=_DIALECTS[dialect]).replace(", ", ",")
    except sa.exc.CompileError:
        return type(col_type).__name__.upper()
