"""POS and Portaus: one normalised catalog, inventory, customers and SAQ branches (seeds 004, 000).

Every table carries ``tenant_id`` and ``source`` (the system: treez, dutchie, blaze, flowhub,
cova, shopify, portaus) and is keyed by the source's own ids, so re-syncs are idempotent and
two systems of one tenant never collide. A row deleted at the source keeps its last values and
gets ``deleted_at`` (and ``status = 'deleted'``); it is never silently kept as live. Decimal
quantities (potency, grams, prices, stock) use ``Money``, the exact NUMERIC(18, 4) type.
Customer PII lives only in ``customers``; analysts use the view ``customers_analytics``.
"""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column, timestamps
from warehouse.types import JSONDoc, Money, UTCDateTime


def source_column() -> sa.Column:
    return sa.Column("source", sa.String(16), nullable=False, comment="the POS system (or Portaus) it comes from; the systems: resources/providers.py")


products = sa.Table(
    "products",
    metadata,
    tenant_column(),
    source_column(),
    sa.Column("product_id", sa.String(128), nullable=False, comment="the source's id (Shopify: the variant id)"),
    sa.Column("sku", sa.String(128), comment="the source's SKU"),
    sa.Column("name", sa.String(300), nullable=False, comment="standardised: POS prefixes/suffixes removed, consistent case"),
    sa.Column("source_name", sa.String(500), nullable=False, comment="the name exactly as the POS sent it"),
    sa.Column("brand", sa.String(200), comment="brand name"),
    sa.Column("size", sa.String(64), comment="normalised size label, e.g. 3.5g, 5pk 0.5g, 750ml"),
    sa.Column("category", sa.String(100), nullable=False, comment="primary category path; 'unmapped' when none matched"),
    sa.Column("categories", JSONDoc, nullable=False, comment="every category path of the product"),
    sa.Column("source_category", sa.String(300), comment="the POS's own category labels"),
    sa.Column("strain_type", sa.String(16), comment="indica, sativa, hybrid, cbd"),
    sa.Column("strain_lean", sa.String(16), comment="dominant side of a hybrid, when the source says it"),
    sa.Column("effects", JSONDoc, nullable=False, comment="effects listed by the source (JSON list)"),
    sa.Column("flavors", JSONDoc, nullable=False, comment="flavours listed by the source (JSON list)"),
    sa.Column("cannabinoids", JSONDoc, nullable=False, comment='{"thc": {"min", "max", "unit"}}, % where derivable'),
    sa.Column("thc_min_pct", Money, comment="THC %, lower bound"),
    sa.Column("thc_max_pct", Money, comment="THC %, upper bound"),
    sa.Column("cbd_min_pct", Money, comment="CBD %, lower bound"),
    sa.Column("cbd_max_pct", Money, comment="CBD %, upper bound"),
    sa.Column("thc_mg", Money, comment="THC per package in mg when % cannot be derived (no net grams)"),
    sa.Column("cbd_mg", Money, comment="CBD per package in mg when % cannot be derived"),
    sa.Column("weight_g", Money, comment="net weight of one unit of sale in grams"),
    sa.Column("volume_ml", Money, comment="volume of one unit in ml (drinks)"),
    sa.Column("alcohol_pct", Money, comment="alcohol by volume %"),
    sa.Column("price", Money, comment="unit price at the source"),
    sa.Column("currency", sa.String(3), nullable=False, comment="ISO 4217 currency of price"),
    sa.Column("status", sa.String(16), nullable=False, comment="active, inactive, deleted"),
    sa.Column("stock_ref", sa.String(128), comment="id the source's stock records use (Shopify inventory_item_id)"),
    sa.Column("attributes", JSONDoc, nullable=False, comment="source-specific extras (vintage, origin, ...)"),
    sa.Column("source_updated_at", UTCDateTime, comment="when the source last changed it (UTC)"),
    sa.Column("deleted_at", UTCDateTime, comment="set when the source deleted it"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "source", "product_id"),
    sa.Index("ix_products_tenant_category", "tenant_id", "category"),
    sa.Index("ix_products_tenant_stock_ref", "tenant_id", "source", "stock_ref"),
    comment="Every tenant's catalog from its POS or Portaus, normalised to one model.",
)

inventory = sa.Table(
    "inventory",
    metadata,
    tenant_column(),
    source_column(),
    sa.Column("location_id", sa.String(64), nullable=False, comment="the source's store or warehouse id"),
    sa.Column("product_id", sa.String(128), nullable=False, comment="products.product_id of the same source"),
    sa.Column("lot_id", sa.String(128), nullable=False, comment="batch/lot; '' when the source does not track lots"),
    sa.Column("sku", sa.String(128), comment="the source's SKU"),
    sa.Column("tracking", sa.String(16), nullable=False, comment="quantity, lot or weight"),
    sa.Column("quantity", Money, nullable=False, comment="on hand, in quantity_unit (exact decimal)"),
    sa.Column("quantity_unit", sa.String(8), nullable=False, comment="each or g"),
    sa.Column("min_quantity", Money, nullable=False, comment="smallest sellable quantity"),
    sa.Column("increment", Money, nullable=False, comment="step in which it is sold"),
    sa.Column("available", sa.Boolean, nullable=False, comment="sellable now"),
    sa.Column("low_stock_threshold", Money, nullable=False, comment="quantity at or below which it counts as low"),
    sa.Column("low_stock", sa.Boolean, nullable=False, comment="quantity <= low_stock_threshold"),
    sa.Column("quantity_capped", sa.Boolean, nullable=False, comment="the source caps what it reports (Treez: 30)"),
    sa.Column("compliance_id", sa.String(128), comment="METRC tag / package id"),
    sa.Column("expires_on", sa.Date, comment="expiry date of the lot"),
    sa.Column("packaged_on", sa.Date, comment="packaging date of the lot"),
    sa.Column("source_updated_at", UTCDateTime, comment="when the source last changed it (UTC)"),
    sa.Column("deleted_at", UTCDateTime, comment="set when the lot or product left the source"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "source", "location_id", "product_id", "lot_id"),
    sa.Index("ix_inventory_tenant_product", "tenant_id", "source", "product_id"),
    comment="Stock per tenant, location, product and lot.",
)

customers = sa.Table(
    "customers",
    metadata,
    tenant_column(),
    source_column(),
    sa.Column("customer_id", sa.String(128), nullable=False, comment="the source's customer id"),
    sa.Column("first_name", sa.String(100), comment="PII"),
    sa.Column("last_name", sa.String(100), comment="PII"),
    sa.Column("email", sa.String(320), comment="PII"),
    sa.Column("phone", sa.String(32), comment="PII, +E.164"),
    sa.Column("birth_date", sa.Date, comment="PII"),
    sa.Column("street", sa.String(300), comment="PII"),
    sa.Column("city", sa.String(100), comment="city of the address"),
    sa.Column("state", sa.String(32), comment="state or province code"),
    sa.Column("postal_code", sa.String(16), comment="PII"),
    sa.Column("country", sa.String(2), comment="ISO 3166-1 alpha-2"),
    sa.Column("medical_id", sa.String(64), comment="PII"),
    sa.Column("medical_id_expires_on", sa.Date, comment="PII; an expired medical id gets the recreational rules"),
    sa.Column("gender", sa.String(1), comment="F, M, X or null, as the source gives it"),
    sa.Column("customer_type", sa.String(16), comment="medical or recreational"),
    sa.Column("loyalty_points", Money, comment="loyalty points balance"),
    sa.Column("marketing_opt_in", sa.Boolean, comment="agreed to marketing messages"),
    sa.Column("status", sa.String(16), nullable=False, comment="active, inactive, deleted"),
    sa.Column("birth_year", sa.Integer, comment="year of birth (age bands without the PII date)"),
    sa.Column("postal_prefix", sa.String(3), comment="first three characters: area, not address"),
    sa.Column("source_created_at", UTCDateTime, comment="when the source created the customer (UTC)"),
    sa.Column("source_updated_at", UTCDateTime, comment="when the source last changed it (UTC)"),
    sa.Column("deleted_at", UTCDateTime, comment="set when the source deleted it (UTC)"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "source", "customer_id"),
    comment="POS customers with their PII: the only table that holds it. Analysts use customers_analytics.",
)

saq_branches = sa.Table(
    "saq_branches",
    metadata,
    tenant_column(),
    source_column(),
    sa.Column("branch_number", sa.String(16), nullable=False, comment="SAQ's branch number"),
    sa.Column("name", sa.String(200), nullable=False, comment="branch name"),
    sa.Column("city", sa.String(100), comment="city"),
    sa.Column("address", sa.String(300), comment="street address"),
    sa.Column("phone", sa.String(32), comment="branch phone number"),
    sa.Column("deleted_at", UTCDateTime, comment="set when Portaus stopped listing it (UTC)"),
    *timestamps(),
    sa.PrimaryKeyConstraint("tenant_id", "source", "branch_number"),
    comment="SAQ branches (Québec liquor stores) a Portaus tenant can assign orders to.",
)

# The PII-free columns of ``customers``: what ``customers_analytics`` (migration 0004) exposes.
CUSTOMER_ANALYTICS_COLUMNS = (
    "tenant_id", "source", "customer_id", "customer_type", "gender", "birth_year", "city", "state", "postal_prefix",
    "country", "loyalty_points", "marketing_opt_in", "status", "source_created_at", "source_updated_at", "deleted_at",
)
# The view's column descriptions: each is the column of ``customers`` it shows.
CUSTOMERS_ANALYTICS_DESCRIPTIONS = {name: customers.c[name].comment for name in CUSTOMER_ANALYTICS_COLUMNS}
CUSTOMER_PII_COLUMNS = ("first_name", "last_name", "email", "phone", "birth_date", "street", "postal_code", "medical_id",
                        "medical_id_expires_on")
