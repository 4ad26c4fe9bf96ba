"""The staff API's authorisation: who is asking (bearer access token or API key) and whether
their live grant on the path's tenant holds the route's permission.

Each staff route declares exactly one rule, through ``require(permission)`` (a tenant's route),
``signed_in`` (about the caller only) or ``across(permission)`` (every tenant the caller holds it
on). The rule is readable from the route table (``rule_of``): the authorisation matrix test is
generated from it, so a route without a rule fails that test. Unknown tenants and tenants the
caller holds nothing on are refused alike (403), so a refusal does not tell which tenants exist.

The rules are async: a credential the worker remembers (``people.credential_cache``) is answered
on the event loop, and only a lookup goes to the thread pool (a hop costs as much as the answer).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator
from typing import Annotated, Any, Callable

import sqlalchemy as sa

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from api.deps import client_address
from api.problems import Problem, problem_responses
from people.auth import Access, Auth, Principal

bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False,
                              description="An access token from /auth/token, or an API key (shk_…).")


async def get_auth(request: Request) -> Auth:
    return request.app.state.people


AuthDep = Annotated[Auth, Depends(get_auth)]


def read_connection(request: Request) -> Iterator[sa.Connection]:
    """One connection per request for reading, shared by the authorisation and the route."""
    with request.app.state.services.engine.connect() as conn:
        yield conn


ReadConn = Annotated[sa.Connection, Depends(read_connection)]


def unauthorised() -> Problem:
    return Problem(401, "unauthorised", "Sign in: send a valid access token or API key as a bearer token.",
                   headers={"WWW-Authenticate": "Bearer"})


async def authorise(auth: Auth, token: str | None, tenant_id: str | None = None,
                    conn: sa.Connection | None = None) -> tuple[Principal | None, Access | None]:
    """``Auth.authorise`` without a thread-pool hop when the answer is remembered."""
    known = auth.remembered(token, tenant_id)
    return known if known is not None else await run_in_threadpool(auth.authorise, token, tenant_id, conn)


async def current_principal(auth: AuthDep, token: Annotated[str | None, Depends(bearer)]) -> Principal:
    found = (await authorise(auth, token))[0]
    if found is None:
        raise unauthorised()
    return found


async def signed_in(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    return principal


signed_in.staff_rule = "signed-in"  # type: ignore[attr-defined]
SignedIn = Annotated[Principal, Depends(signed_in)]


def forbidden(detail: str = "You have no access to this here.") -> Problem:
    return Problem(403, "forbidden", detail)


def require(permission: str) -> Callable[..., Access]:
    """A dependency: the caller's live grant on ``{tenant}`` when it holds ``permission``
    (who the caller is and their grant there: remembered by the worker, or one query)."""
    return require_any(permission)


def require_any(*permissions: str) -> Callable[..., Access]:
    """As ``require``, for a route open to holders of any of ``permissions`` (a studio's staff with
    ``studio.view`` and its clients with ``studio.portal``, on a route that scopes what each sees)."""

    async def dependency(tenant: str, auth: AuthDep, token: Annotated[str | None, Depends(bearer)],
                         conn: ReadConn) -> Access:
        principal, access = await authorise(auth, token, tenant if len(tenant) <= 64 else None, conn)
        if principal is None:
            raise unauthorised()
        if access is None or not any(access.allows(p) for p in permissions):
            raise forbidden(f"You may not do this ({' or '.join(permissions)}) on this tenant.")
        return access

    dependency.staff_rule = "|".join(permissions)  # type: ignore[attr-defined]
    return dependency


def across(permission: str) -> Callable[..., list[Access]]:
    """A dependency: the caller's live grants holding ``permission``, on every tenant (none: 403)."""

    def dependency(auth: AuthDep, principal: Annotated[Principal, Depends(current_principal)]) -> list[Access]:
        granted = [a for a in auth.live_grants(principal) if a.allows(permission)]
        if not granted:
            raise forbidden(f"You hold {permission} on no tenant.")
        return granted

    dependency.staff_rule = f"across:{permission}"  # type: ignore[attr-defined]
    return dependency


def rule_of(route: APIRoute) -> str | None:
    """The staff rule a route declares (None: none, i.e. a public route)."""
    stack: list[Any] = [route.dependant]
    while stack:
        dep = stack.pop()
        rule = getattr(dep.call, "staff_rule", None)
        if rule:
            return rule
        stack.extend(dep.dependencies)
    return None


def throttle_signin(request: Request, account: str) -> None:
    """429 while this account or this client has used up its failed sign-ins (``note_failure``)."""
    limiter = request.app.state.signin_limiter
    wait = max(limiter.peek(f"account|{account}"), limiter.peek(f"client|{client_address(request)}"))
    if wait:
        raise Problem(429, "rate-limited", "Too many failed sign-ins; wait before trying again.",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})


def note_failure(request: Request, account: str) -> None:
    limiter = request.app.state.signin_limiter
    limiter.hit(f"account|{account}")
    limiter.hit(f"client|{client_address(request)}")


# What every staff route can answer; a route adds what only it can (409 on a write that clashes,
# 429 on sign-in).
STAFF_RESPONSES: dict[int | str, dict[str, Any]] = problem_responses(400, 401, 403, 404, 422)


def route_table() -> list[tuple[APIRoute, str | None]]:
    """Every API route of every router the app includes, with its staff rule (None: public)."""
    from api.app import ROUTERS

    return [(route, rule_of(route)) for name in ROUTERS for route in importlib.import_module(name).router.routes
            if isinstance(route, APIRoute)]
