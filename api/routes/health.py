"""Liveness, readiness (the database answers) and Prometheus metrics."""

from __future__ import annotations

import hmac

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import metrics
from api.problems import Problem, problem_responses

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is up."""
    return {"ok": True}


@router.get("/readyz", responses=problem_responses((503, "The database is not reachable.")))
def readyz(request: Request) -> dict:
    """Ready to serve: the warehouse answers a query."""
    try:
        with request.app.state.services.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        raise Problem(503, "not-ready", "The database is not reachable.") from None
    return {"ok": True, "database": "reachable"}


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    """Prometheus exposition; behind a bearer token when ``metrics_token`` is set (its breaker
    gauges name every shop, so a public deployment should not serve it to the world)."""
    expected = request.app.state.settings.metrics_token
    if expected is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(given, expected.get_secret_value().encode()):
            raise Problem(401, "metrics-token-required", "Scraping needs the metrics bearer token.",
                          headers={"WWW-Authenticate": "Bearer"})
    body = await run_in_threadpool(metrics.render, request.app.state.services.engine)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
