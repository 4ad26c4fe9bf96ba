"""The API app factory: routers per area, problem-details errors, CORS, limits, metrics, workers."""

from __future__ import annotations

import contextlib
import importlib

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from api import logs, problems
from api.middleware import BodyLimitMiddleware, ForwardedClientMiddleware, MetricsMiddleware, RequestIdMiddleware
from api.ratelimit import RateLimiter
from api.settings import ApiSettings
from api.uploads import route_body_limits
from commerce.services import Services
from commerce.tokens import load_secret
from people.auth import Auth
from resources.storage import Storage
from settings.logs import LogSettings
from resources.storage.settings import StorageSettings, storage_from_settings
from studio.payments import StudioPayments
from studio.slicing.service import SliceService
from studio.slicing.settings import SlicerSettings

# One line per router module (each exposes `router`); add yours here. Requests are matched against
# routes in this order: the busiest and most machine-driven (Stripe's deliveries) come first.
ROUTERS: list[str] = [
    "api.routes.stripe_webhooks",
    "api.routes.health",
    "api.routes.catalog",
    "api.routes.checkout",
    "api.routes.orders",
    "api.routes.pos_webhooks",
    "api.routes.pos_orders",
    "api.routes.staff_auth",
    "api.routes.staff_me",
    "api.routes.staff_records",
    "api.routes.staff_exports",
    "api.routes.staff_users",
    "api.routes.staff_config",
    "api.routes.staff_analytics",
    "api.routes.studio_files",
    "api.routes.staff_syncs",
    "api.routes.staff_page",
    "api.routes.files",
    "api.routes.studio_staff",
    "api.routes.studio_client",
    "api.routes.studio_invoice_page",
    "api.routes.studio_payments",
    "api.routes.studio_pdfs",
    "api.routes.studio_slicing",
    "api.routes.studio_logo",
    "api.routes.studio_printing",
]

DESCRIPTION = ("Shops sell eSIMs: catalog, Stripe checkout, signed webhooks, provisioning. Every route is "
               "scoped to a shop by its slug in the path (`{tenant}`); errors are RFC 9457 problem details.")


def create_app(settings: ApiSettings | None = None, engine: sa.Engine | None = None, *,
               storage_settings: StorageSettings | None = None, storage: Storage | None = None,
               log_settings: LogSettings | None = None) -> FastAPI:
    """Build the app; its lifespan starts this process's provisioning, effects and slice workers.
    Its logs are JSON when ``log_settings`` (``STOREHOUSE_LOG_FORMAT``) say so."""
    settings = settings or ApiSettings()
    storage_settings = storage_settings or StorageSettings()
    services = Services(settings, engine)
    secret = load_secret(settings)
    # local files' links are signed with the API's key: any worker (or Dagster run) can issue one
    storage = storage or storage_from_settings(storage_settings, secret=secret,
                                               public_url=storage_settings.public_url or settings.public_url)
    slicing = SliceService(services.engine, storage, SlicerSettings(), services.heartbeat)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.worker_enabled:
            services.start_workers()
            slicing.start_worker()
        try:
            yield
        finally:
            slicing.close()
            services.close()
            if hasattr(app.state.storage, "close"):  # the S3 client's connection pool
                app.state.storage.close()

    # /docs and /redoc load Swagger UI and ReDoc from this package's own copy (fastapi-offline),
    # so they work without internet.
    app = FastAPIOffline(title="Storehouse API", version="0.1.0", lifespan=lifespan, static_url="/docs-assets",
                         description=DESCRIPTION)
    app.state.services, app.state.settings, app.state.slicing = services, settings, slicing
    app.state.studio_payments = StudioPayments(services.engine, settings)
    app.state.studios = set()  # tenants known to be studios (api.deps.require_studio)
    app.state.checkout_limiter = RateLimiter(settings.checkout_rate_per_s, settings.checkout_burst)
    app.state.pos_webhook_limiter = RateLimiter(settings.pos_webhook_rate_per_s, settings.pos_webhook_burst)
    app.state.people = Auth(services.engine, secret)
    app.state.storage_settings, app.state.storage = storage_settings, storage
    app.state.signin_limiter = RateLimiter(app.state.people.settings.signin_failures_per_min / 60,
                                           app.state.people.settings.signin_failures_burst)
    problems.install(app)
    logs.install(log_settings or LogSettings())
    app.state.routes = list(app.router.routes)  # flat, for a 405's Allow (the app keeps included routers nested)
    for name in ROUTERS:
        router = importlib.import_module(name).router
        app.include_router(router)
        app.state.routes += router.routes
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       webhook_max_bytes=settings.max_webhook_body_bytes,
                       route_limits=route_body_limits(app.state.routes, storage_settings))
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                       allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                       allow_headers=["Content-Type", "Idempotency-Key", "X-Order-Token", "Authorization", "X-Request-ID"],
                       expose_headers=["Location", "Idempotent-Replayed", "Retry-After", "X-Request-ID"], max_age=600)
    app.add_middleware(MetricsMiddleware)
    if settings.trust_forwarded_for:  # outermost: every layer, and the access log, see the same client
        app.add_middleware(ForwardedClientMiddleware, trusted_proxies=settings.trusted_proxies)
    app.add_middleware(RequestIdMiddleware)  # outermost: every layer's log lines carry the request's id
    return app
