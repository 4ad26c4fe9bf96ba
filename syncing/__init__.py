"""The sync engine: provider accounts into warehouse tables, with no Dagster in it.

One shape for every provider (MX Merchant, the POS systems and Portaus, the eSIM providers):

* ``runs.sync_each``: the tenant's connections, one ``sync_runs`` ledger row per stream run,
  circuit breakers, and an ``Outcome`` per connection;
* ``stream``: a ``Stream`` (table, key, what a row becomes when gone) and the ``StreamWriter``,
  the one write path: upsert (``warehouse.upsert``), quarantine and release, checkpoint;
* ``state``: cursors, quarantine and the ledger as stored in the warehouse;
* ``deletions``: deletion detection with its guards and confirmation;
* ``result.SyncResult``: what a run did, for the ledger and the asset's metadata;
* ``progress.Progress``: what a running sync tells a caller that watches it;
* the streams: ``mx`` (transactions, invoices, products), ``pos`` (products, inventory,
  customers, SAQ branches; normalised by ``pos_normalise``), ``esim`` (packages, stock).

Assets (``assets/``) are thin: they call the engine and turn what it returns into Dagster
metadata, checks and failures. This package may import ``resources``, ``warehouse`` and the
settings, never ``dagster`` (``tests/test_layout.py``).
"""
