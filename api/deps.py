"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Header, Path, Query, Request
from pydantic import BeforeValidator
from starlette.concurrency import run_in_threadpool

from api.problems import Problem
from api.ratelimit import RateLimiter
from commerce.services import Services
from commerce.storefronts import Storefront
from resources.storage import Storage
from resources.storage.settings import StorageSettings
from studio.business import is_studio


# Dependencies that only read the app's state are coroutines: FastAPI runs a plain function in
# the thread pool, a hop per dependency per request.
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_engine(request: Request) -> sa.Engine:
    return request.app.state.services.engine


EngineDep = Annotated[sa.Engine, Depends(get_engine)]


async def get_storage(request: Request) -> Storage:
    return request.app.state.storage


async def get_storage_settings(request: Request) -> StorageSettings:
    return request.app.state.storage_settings


StorageDep = Annotated[Storage, Depends(get_storage)]  # put/get/signed_url; see resources/storage
StorageSettingsDep = Annotated[StorageSettings, Depends(get_storage_settings)]  # expiry, upload rules


SLUG_TEXT = ("The shop (tenant) the request is for, by its slug: the tenant id it was registered with "
             "(`storehouse tenants add <slug>`).")


def tenant_slug(example: str, summary: str):
    """The ``{tenant}`` path parameter, its example a demo tenant (``storehouse.demo``)."""
    return Annotated[str, Path(description=SLUG_TEXT, openapi_examples={"demo": {"summary": summary, "value": example}})]


TenantSlug = tenant_slug("numnaroad", "the demo's eSIM shop")


async def get_storefront(tenant: TenantSlug, services: ServicesDep) -> Storefront:
    """The shop named in the path; unknown and inactive shops look the same (404). A shop the
    worker remembers is answered on the event loop; only a miss reads the warehouse (in a thread)."""
    known, found = services.storefronts.remembered(tenant)
    if not known:
        found = await run_in_threadpool(services.storefronts.get, tenant)
    if found is None:
        raise Problem(404, "shop-not-found", f"There is no shop {tenant[:64]!r}.")
    return found


StorefrontDep = Annotated[Storefront, Depends(get_storefront)]


def storefront_dep(example: str, summary: str):
    """``StorefrontDep`` whose ``{tenant}`` example is ``example``: for routes the eSIM shop cannot answer
    (a demo tenant that has the connection the route needs, so the example works as sent)."""

    async def get(tenant: str, services: Services) -> Storefront:
        return await get_storefront(tenant, services)

    get.__annotations__ = {"tenant": tenant_slug(example, summary), "services": ServicesDep, "return": Storefront}
    return Annotated[Storefront, Depends(get)]


StudioSlug = tenant_slug("print-sydney", "the demo's 3D-print studio")
STUDIOS_REMEMBERED = 10_000


async def require_studio(tenant: StudioSlug, request: Request) -> None:
    """Only a studio (a tenant with business details) answers on its studio routes: for any other
    tenant (a clinic, a shop, none) they are 404 ``studio-not-found``, before anything else. A
    tenant stays a studio once it is one (its details are never removed), so each worker
    remembers the studios it has seen and asks the warehouse only about the others."""
    known: set[str] = request.app.state.studios

    def look() -> bool:
        with request.app.state.services.engine.connect() as conn:
            return is_studio(conn, tenant)

    if tenant in known:
        return
    if not await run_in_threadpool(look):
        raise Problem(404, "studio-not-found", f"There is no studio {tenant[:64]!r}.")
    if len(known) < STUDIOS_REMEMBERED:
        known.add(tenant)


STUDIO_ONLY = [Depends(require_studio)]  # a studio router's ``dependencies``


def client_address(request: Request) -> str:
    """Who to rate-limit: the client, which behind trusted proxies ``ForwardedClientMiddleware``
    has already taken from X-Forwarded-For (so the access log names the same one)."""
    return request.client.host if request.client else "unknown"


def rate_limit(limiter: RateLimiter, request: Request, storefront: Storefront, what: str) -> None:
    """One token from ``limiter``'s bucket for this shop and client, or 429 with Retry-After."""
    wait = limiter.hit(f"{storefront.tenant_id}|{client_address(request)}")
    if wait:
        raise Problem(429, "rate-limited", f"Too many {what} from this client; slow down.",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})


async def checkout_rate_limit(request: Request, storefront: StorefrontDep) -> None:
    # A coroutine: the bucket is a dict behind a lock held for microseconds, no cause for a thread hop.
    rate_limit(request.app.state.checkout_limiter, request, storefront, "checkouts")


async def raw_body(request: Request) -> bytes:
    """The body exactly as sent: Stripe signs these bytes, not any re-serialisation of them."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


def order_token(token: Annotated[str | None, Query(max_length=128)] = None,
                x_order_token: Annotated[str | None, Header(max_length=128)] = None) -> str | None:
    """The customer's order token, from the link (``?token=``) or the ``X-Order-Token`` header."""
    return x_order_token or token


OrderToken = Annotated[str | None, Depends(order_token)]


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def iso_text(value: Any) -> Any:
    """A date or time in a query is ISO 8601 text, as the OpenAPI document says (``format: date-time``
    or ``date``): a bare number, which pydantic would read as a Unix time, is refused."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("expected ISO 8601 text, such as 2026-01-31 or 2026-01-31T08:00:00Z")
    return value


Instant = Annotated[dt.datetime, BeforeValidator(iso_text)]
Day = Annotated[dt.date, BeforeValidator(iso_text)]
