"""The 3D-print studio (seed 002, "3D Print Sydney"): clients, quotes, invoices, payments, PDFs,
files, and instant quotes from 3D models. Dagster-free, like ``commerce`` and ``people``: the API
and the assets call it."""
