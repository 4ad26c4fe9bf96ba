"""tenant_connections.credentials: encrypted at rest

The column becomes text holding a Fernet token of the credentials' JSON document (JSONB on
PostgreSQL before). Rows stored in plain text are encrypted with the key the settings name
(``STOREHOUSE_SECRETS_KEY``, else the key file, created here if there is none yet); downgrading
decrypts them again.

Revision ID: 0008_secrets_credentials
Revises: 0001_foundation
Create Date: 2026-12-06
"""

import orjson
import sqlalchemy as sa
from alembic import op

from warehouse.secrets import keyring, unseal

revision = "0008_secrets_credentials"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

connections = sa.table("tenant_connections", sa.column("tenant_id", sa.String), sa.column("system", sa.String),
                       sa.column("credentials", sa.Text))


def _rows(bind) -> list[tuple[str, str, str]]:
    return bind.execute(sa.select(connections.c.tenant_id, connections.c.system, connections.c.credentials)).all()


def _set(bind, tenant_id: str, system: str, value: str) -> None:
    c = connections.c
    bind.execute(sa.update(connections).where(c.tenant_id == tenant_id, c.system == system).values(credentials=value))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.alter_column("tenant_connections", "credentials", type_=sa.Text(), postgresql_using="credentials::text")
    plain = [(t, s, v) for t, s, v in _rows(bind) if v.lstrip().startswith("{")]  # tokens never start with "{"
    if plain:
        ring = keyring(create=True)
        for tenant_id, system, value in plain:
            _set(bind, tenant_id, system, ring.seal(orjson.loads(value)))


def downgrade() -> None:
    bind = op.get_bind()
    for tenant_id, system, value in _rows(bind):
        if not value.lstrip().startswith("{"):
            _set(bind, tenant_id, system, orjson.dumps(unseal(value)).decode())
    if bind.dialect.name == "postgresql":
        op.alter_column("tenant_connections", "credentials", type_=sa.dialects.postgresql.JSONB(),
                        postgresql_using="credentials::jsonb")
