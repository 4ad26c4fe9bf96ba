"""Alembic environment: runs against the URL set by ``warehouse.migrate`` (or alembic.ini)."""

from alembic import context

from warehouse import schemas
from warehouse.db import make_engine
from warehouse.marts import not_dbt_owned
from warehouse.tables import metadata

config = context.config
MIGRATION_LOCK = 0x5701E0  # PostgreSQL advisory lock key held by a migration run


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Batch mode rebuilds a table by dropping it: with foreign keys on, that drop would
                # cascade to (delete) the rows of every table referencing it. Off outside any
                # transaction (SQLite ignores the pragma inside one), checked again at the end.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=sqlite,
                include_name=not_dbt_owned,  # the marts' tables are dbt's (analytics/)
            )
            postgres = connection.dialect.name == "postgresql"
            with context.begin_transaction():
                if postgres:  # one process at a time (placing re-grants analyst roles, which must not race)
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                    schemas.create_schemas(connection)  # what migrations create lands in analytics, then is placed
                context.run_migrations()
                if postgres:
                    schemas.place(connection)
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                connection.rollback()
                if broken:
                    raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")
    finally:
        engine.dispose()


run_migrations()
