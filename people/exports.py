"""Exports of a tenant's transactions and invoices, as CSV or Parquet, streamed in constant memory.

Rows come from the database ``BATCH`` at a time (a server-side cursor on PostgreSQL) and leave as
soon as they are encoded: a CSV chunk, or a Parquet row group, per batch. Nothing holds the whole
export, so its size is bounded by the disk of whoever downloads it, not by this process.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from warehouse.types import Money, UTCDateTime

BATCH = 5_000
FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def _rows(engine: sa.Engine, query: sa.Select) -> Iterator[list[sa.Row]]:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for part in result.partitions(BATCH):
            yield part


def _csv_value(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def stream_csv(engine: sa.Engine, query: sa.Select) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in query.selected_columns])
    for part in _rows(engine, query):
        writer.writerows([_csv_value(v) for v in row] for row in part)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no rows at all: the header alone
        yield buffer.getvalue().encode()


def _arrow_type(column: sa.ColumnElement) -> pa.DataType:
    kind = column.type
    if isinstance(kind, Money):
        return pa.decimal128(18, 4)
    if isinstance(kind, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(kind, sa.Boolean):
        return pa.bool_()
    if isinstance(kind, (sa.Integer, sa.BigInteger)):
        return pa.int64()
    return pa.string()


class _Sink(io.RawIOBase):
    """Where the Parquet writer writes: bytes kept until the next ``drain``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def drain(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def stream_parquet(engine: sa.Engine, query: sa.Select) -> Iterator[bytes]:
    columns = list(query.selected_columns)
    schema = pa.schema([(c.name, _arrow_type(c)) for c in columns])
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        for part in _rows(engine, query):
            arrays = [pa.array([_parquet_value(row[i], field.type) for row in part], type=field.type)
                      for i, field in enumerate(schema)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            yield sink.drain()
    finally:
        writer.close()
    yield sink.drain()


def _parquet_value(value: object, kind: pa.DataType) -> object:
    if value is None:
        return None
    if pa.types.is_decimal(kind) and not isinstance(value, Decimal):
        return Decimal(str(value))
    if pa.types.is_string(kind) and not isinstance(value, str):
        return str(value)
    return value


def stream(engine: sa.Engine, query: sa.Select, fmt: str) -> Iterator[bytes]:
    return stream_csv(engine, query) if fmt == "csv" else stream_parquet(engine, query)
