"""Alembic environment: runs against the URL set by ``warehouse.migrate`` (or alembic.ini)."""

from alembic import context

from warehouse.db import make_engine
from warehouse.marts import not_dbt_owned
from warehouse.tables import metadata

config = context.config


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
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                include_name=not_dbt_owned,  # the marts' tables are dbt's (analytics/)
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations()
