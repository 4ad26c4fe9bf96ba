"""Dagster assets per domain, partitioned by tenant; each writes through ``warehouse.upsert``."""
