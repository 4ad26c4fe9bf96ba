"""The 3D-print studio's printing (seed 002, "3D File Processing & Slicing"): uploaded models and
their slices, materials, printers, pricing templates and print jobs.

``studio_tmp_files`` is the seed's ``tmp_files``: one row per upload (bucket ``tmp``, key
``{tenant}/{userId}/{uuid}/{filename}``), its ``status`` and ``metadata`` as the seed gives them
(attempts, settings, metrics, fallback, error, output), plus the lease of the slice that runs on
it. ``studio_slicer_slots`` holds one row per slicer process allowed at once (SLICER_CONCURRENCY,
at most 4): a slice runs only under a leased slot, so the limit holds across every API process
and machine. ``studio_slice_cache`` keeps each result by (model hash, settings, profile).
"""

import sqlalchemy as sa

from warehouse.tables.base import metadata, tenant_column
from warehouse.types import JSONDoc, Money, UTCDateTime, utc_now

NOW = utc_now()
MAX_SLOTS = 4


def _id(what: str) -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True,
                     comment=f"{what} id")


def _created() -> sa.Column:
    return sa.Column("created_at", UTCDateTime, nullable=False, server_default=NOW, comment="when it was created (UTC)")


def _updated() -> sa.Column:
    return sa.Column("updated_at", UTCDateTime, nullable=False, server_default=NOW,
                     comment="when it last changed (UTC)")


def _tenant_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE")


studio_materials = sa.Table(
    "studio_materials",
    metadata,
    _id("material"),
    tenant_column(),
    sa.Column("name", sa.String(100), nullable=False, comment="what clients pick, e.g. 'PLA black'"),
    sa.Column("kind", sa.String(20), nullable=False, server_default="PLA", comment="PLA, PETG, ABS, TPU, ..."),
    sa.Column("colour", sa.String(40), comment="colour name or #RRGGBB"),
    sa.Column("cost_per_kg", Money, nullable=False, comment="what a kilogram costs the studio (studio currency)"),
    sa.Column("density_g_cm3", sa.Numeric(6, 3), nullable=False, server_default="1.240",
              comment="density in g/cm³: grams from the estimated volume"),
    sa.Column("profile", sa.String(100), comment="PrusaSlicer filament profile (.ini in studio/slicing/profiles); "
              "null: the default PLA"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true(), comment="offered to clients"),
    _created(),
    _updated(),
    _tenant_fk(),
    sa.UniqueConstraint("tenant_id", "name", name="uq_studio_materials_tenant_name"),
    comment="Materials a studio prints with, with cost and density.",
)

studio_printers = sa.Table(
    "studio_printers",
    metadata,
    _id("printer"),
    tenant_column(),
    sa.Column("name", sa.String(100), nullable=False, comment="the printer's name in the studio"),
    sa.Column("model", sa.String(100), comment="make and model"),
    sa.Column("status", sa.String(20), nullable=False, server_default="idle",
              comment="idle, printing, maintenance or offline"),
    sa.Column("hourly_rate", Money, nullable=False, comment="machine time charged per hour (studio currency)"),
    sa.Column("build_x_mm", sa.Numeric(8, 2), nullable=False, comment="build volume width (mm)"),
    sa.Column("build_y_mm", sa.Numeric(8, 2), nullable=False, comment="build volume depth (mm)"),
    sa.Column("build_z_mm", sa.Numeric(8, 2), nullable=False, comment="build volume height (mm)"),
    sa.Column("profile", sa.String(100), comment="PrusaSlicer printer profile (.ini in studio/slicing/profiles); "
              "null: the default"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true(), comment="accepts new jobs"),
    _created(),
    _updated(),
    _tenant_fk(),
    sa.UniqueConstraint("tenant_id", "name", name="uq_studio_printers_tenant_name"),
    comment="A studio's printers: rate, status and build volume.",
)

studio_product_templates = sa.Table(
    "studio_product_templates",
    metadata,
    _id("template"),
    tenant_column(),
    sa.Column("name", sa.String(100), nullable=False, comment="e.g. 'Standard FDM print'"),
    sa.Column("setup_fee", Money, nullable=False, server_default="0", comment="added once per model (studio currency)"),
    sa.Column("margin_percent", sa.Numeric(6, 2), nullable=False, server_default="0",
              comment="added on top of material, machine time and setup, percent"),
    sa.Column("minimum_price", Money, nullable=False, server_default="0", comment="no model is priced under this"),
    sa.Column("rush_multiplier", sa.Numeric(6, 3), nullable=False, server_default="1.000",
              comment="applied to a rush order's price (e.g. 1.5)"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true(), comment="offered for new quotes"),
    _created(),
    _updated(),
    _tenant_fk(),
    sa.UniqueConstraint("tenant_id", "name", name="uq_studio_product_templates_tenant_name"),
    comment="Pricing rules for printed models: setup fee, margin, minimum price, rush multiplier.",
)

studio_tmp_files = sa.Table(
    "studio_tmp_files",
    metadata,
    _id("tmp file"),
    tenant_column(),
    sa.Column("user_id", sa.String(36), nullable=False, comment="users.id of who uploaded it (its owner)"),
    sa.Column("storage_key", sa.String(500), nullable=False, unique=True, comment="key in the tmp bucket"),
    sa.Column("filename", sa.String(255), nullable=False, comment="file name as uploaded"),
    sa.Column("size_bytes", sa.BigInteger, nullable=False, comment="size"),
    sa.Column("mime_type", sa.String(100), nullable=False, comment="model/stl or model/3mf"),
    sa.Column("sha256", sa.String(64), nullable=False, comment="digest of the content (the slice cache's key)"),
    sa.Column("status", sa.String(10), nullable=False, server_default="idle",
              comment="idle, running, completed or failed (the seed's slice status)"),
    sa.Column("metadata", JSONDoc, nullable=False, comment="the seed's metadata: attempts, settings, metrics, "
              "fallback, error, output (G-code key), plus the mesh's measures and the printer and material"),
    sa.Column("next_run_at", UTCDateTime, comment="a running slice is due from then (retries wait)"),
    sa.Column("lease_token", sa.String(32), comment="the worker running the slice now"),
    sa.Column("lease_expires_at", UTCDateTime, comment="its lease; past it the slice is taken over"),
    _created(),
    _updated(),
    _tenant_fk(),
    sa.Index("ix_studio_tmp_files_owner", "tenant_id", "user_id"),
    sa.Index("ix_studio_tmp_files_due", "status", "next_run_at"),
    comment="Uploaded models and their slices (the seed's tmp_files, bucket tmp).",
)

studio_slice_cache = sa.Table(
    "studio_slice_cache",
    metadata,
    tenant_column(),
    sa.Column("cache_key", sa.String(64), nullable=False,
              comment="sha256 of the model's sha256, the canonical settings and the profiles' content"),
    sa.Column("model_sha256", sa.String(64), nullable=False, comment="digest of the model"),
    sa.Column("settings", JSONDoc, nullable=False, comment="the slice settings"),
    sa.Column("profile", sa.String(200), nullable=False, comment="the printer and material profiles used"),
    sa.Column("grams", sa.Numeric(12, 2), nullable=False, comment="filament weight (g) from the G-code"),
    sa.Column("time_s", sa.Integer, nullable=False, comment="estimated print time (s) from the G-code"),
    sa.Column("slicer", sa.String(100), nullable=False, comment="the slicer's command that produced it"),
    sa.Column("notes", JSONDoc, nullable=False, comment="what was adapted (e.g. tree supports as snug)"),
    sa.Column("gcode_key", sa.String(500), comment="the G-code in the tmp bucket (gone once the tmp file is cleaned)"),
    _created(),
    sa.PrimaryKeyConstraint("tenant_id", "cache_key"),
    _tenant_fk(),
    comment="Slice results per studio by (model hash, settings, profile): the same model is never sliced twice.",
)

studio_slicer_slots = sa.Table(
    "studio_slicer_slots",
    metadata,
    sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False,
              comment="slot number 0..3; slots below SLICER_CONCURRENCY are used"),
    sa.Column("lease_token", sa.String(32), comment="the worker holding the slot"),
    sa.Column("lease_expires_at", UTCDateTime, comment="its lease; past it the slot is free again"),
    sa.Column("claims", sa.Integer, nullable=False, server_default="0", comment="times the slot was taken"),
    comment="One row per slicer process allowed at once, across every process and machine.",
)

studio_print_jobs = sa.Table(
    "studio_print_jobs",
    metadata,
    _id("print job"),
    tenant_column(),
    sa.Column("invoice_item_id", sa.BigInteger, sa.ForeignKey("studio_invoice_items.id", ondelete="CASCADE"),
              nullable=False, comment="studio_invoice_items.id: the line it prints"),
    sa.Column("printer_id", sa.BigInteger, sa.ForeignKey("studio_printers.id", ondelete="SET NULL"),
              comment="studio_printers.id it is (to be) printed on"),
    sa.Column("material_id", sa.BigInteger, sa.ForeignKey("studio_materials.id", ondelete="SET NULL"),
              comment="studio_materials.id it is printed with"),
    sa.Column("status", sa.String(10), nullable=False, server_default="queued",
              comment="queued, printing, done or failed"),
    sa.Column("quantity", sa.Integer, nullable=False, server_default="1", comment="copies to print"),
    sa.Column("estimated_s", sa.Integer, comment="estimated print time of all copies (s)"),
    sa.Column("grams", sa.Numeric(12, 2), comment="estimated filament of all copies (g)"),
    sa.Column("started_at", UTCDateTime, comment="when printing started (UTC)"),
    sa.Column("finished_at", UTCDateTime, comment="when it finished or failed (UTC)"),
    sa.Column("failure_reason", sa.Text, comment="why it failed, when it did"),
    _created(),
    _updated(),
    _tenant_fk(),
    sa.Index("ix_studio_print_jobs_printer", "tenant_id", "printer_id", "status"),
    sa.Index("ix_studio_print_jobs_item", "tenant_id", "invoice_item_id"),
    comment="Print jobs per invoice line: queued, printing, done or failed, on a printer.",
)
