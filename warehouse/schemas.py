"""Which warehouse tables and views are for analysts, and (on PostgreSQL) the schemas that say so.

Every table and view belongs to one of two schemas:

* ``analytics``: what analysts query. No credentials, secrets, tokens, leases, raw request or
  webhook bodies, and no contact PII (where a table holds some, analysts get a view without it:
  ``customers_analytics``, ``orders_analytics``, ``webhook_events_analytics``,
  ``studio_invoices_analytics``, ``studio_clients_analytics``).
* ``ops``: what runs the platform (connections, cursors, leases, jobs, breakers, outboxes, raw
  bodies) and the rows those views are cut from.

On PostgreSQL they are real schemas. Tables stay declared without a schema: every connection of
:func:`warehouse.db.make_engine` sets ``search_path`` to ``analytics, ops, public``, so the same
unqualified SQL works everywhere; after each migration run :func:`place` moves every relation
into its schema, and :func:`grant_analyst` makes a read-only login that sees ``analytics`` and
nothing of ``ops``. On SQLite (one file) the same names apply and nothing enforces the split.

A table or view that is not listed here fails ``tests/test_schemas.py``: whoever adds one says
where it belongs.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

ANALYTICS, OPS = "analytics", "ops"
SEARCH_PATH = (ANALYTICS, OPS, "public")

# name -> what an analyst finds there
ANALYST: dict[str, str] = {
    "tenants": "one row per merchant (its connections and credentials stay in ops)",
    "transactions": "MX Merchant payments",
    "invoices": "MX Merchant invoices",
    "invoice_lines": "MX Merchant invoice lines",
    "product_categories": "MX Merchant product categories",
    "products": "POS and Portaus catalog, normalised",
    "inventory": "POS stock per location and lot",
    "customers_analytics": "POS customers without PII (view of ops.customers)",
    "saq_branches": "SAQ branches (Portaus)",
    "esim_packages": "eSIM provider packages with cost and price",
    "esim_stock": "eSIM units left per package",
    "orders_analytics": "eSIM shop orders without e-mail, checkout URL or idempotency key (view of ops.orders)",
    "payments": "Stripe PaymentIntents behind orders, with refunds",
    "order_refunds": "each refund of an eSIM order, with when it was recorded",
    "webhook_events_analytics": "Stripe events accepted and their outcome, without the body (view)",
    "provisioning_attempts": "every eSIM provider call made for an order",
    "sync_runs": "one row per sync of a stream for a tenant: freshness, rows, API calls",
    "studio_quotes": "the 3D-print studio's quotes",
    "studio_quote_items": "lines of the studio's quotes",
    "studio_invoice_items": "lines of the studio's invoices",
    "studio_payments": "payments and refunds of the studio's invoices",
    "studio_invoices_analytics": "the studio's invoices without checkout URL, link digest or notes (view of ops.studio_invoices)",
    "studio_clients_analytics": "the studio's clients without contact details: id, sign-in, archived (view of ops.studio_clients)",
    "studio_materials": "the studio's materials: cost per kg, density, colour",
    "studio_printers": "the studio's printers: hourly rate, status, build volume",
    "studio_product_templates": "the studio's pricing rules: setup fee, margin, minimum, rush",
    "studio_print_jobs": "print jobs per invoice line, on a printer, with their times",
}

# name -> why analysts do not see it
OPERATIONAL: dict[str, str] = {
    "alembic_version": "migration bookkeeping",
    "tenant_connections": "credentials of every outside system",
    "sync_state": "incremental cursors",
    "sync_requests": "queue of manual sync requests",
    "circuit_breakers": "breaker state shared by every process",
    "quarantine": "raw records that failed to load (may hold PII); counts are in sync_runs",
    "customers": "PII; analysts use customers_analytics",
    "orders": "customer e-mail, checkout URL and idempotency key; analysts use orders_analytics",
    "order_esims": "activation codes and QR codes: the eSIMs themselves",
    "webhook_events": "raw Stripe event bodies; analysts use webhook_events_analytics",
    "provisioning_jobs": "provisioning queue with leases",
    "order_effects": "outbox of e-mails, notices and refunds with leases",
    "unclaimed_esims": "operators' worklist of eSIMs to settle by hand",
    "pos_webhook_events": "raw POS webhook bodies",
    "pos_webhook_tokens": "hashes of webhook URL secrets",
    "pos_orders": "requests sent to and answers from a POS, with customer references",
    "portaus_payment_intents": "Portaus answers and redirect URLs",
    "users": "staff e-mails, names and password hashes",
    "user_tenant_permissions": "who may do what on which tenant",
    "user_sessions": "refresh-token sessions (hashes)",
    "spent_refresh_tokens": "refresh tokens already used (hashes)",
    "api_keys": "machine keys (hashes)",
    "invitations": "pending invitations with e-mails",
    "invoice_data_sent": "the nurses' data-sent flag on MX invoices, with who set it",
    "audit_log": "who did what on which tenant (staff e-mails)",
    "sync_progress": "manual sync requests with who asked and their live progress",
    "studio_business": "the studio's bank details",
    "studio_document_numbers": "document number counters",
    "studio_clients": "the studio's clients' e-mails, phones and addresses; analysts use studio_clients_analytics",
    "studio_invoices": "checkout URLs and the digest of the invoice page's link; analysts use studio_invoices_analytics",
    "studio_attachments": "files attached to invoices",
    "studio_order_files": "clients' 3D model files",
    "studio_activity_logs": "who did what, with staff and client ids",
    "studio_user_messages": "messages between staff and clients",
    "studio_tmp_files": "uploaded models with their owners, storage keys and slice leases",
    "studio_slice_cache": "slice results by model hash and settings",
    "studio_slicer_slots": "slicer concurrency slots with leases",
}

_RELKINDS = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Unclassified(KeyError):
    """A table or view neither :data:`ANALYST` nor :data:`OPERATIONAL` lists."""


def schema_of(name: str) -> str:
    if name in ANALYST:
        return ANALYTICS
    if name in OPERATIONAL:
        return OPS
    raise Unclassified(f"{name!r} is neither in warehouse.schemas.ANALYST nor OPERATIONAL: say where it belongs")


def search_path() -> str:
    return ", ".join(SEARCH_PATH)


# -- PostgreSQL ------------------------------------------------------------------------------

def _q(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def create_schemas(conn: sa.Connection) -> None:
    """Both schemas, so that what a migration creates lands in ``analytics`` until placed. Only
    missing ones: a role without CREATE on the database migrates into schemas made for it."""
    present = set(conn.execute(sa.text("SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname IN (:a, :o)"),
                               {"a": ANALYTICS, "o": OPS}).scalars())
    for schema in (ANALYTICS, OPS):
        if schema not in present:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")


def relations(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """(schema, name, relkind) of every table and view in the schemas on the search path."""
    rows = conn.execute(sa.text(
        "SELECT n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p', 'f', 'v', 'm') ORDER BY 1, 2"),
        {"schemas": list(SEARCH_PATH)})
    return [tuple(row) for row in rows]


def place(conn: sa.Connection) -> list[str]:
    """Move every classified table and view into its schema (idempotent), then bring the grants
    of every analyst role up to date. Unclassified relations stay where they are. Returns what
    moved, as ``schema.name``."""
    create_schemas(conn)
    where: dict[str, list[tuple[str, str]]] = {}
    for schema, name, kind in relations(conn):
        where.setdefault(name, []).append((schema, kind))
    moved = []
    for name, found in sorted(where.items()):
        if name not in ANALYST and name not in OPERATIONAL:
            continue
        if len(found) > 1:
            raise RuntimeError(f"{name} exists in more than one schema: {', '.join(s for s, _ in found)}")
        (schema, kind), target = found[0], schema_of(name)
        if schema != target:
            conn.exec_driver_sql(f"ALTER {_RELKINDS[kind]} {_q(conn, schema)}.{_q(conn, name)} SET SCHEMA {target}")
            moved.append(f"{target}.{name}")
    for role in analyst_roles(conn):
        _grant(conn, role)
    return moved


def analyst_roles(conn: sa.Connection) -> list[str]:
    """Roles granted USAGE on ``analytics`` (other than its owner)."""
    return list(conn.execute(sa.text(
        "SELECT DISTINCT r.rolname FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a "
        "JOIN pg_catalog.pg_roles r ON r.oid = a.grantee "
        "WHERE n.nspname = :schema AND a.privilege_type = 'USAGE' AND a.grantee <> n.nspowner ORDER BY 1"),
        {"schema": ANALYTICS}).scalars())


def grant_analyst(conn: sa.Connection, role: str, password: str | None = None) -> bool:
    """Create ``role`` (LOGIN) if missing and make it read-only on ``analytics``, with no access to
    ``ops`` or ``public``. Idempotent. Returns whether the role was created."""
    if not _ROLE.match(role):
        raise ValueError(f"role name {role!r}: use lower-case letters, digits and _ (at most 63)")
    existing = conn.execute(sa.text("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = :r"), {"r": role}).first()
    if existing is not None and (existing.rolsuper or role == conn.execute(sa.text("SELECT current_user")).scalar()):
        raise ValueError(f"role {role!r} is a superuser or the warehouse's own role: it cannot be made read-only")
    if existing is None:
        conn.exec_driver_sql(f"CREATE ROLE {_q(conn, role)} LOGIN")
    if password is not None:  # hashed here (by libpq, as psql's \password does): the server never logs it
        from psycopg import sql

        driver = conn.connection.driver_connection
        verifier = driver.pgconn.encrypt_password(password.encode(), role.encode(), None).decode()
        statement = sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))
        conn.exec_driver_sql(statement.as_string(driver))
    database = conn.execute(sa.text("SELECT current_database()")).scalar()
    conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {_q(conn, database)} TO {_q(conn, role)}")
    conn.exec_driver_sql(f"ALTER ROLE {_q(conn, role)} IN DATABASE {_q(conn, database)} SET search_path = {ANALYTICS}")
    create_schemas(conn)
    _grant(conn, role)
    return existing is None


def _grant(conn: sa.Connection, role: str) -> None:
    """SELECT on everything in ``analytics`` (now and to come), nothing else anywhere we own."""
    r = _q(conn, role)
    for statement in (
        f"GRANT USAGE ON SCHEMA {ANALYTICS} TO {r}",
        f"REVOKE CREATE ON SCHEMA {ANALYTICS} FROM {r}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {ANALYTICS} FROM {r}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {ANALYTICS} TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {ANALYTICS} GRANT SELECT ON TABLES TO {r}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {ANALYTICS} FROM {r}",
        *(s for schema in (OPS, "public") for s in (
            f"REVOKE ALL ON SCHEMA {schema} FROM {r}",
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {r}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {r}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {r}",
        )),
    ):
        conn.exec_driver_sql(statement)
