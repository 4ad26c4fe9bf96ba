"""`storehouse warehouse …`: who may read what in the warehouse (warehouse/schemas.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

warehouse_app = typer.Typer(help="The analysts' side of the warehouse: its schemas and read-only roles.",
                            no_args_is_help=True)


@warehouse_app.command("analyst-tables")
def analyst_tables() -> None:
    """List the tables and views meant for analysts."""
    from storehouse.cli import console
    from warehouse.schemas import ANALYST, ANALYTICS

    table = Table(f"{ANALYTICS} (PostgreSQL schema)", "what it holds")
    for name, what in sorted(ANALYST.items()):
        table.add_row(name, what)
    console.print(table)


@warehouse_app.command("grant-analyst")
def grant_analyst(
    role: Annotated[str, typer.Argument(help="the role analysts log in as (created if missing)")],
    password: Annotated[Optional[str], typer.Option(envvar="STOREHOUSE_ANALYST_PASSWORD", show_default=False,
                                                    help="set the role's password (never printed)")] = None,
) -> None:
    """Create or grant a read-only role: it reads every analyst table and view, and nothing operational."""
    from sqlalchemy.engine import make_url

    from storehouse.cli import _engine, _migrate, console
    from settings import Settings
    from warehouse import schemas

    settings = Settings()
    if make_url(settings.warehouse_url).get_backend_name() != "postgresql":
        console.print("This warehouse is a SQLite file: it has no roles, so anyone who can read the file reads "
                      "every table. The tables and views meant for analysts (the same names on PostgreSQL, where "
                      f"they live in the schema {schemas.ANALYTICS!r}):", soft_wrap=True)
        analyst_tables()
        return
    _migrate(settings)  # places every table in its schema first
    try:
        with _engine(settings).begin() as conn:
            created = schemas.grant_analyst(conn, role, password)
    except ValueError as problem:
        console.print(f"[red]{problem}[/]")
        raise typer.Exit(2) from None
    console.print(f"[green]✓[/] role {role} {'created' if created else 'updated'}: reads schema "
                  f"{schemas.ANALYTICS!r} (search_path set to it), nothing in {schemas.OPS!r} or 'public'"
                  + ("" if password or not created else "; no password set (use --password)"))
