"""Document numbers: the seed's ``next_document_number(kind, default_prefix)``, per studio and kind.

Numbers are 1, 2, 3 … per tenant and kind, printed with the studio's prefix
(``studio_business.quote_prefix`` / ``invoice_prefix``, else the default) as ``Q-0001``. They are
never duplicated and have no gaps among committed documents because the counter row
(``studio_document_numbers``) is advanced by one statement in the same transaction that inserts
the document: ``INSERT … ON CONFLICT (tenant_id, kind) DO UPDATE SET last_number = last_number + 1
RETURNING last_number``. The row stays locked until that transaction ends, so a concurrent
creation waits for it and then reads the committed value; a transaction that rolls back takes
its increment with it. On SQLite the transaction holds the file's write lock from its start
(``studio.db.writing``); the same statement runs there (SQLite ≥ 3.35 has RETURNING).

The price is that creations of one kind in one studio are serial for the length of their
transaction: keep it short (``bench/studio_numbers_bench.py`` measures it).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from studio.errors import StudioError
from warehouse.tables.studio import studio_business, studio_document_numbers

KINDS = {"quote": "Q-", "invoice": "INV-"}  # kind -> default prefix
WIDTH = 4  # digits printed at least: Q-0001 … Q-9999, then Q-10000


def format_number(prefix: str, number: int) -> str:
    return f"{prefix}{number:0{WIDTH}d}"


def prefix_of(conn: sa.Connection, tenant_id: str, kind: str, default_prefix: str | None = None) -> str:
    """The studio's configured prefix for ``kind``, else ``default_prefix``, else the kind's default."""
    column = {"quote": studio_business.c.quote_prefix, "invoice": studio_business.c.invoice_prefix}[kind]
    found = conn.execute(sa.select(column).where(studio_business.c.tenant_id == tenant_id)).scalar_one_or_none()
    return found if found is not None else (default_prefix if default_prefix is not None else KINDS[kind])


def next_document_number(conn: sa.Connection, tenant_id: str, kind: str, default_prefix: str | None = None,
                         *, prefix: str | None = None) -> tuple[int, str]:
    """Advance ``tenant_id``'s ``kind`` counter and return ``(number, printed number)``.

    Call it inside the transaction that inserts the document (``studio.db.writing``), as late as
    possible: the number is the document's only if that transaction commits, and other creations
    of the kind wait from here to the commit. ``prefix``: the studio's, already read by the caller."""
    if kind not in KINDS:
        raise StudioError(422, "unknown-document-kind", f"documents are {' or '.join(KINDS)}, not {kind!r}")
    prefix = prefix if prefix is not None else prefix_of(conn, tenant_id, kind, default_prefix)
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(studio_document_numbers)
    counter = studio_document_numbers.c
    statement = (insert.values(tenant_id=tenant_id, kind=kind, prefix=prefix, last_number=1)
                 .on_conflict_do_update(index_elements=[counter.tenant_id, counter.kind],
                                        set_={"last_number": counter.last_number + 1, "prefix": prefix})
                 .returning(counter.last_number))
    number = conn.execute(statement).scalar_one()
    return number, format_number(prefix, number)


def last_numbers(conn: sa.Connection, tenant_id: str) -> dict[str, int]:
    """The last number given per kind (0: none yet)."""
    c = studio_document_numbers.c
    rows = conn.execute(sa.select(c.kind, c.last_number).where(c.tenant_id == tenant_id)).all()
    return {**{k: 0 for k in KINDS}, **{kind: n for kind, n in rows}}
