"""All warehouse tables on one ``MetaData``; each domain module adds its own.

Analysts query these names directly. Every tenant-scoped table carries ``tenant_id``.
"""

from warehouse.tables.base import metadata
from warehouse.tables import core, mx  # noqa: F401  (register tables)
from warehouse.tables import pos_events  # noqa
from warehouse.tables import pos  # noqa
from warehouse.tables import shop  # noqa
from warehouse.tables import esim  # noqa
from warehouse.tables import people  # noqa

__all__ = ["metadata"]
