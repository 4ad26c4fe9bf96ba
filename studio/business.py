"""A studio's business details (name, address, ABN, bank details, logo, GST rate, prefixes, terms):
what its quotes and invoices print, and the defaults new documents take."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from studio.activity import Actor, log_activity
from warehouse.tables.core import tenants
from warehouse.tables.studio import studio_business
from warehouse.types import now_utc

FIELDS = ("name", "address", "phone", "email", "abn", "bank_name", "bank_bsb", "bank_account", "bank_account_name",
          "logo_key", "currency", "gst_rate", "quote_prefix", "invoice_prefix", "payment_terms_days",
          "quote_valid_days")
# A studio that has saved no details yet: the table's defaults, named after its tenant.
DEFAULTS: dict[str, Any] = {"currency": "AUD", "gst_rate": "0.1000", "quote_prefix": "Q-", "invoice_prefix": "INV-",
                            "payment_terms_days": 14, "quote_valid_days": 30}


def get_business(conn: sa.Connection, tenant_id: str) -> dict[str, Any]:
    """The studio's details (every field in ``FIELDS``; defaults where it saved none)."""
    row = conn.execute(sa.select(studio_business).where(studio_business.c.tenant_id == tenant_id)
                       ).mappings().one_or_none()
    if row is not None:
        return dict(row)
    name = conn.execute(sa.select(tenants.c.name).where(tenants.c.tenant_id == tenant_id)).scalar_one_or_none()
    return {**{f: None for f in FIELDS}, **DEFAULTS, "gst_rate": Decimal(DEFAULTS["gst_rate"]),
            "tenant_id": tenant_id, "name": name or tenant_id, "updated_at": None}


def is_studio(conn: sa.Connection, tenant_id: str) -> bool:
    """A tenant is a studio once it has business details (``save_business``: the demo, or its
    staff's ``PUT /studios/{tenant}/business``); every other studio route is closed to the rest."""
    return conn.execute(sa.select(studio_business.c.tenant_id).where(studio_business.c.tenant_id == tenant_id)
                        ).first() is not None


def save_business(conn: sa.Connection, tenant_id: str, actor: Actor, **fields: Any) -> dict[str, Any]:
    """Set the given fields (the others keep their value); returns the details now."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown business fields {sorted(unknown)}")
    current = get_business(conn, tenant_id)
    row = {**{f: current[f] for f in FIELDS}, **fields, "tenant_id": tenant_id, "updated_at": now_utc()}
    # Not warehouse.upsert: its raw SQLite path binds Money, not this table's plain Numeric rates.
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(studio_business)
    conn.execute(insert.values(**row).on_conflict_do_update(
        index_elements=[studio_business.c.tenant_id], set_={k: v for k, v in row.items() if k != "tenant_id"}))
    log_activity(conn, tenant_id, "business", 0, "updated", actor, fields=sorted(fields))
    return get_business(conn, tenant_id)
