"""How a running sync tells its caller how far it got: ``Progress``, passed into a sync.

The protocol has two calls, both cheap and both made on the sync's own thread(s):

* ``step(index, name)``: the sync entered step ``index`` (1-based) called ``name``. Steps come in
  increasing order; a step may be skipped (nothing to do) but never revisited.
* ``add(**counts)``: add these amounts to the named running counts (never negative). A count
  not reported yet starts at 0.

A sync given no progress reports to ``NO_PROGRESS``, which does nothing. An implementation must
be thread-safe if it is shared (the MX invoice writer reports from a background thread), and must
not raise: a failing progress reporter would fail the sync. Syncs report outside their own write
transactions, so an implementation may write to the warehouse (on SQLite it would otherwise wait
for the sync's transaction to end).

``syncing.mx.sync_tenant(engine, tenant_id, client_for, run_id, progress)`` runs the whole MX
sync of a tenant without Dagster (each part in its own ``sync_runs`` row, as the assets do);
``sync_transactions``, ``sync_invoices`` and ``sync_products`` each take ``progress=`` too.

The MX sync (``syncing.mx``) reports the eight steps of seed 003's manual sync, mapped onto what
it really does (``MX_STEPS``); its three parts report their own steps, so a caller that runs all
three sees 1 to 8:

1. fetch transactions: pages of payments read (``sync_transactions``);
2. save transactions: the quarantined payments asked for again, the reconcile of loaded +
   quarantined with MX's ``recordCount`` and the last checkpoint (each page is saved as it is read);
3. filter invoice-linked: the invoice ids and numbers the unlinked transactions name;
4. invoice number → id map: the invoice list paged until every wanted number is mapped;
5. fetch invoice details: one detail call per wanted invoice;
6. save invoices: the last batches written and the transactions linked to their invoice;
7. extract/update products: products from invoice lines, categorised per tenant (``sync_products``);
8. finalise transaction updates: each linked transaction's primary product and category.

Counts it adds as they grow: ``payments_read``, ``payments_new``, ``payments_updated`` (new and
changed payment rows), ``invoices_fetched``, ``api_calls``, ``quarantined``, ``errors`` (detail
calls that failed and will be asked again next run); and, once known, how much there is to do:
``payments_expected`` (MX's ``recordCount`` when a first sync reads the whole list) and
``invoices_wanted`` (the invoices step 5 will fetch), so a watcher can say how far a long step got.
``syncing.progress_writer.ProgressWriter`` is the one that writes a manual sync's ``sync_progress``
row. A POS stream (``syncing.pos.sync_stream``)
reports no steps, and adds ``rows`` and ``quarantined`` per batch written.
"""

from __future__ import annotations

import threading
from typing import Protocol

MX_STEPS = {
    1: "fetch transactions",
    2: "save transactions",
    3: "filter invoice-linked transactions",
    4: "map invoice numbers to ids",
    5: "fetch invoice details",
    6: "save invoices",
    7: "extract and update products",
    8: "finalise transaction updates",
}


class Progress(Protocol):
    def step(self, index: int, name: str) -> None: ...

    def add(self, **counts: int) -> None: ...


class _NoProgress:
    """Reports nowhere."""

    def step(self, index: int, name: str) -> None:
        pass

    def add(self, **counts: int) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()


class Tally:
    """A ``Progress`` that keeps what it is told: the current step and the running counts
    (thread-safe). Enough for a caller that polls, and for tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.steps: list[tuple[int, str]] = []
        self.counts: dict[str, int] = {}

    def step(self, index: int, name: str) -> None:
        with self._lock:
            self.steps.append((index, name))

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, n in counts.items():
                self.counts[key] = self.counts.get(key, 0) + n
