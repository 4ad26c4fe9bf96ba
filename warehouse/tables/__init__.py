"""All warehouse tables on one ``MetaData``; each domain module adds its own.

Analysts query these names directly. Every tenant-scoped table carries ``tenant_id``.
"""

from warehouse.tables.base import metadata
from warehouse.tables import core, mx  # noqa: F401  (register tables)
from warehouse.tables import pos_events  # noqa
from warehouse.tables import pos  # noqa
from warehouse.tables import orders  # noqa
from warehouse.tables import esim  # noqa
from warehouse.tables import people  # noqa
from warehouse.tables import sync_progress  # noqa
from warehouse.tables import studio  # noqa
from warehouse.tables import studio_print  # noqa

from warehouse.tables.pos import CUSTOMERS_ANALYTICS_DESCRIPTIONS

# Tables whose every column must be described: what analysts read (warehouse/schemas.ANALYST, listed
# in the README) and the tables behind their PII-free views; and the customers view's descriptions.
ANALYST_TABLES = (
    "transactions", "invoices", "invoice_lines", "product_categories",  # MX Merchant
    "esim_packages", "esim_stock",  # eSIM catalog and stock
    "orders", "payments", "order_refunds", "provisioning_attempts", "webhook_events",  # the eSIM shop
    "products", "inventory", "customers", "saq_branches",  # POS and Portaus
    "tenants", "sync_runs", "quarantine",  # the platform
    "studio_quotes", "studio_quote_items", "studio_invoice_items", "studio_payments",  # the studio's documents
    "studio_invoices", "studio_clients",  # behind the studio's analyst views
    "studio_materials", "studio_printers", "studio_product_templates", "studio_print_jobs",  # its printing
)
ANALYST_VIEWS = {"customers_analytics": CUSTOMERS_ANALYTICS_DESCRIPTIONS}

__all__ = ["ANALYST_TABLES", "ANALYST_VIEWS", "metadata"]
