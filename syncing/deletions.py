"""Deletion detection with confirmation: the rows an account no longer has, found and marked.

A full read sees every record the account has; a live row it did not see is gone
(``gone_rows``). That conclusion is only as good as the read, so it is guarded three ways:
records the read received but could not load (quarantined) are not gone; a read that would
remove more than ``max_fraction`` of the live rows is not trusted (an empty page is likelier than
an emptied store) and its deletions are withheld; and the caller may ask the source about the
rest before marking them (``confirmed_gone``). ``mark_gone`` then sets each row's "gone" values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from resources.http import ProviderError
from syncing.result import SyncResult
from syncing.stream import Stream


def chunks(items: list, size: int = 500) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def gone_rows(conn: sa.Connection, stream: Stream, live: list[Any], seen: set[tuple],
              scope_products: Iterable[str] | None, max_fraction: float,
              unread: set[str] | None = None) -> tuple[list[tuple], int]:
    """Keys of the live rows (``live``: the where clauses that select them) not in ``seen``, only
    rows of ``scope_products`` when given: (to mark gone, withheld).

    ``unread`` holds the ids of records the provider sent but we could not load (quarantined):
    missing from ``seen``, they are not gone, so they are spared; ``None`` means some unread
    record had no id, and then nothing is marked this run. Nor is anything when a full read
    would remove more than ``max_fraction`` of the live rows."""
    t = stream.table
    cols = [t.c[k] for k in stream.key]
    if scope_products is None:
        current = {tuple(r) for r in conn.execute(sa.select(*cols).where(*live))}
    else:
        current = set()
        for chunk in chunks(sorted(scope_products)):
            current |= {tuple(r) for r in conn.execute(sa.select(*cols).where(*live, t.c.product_id.in_(chunk)))}
    gone = sorted(current - seen)
    if unread is None:
        return [], len(gone)
    gone = [g for g in gone if len(g) != 1 or g[0] not in unread]
    if scope_products is None and current and len(gone) > max_fraction * len(current):
        return [], len(gone)
    return gone, 0


def mark_gone(conn: sa.Connection, stream: Stream, live: list[Any], gone: list[tuple], values: dict[str, Any]) -> int:
    """Set ``values`` (and ``stream.gone``) on the ``gone`` rows; returns how many."""
    t = stream.table
    cols = [t.c[k] for k in stream.key]
    for chunk in chunks(gone):
        conn.execute(sa.update(t).where(*live, sa.tuple_(*cols).in_(chunk)).values(**values, **stream.gone))
    return len(gone)


def confirmed_gone(still_listed: Callable[[list[str]], set[str] | None], stream: Stream, gone: list[tuple],
                   seen_products: set[str], result: SyncResult) -> list[tuple]:
    """After a full read: of the rows about to be marked gone, drop those of products the source
    still lists when asked by id (a product no row of the read mentioned at all: a deletion while
    we paged can shift a live one past us). Sold-out lots of a product that was read are gone for
    real and stay. If the source cannot be asked, nothing is marked this run."""
    if "product_id" not in stream.key:
        return gone
    at = stream.key.index("product_id")
    unseen = sorted({g[at] for g in gone if g[at] not in seen_products})
    if not unseen:
        return gone
    try:
        listed = still_listed(unseen)
    except ProviderError as exc:
        result.extra["deletions_unconfirmed"] = f"{len(gone)} ({exc.kind})"
        return []
    if listed:
        result.extra["slipped_between_pages"] = len(listed)
    return gone if listed is None else [g for g in gone if g[at] not in listed]
