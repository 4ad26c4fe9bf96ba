"""``storehouse users``: people who sign in to the staff API, their grants and API keys.

The first super admin is made here (``users add EMAIL --super-admin``): the API has no way to make
one, so nobody can sign up into the whole platform.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from settings import Settings

users_app = typer.Typer(help="Users of the staff API: add, list, grant, revoke, API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for machines: shown once, stored hashed.", no_args_is_help=True)
users_app.add_typer(keys_app, name="keys")
console = Console()


def _engine():
    from resources.warehouse import engine_for
    from warehouse.migrate import upgrade

    url = Settings().warehouse_url
    upgrade(url)  # a no-op once migrated; the first super admin may come before any tenant
    return engine_for(url)


def _user_id(conn, email: str) -> str:
    from people.users import find_user

    user = find_user(conn, email)
    if user is None:
        console.print(f"[red]no user {email}[/]")
        raise typer.Exit(2)
    return user["id"]


def _refused(exc: Exception) -> typer.Exit:
    console.print(f"[red]{exc}[/]")
    return typer.Exit(2)


@users_app.command("add")
def add(email: str, name: Annotated[str, typer.Option(help="shown name")] = "",
        super_admin: Annotated[bool, typer.Option("--super-admin", help="every permission on every tenant")] = False,
        no_password: Annotated[bool, typer.Option("--no-password", help="a machine: API keys only")] = False) -> None:
    """Add a user; the password is asked for (twice), never taken as an argument."""
    from people.credentials import Passwords
    from people.settings import PeopleSettings
    from people.users import PeopleError, create_user

    password = None if no_password else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    s = PeopleSettings()
    with _engine().begin() as conn:
        try:
            create_user(conn, Passwords(s.argon2_memory_kib, s.argon2_time_cost), email, name or email, password,
                        super_admin=super_admin)
        except PeopleError as exc:
            raise _refused(exc) from None
    console.print(f"[green]✓[/] user {email.strip().lower()} added" + (" (super admin)" if super_admin else ""))


@users_app.command("list")
def list_(tenant: Annotated[Optional[str], typer.Option(help="only this tenant's users, with their roles")] = None
          ) -> None:
    """Users, or one tenant's users with their roles."""
    from people.users import list_users, tenant_users

    with _engine().connect() as conn:
        rows = tenant_users(conn, tenant) if tenant else list_users(conn)
    table = Table("email", "name", "status", "role" if tenant else "super admin", "live" if tenant else "last login")
    for r in rows:
        if tenant:
            table.add_row(r["email"], r["name"], r["status"], r["role"], "yes" if r["live"] else "no")
        else:
            table.add_row(r["email"], r["name"], r["status"], "yes" if r["super_admin"] else "",
                          str(r["last_login_at"] or "never"))
    console.print(table)


@users_app.command("grant")
def grant(email: str, tenant: str, role: str,
          expires: Annotated[Optional[dt.datetime], typer.Option(help="UTC end of the grant")] = None,
          add: Annotated[Optional[list[str]], typer.Option("--add", help="a permission beyond the role's")] = None,
          remove: Annotated[Optional[list[str]], typer.Option("--remove", help="a permission of the role withheld")]
          = None,
          customer: Annotated[Optional[str], typer.Option(help="role customer: their customer id")] = None) -> None:
    """Give EMAIL ROLE on TENANT (one role per user per tenant: replaces the old one)."""
    from people.users import PeopleError, grant as give

    overrides = {k: v for k, v in (("add", add), ("remove", remove)) if v}
    expires_at = expires.replace(tzinfo=dt.timezone.utc) if expires and expires.tzinfo is None else expires
    with _engine().begin() as conn:
        try:
            give(conn, _user_id(conn, email), tenant, role, overrides=overrides, expires_at=expires_at,
                 customer_id=customer)
        except PeopleError as exc:
            raise _refused(exc) from None
    console.print(f"[green]✓[/] {email} is {role} on {tenant}" + (f" until {expires_at}" if expires_at else ""))


@users_app.command("revoke")
def revoke(email: str, tenant: str) -> None:
    """End EMAIL's grant on TENANT, at once on every API worker."""
    from people.users import revoke as end

    with _engine().begin() as conn:
        done = end(conn, _user_id(conn, email), tenant)
    console.print(f"[green]✓[/] {email} has no grant on {tenant} now" if done else f"{email} held nothing on {tenant}")


@keys_app.command("create")
def key_create(email: str, name: str) -> None:
    """A new API key acting as EMAIL; printed this once."""
    from people.users import PeopleError, create_key

    with _engine().begin() as conn:
        try:
            key = create_key(conn, _user_id(conn, email), name)
        except PeopleError as exc:
            raise _refused(exc) from None
    console.print(f"[green]✓[/] key {name!r} (prefix {key.prefix}); it is shown only now:")
    typer.echo(key.key)


@keys_app.command("list")
def key_list(email: str) -> None:
    from people.users import list_keys

    with _engine().connect() as conn:
        rows = list_keys(conn, _user_id(conn, email))
    table = Table("name", "prefix", "created", "last used", "revoked")
    for r in rows:
        table.add_row(r["name"], r["prefix"], str(r["created_at"]), str(r["last_used_at"] or "never"),
                      str(r["revoked_at"] or ""))
    console.print(table)


@keys_app.command("revoke")
def key_revoke(email: str, prefix: str) -> None:
    from people.users import revoke_key

    with _engine().begin() as conn:
        done = revoke_key(conn, _user_id(conn, email), prefix)
    if not done:
        console.print(f"[red]{email} has no live key {prefix}[/]")
        raise typer.Exit(2)
    console.print(f"[green]✓[/] key {prefix} revoked")
