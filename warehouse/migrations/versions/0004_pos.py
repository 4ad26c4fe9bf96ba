"""pos: normalised products, inventory, customers (+ PII-free view), SAQ branches

Revision ID: 0004_pos
Revises: 0001_foundation
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import warehouse.types

revision = "0004_pos"
down_revision = "0001_foundation"
branch_labels = ("pos",)
depends_on = None

SOURCE = "system: treez, dutchie, blaze, flowhub, cova, shopify, portaus"
# Plain SELECT of non-PII columns: the same SQL on SQLite and PostgreSQL.
ANALYTICS_VIEW = """
CREATE VIEW customers_analytics AS
SELECT tenant_id, source, customer_id, customer_type, gender, birth_year, city, state, postal_prefix,
       country, loyalty_points, marketing_opt_in, status, source_created_at, source_updated_at, deleted_at
FROM customers
"""


def money(name: str, nullable: bool = True, comment: str | None = None) -> sa.Column:
    return sa.Column(name, warehouse.types.Money(precision=18, scale=4), nullable=nullable, comment=comment)


def stamp(name: str, comment: str | None = None) -> sa.Column:
    return sa.Column(name, warehouse.types.UTCDateTime(timezone=True), nullable=True, comment=comment)


def json(name: str, comment: str | None = None) -> sa.Column:
    return sa.Column(name, warehouse.types.JSONDoc(), nullable=False, comment=comment)


def common() -> list[sa.Column]:
    return [sa.Column("tenant_id", sa.String(length=64), nullable=False),
            sa.Column("source", sa.String(length=16), nullable=False, comment=SOURCE)]


def timestamps() -> list[sa.Column]:
    return [
        sa.Column("first_seen_at", warehouse.types.UTCDateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.Column("updated_at", warehouse.types.UTCDateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "products", *common(),
        sa.Column("product_id", sa.String(length=128), nullable=False, comment="the source's id (Shopify: the variant id)"),
        sa.Column("sku", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=False,
                  comment="standardised: POS prefixes/suffixes removed, consistent case"),
        sa.Column("source_name", sa.String(length=500), nullable=False, comment="the name exactly as the POS sent it"),
        sa.Column("brand", sa.String(length=200), nullable=True),
        sa.Column("size", sa.String(length=64), nullable=True, comment="normalised size label, e.g. 3.5g, 5pk 0.5g, 750ml"),
        sa.Column("category", sa.String(length=100), nullable=False,
                  comment="primary category path; 'unmapped' when none matched"),
        json("categories", "every category path of the product"),
        sa.Column("source_category", sa.String(length=300), nullable=True, comment="the POS's own category labels"),
        sa.Column("strain_type", sa.String(length=16), nullable=True, comment="indica, sativa, hybrid, cbd"),
        sa.Column("strain_lean", sa.String(length=16), nullable=True, comment="dominant side of a hybrid, when the source says it"),
        json("effects"), json("flavors"),
        json("cannabinoids", '{"thc": {"min", "max", "unit"}}, % where derivable'),
        money("thc_min_pct"), money("thc_max_pct"), money("cbd_min_pct"), money("cbd_max_pct"),
        money("thc_mg", comment="THC per package in mg when % cannot be derived (no net grams)"), money("cbd_mg"),
        money("weight_g", comment="net weight of one unit of sale in grams"), money("volume_ml"), money("alcohol_pct"),
        money("price"),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, comment="active, inactive, deleted"),
        sa.Column("stock_ref", sa.String(length=128), nullable=True,
                  comment="id the source's stock records use (Shopify inventory_item_id)"),
        json("attributes", "source-specific extras (vintage, origin, ...)"),
        stamp("source_updated_at"), stamp("deleted_at", "set when the source deleted it"), *timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "source", "product_id", name=op.f("pk_products")),
        comment="Every tenant's catalogue from its POS or Portaus, normalised to one model.",
    )
    op.create_index("ix_products_tenant_category", "products", ["tenant_id", "category"])
    op.create_index("ix_products_tenant_stock_ref", "products", ["tenant_id", "source", "stock_ref"])

    op.create_table(
        "inventory", *common(),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False, comment="products.product_id of the same source"),
        sa.Column("lot_id", sa.String(length=128), nullable=False,
                  comment="batch/lot; '' when the source does not track lots"),
        sa.Column("sku", sa.String(length=128), nullable=True),
        sa.Column("tracking", sa.String(length=16), nullable=False, comment="quantity, lot or weight"),
        money("quantity", nullable=False),
        sa.Column("quantity_unit", sa.String(length=8), nullable=False, comment="each or g"),
        money("min_quantity", nullable=False, comment="smallest sellable quantity"),
        money("increment", nullable=False, comment="step in which it is sold"),
        sa.Column("available", sa.Boolean(), nullable=False),
        money("low_stock_threshold", nullable=False),
        sa.Column("low_stock", sa.Boolean(), nullable=False),
        sa.Column("quantity_capped", sa.Boolean(), nullable=False, comment="the source caps what it reports (Treez: 30)"),
        sa.Column("compliance_id", sa.String(length=128), nullable=True, comment="METRC tag / package id"),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("packaged_on", sa.Date(), nullable=True),
        stamp("source_updated_at"), stamp("deleted_at", "set when the lot or product left the source"), *timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "source", "location_id", "product_id", "lot_id", name=op.f("pk_inventory")),
        comment="Stock per tenant, location, product and lot.",
    )
    op.create_index("ix_inventory_tenant_product", "inventory", ["tenant_id", "source", "product_id"])

    op.create_table(
        "customers", *common(),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True, comment="PII"),
        sa.Column("last_name", sa.String(length=100), nullable=True, comment="PII"),
        sa.Column("email", sa.String(length=320), nullable=True, comment="PII"),
        sa.Column("phone", sa.String(length=32), nullable=True, comment="PII, +E.164"),
        sa.Column("birth_date", sa.Date(), nullable=True, comment="PII"),
        sa.Column("street", sa.String(length=300), nullable=True, comment="PII"),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=True),
        sa.Column("postal_code", sa.String(length=16), nullable=True, comment="PII"),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("medical_id", sa.String(length=64), nullable=True, comment="PII"),
        sa.Column("gender", sa.String(length=1), nullable=True),
        sa.Column("customer_type", sa.String(length=16), nullable=True, comment="medical or recreational"),
        money("loyalty_points"),
        sa.Column("marketing_opt_in", sa.Boolean(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("postal_prefix", sa.String(length=3), nullable=True, comment="first three characters: area, not address"),
        stamp("source_created_at"), stamp("source_updated_at"), stamp("deleted_at"), *timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "source", "customer_id", name=op.f("pk_customers")),
        comment="POS customers with their PII: the only table that holds it. Analysts use customers_analytics.",
    )
    op.execute(ANALYTICS_VIEW)

    op.create_table(
        "saq_branches", *common(),
        sa.Column("branch_number", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        stamp("deleted_at"), *timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "source", "branch_number", name=op.f("pk_saq_branches")),
        comment="SAQ branches (Québec liquor stores) a Portaus tenant can assign orders to.",
    )


def downgrade() -> None:
    op.drop_table("saq_branches")
    op.execute("DROP VIEW IF EXISTS customers_analytics")
    op.drop_table("customers")
    op.drop_index("ix_inventory_tenant_product", table_name="inventory")
    op.drop_table("inventory")
    op.drop_index("ix_products_tenant_stock_ref", table_name="products")
    op.drop_index("ix_products_tenant_category", table_name="products")
    op.drop_table("products")
