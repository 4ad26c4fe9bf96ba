"""RFC 9457 problem details for every error the API returns, and never a stack trace.

``Problem`` (``commerce.errors``) is raised by routes and the shop services; the handlers installed by ``install`` turn it, the
framework's own HTTP and validation errors, and anything unexpected into
``application/problem+json`` bodies ``{type, title, status, detail, instance, ...}``. An
unexpected exception is logged here with its traceback and answered with a bare 500 whose only
detail is a correlation id.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from commerce.errors import Problem
from people.users import PeopleError
from resources.storage import InvalidKey, NotFound, StorageError
from resources.storage.uploads import TooLarge, UnsupportedType

log = logging.getLogger("storehouse.api")
MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://storehouse.dev/problems/"
TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}


class ProblemDetails(BaseModel):
    """The body of every error (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


def problem_responses(*codes: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """For ``responses=`` on a route: the problems it can answer with (a code, or a code and what
    it means there), so the OpenAPI document lists those and no others."""
    out: dict[int | str, dict[str, Any]] = {}
    for entry in codes:
        code, description = entry if isinstance(entry, tuple) else (entry, TITLES[entry])
        out[code] = {"model": ProblemDetails, "description": description,  # the body's schema under the type it is sent as
                     "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}
    return out


def problem_response(status: int, kind: str, detail: str, *, instance: str | None = None,
                     title: str | None = None, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + kind, "title": title or TITLES.get(status, "Error"), "status": status,
            "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem(status: int, title: str, detail: str, kind: str | None = None) -> JSONResponse:
    """A problem response to return directly from a route (instead of raising ``Problem``)."""
    slug = kind or "-".join(title.lower().split())[:60]
    return problem_response(status, slug, detail, title=title)


def _problem(request: Request, exc: Problem) -> JSONResponse:
    return problem_response(exc.status, exc.kind, exc.detail, instance=request.url.path,
                            title=exc.title or TITLES.get(exc.status, "Error"),
                            headers=exc.headers, **exc.extra)


def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    kind = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:  # the router names only the first route on this path; RFC 9110 wants them all
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return problem_response(exc.status_code, kind, detail, instance=request.url.path, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route on the request's path answers to."""
    methods: set[str] = set()
    for route in request.app.state.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    # Only where and what: echoing the rejected input back could reflect anything a client sent.
    errors = [{"location": list(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors()]
    malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
    if malformed:
        return problem_response(400, "malformed-json", "The request body is not valid JSON.",
                                instance=request.url.path, errors=errors)
    return problem_response(422, "validation-error", "The request is not valid.", instance=request.url.path,
                            errors=errors)


def _refused(request: Request, exc: PeopleError) -> JSONResponse:
    # The people side's refusals (a blank key name, say) are the caller's to fix, wherever they arise.
    return problem_response(exc.status, exc.kind, str(exc), instance=request.url.path)


def _unstorable(request: Request, exc: sa.exc.DataError) -> JSONResponse:
    # The models refuse what they can see; this catches a value the database itself will not
    # keep (a NUL inside JSON, say), so bad input never becomes a 500.
    log.warning("refused input on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__)
    return problem_response(422, "unprocessable-input", "The request carries a value that cannot be stored "
                            "(for example a NUL character).", instance=request.url.path)


def _storage(request: Request, exc: StorageError) -> JSONResponse:
    # Every upload route checks with resources.storage.uploads.check_upload and lets its refusals
    # rise to here: one answer for each, whichever route took the file.
    if isinstance(exc, TooLarge):
        return problem_response(413, "file-too-large", str(exc), instance=request.url.path, limit=exc.limit)
    if isinstance(exc, UnsupportedType):
        return problem_response(415, "unsupported-file-type", str(exc), instance=request.url.path,
                                accepted=exc.allowed)
    if isinstance(exc, InvalidKey):
        return problem_response(400, "invalid-file-name", "The file cannot be stored under that name.",
                                instance=request.url.path)
    if isinstance(exc, NotFound):
        return problem_response(404, "file-not-found", "The file does not exist.", instance=request.url.path)
    log.warning("storage failed on %s %s: %s", request.method, request.url.path, exc)  # names no credential
    return problem_response(503, "storage-unavailable", "File storage is unavailable; try again shortly.",
                            instance=request.url.path, headers={"Retry-After": "5"})


def _database_unavailable(request: Request, exc: sa.exc.SQLAlchemyError) -> JSONResponse:
    # The database refused or dropped the connection (a restart, "too many clients", the pool
    # exhausted): the request can be retried as it is, so a 503 says so rather than a 500.
    # The driver's first line says which (a refused connection, a lock, or a bug such as a missing
    # table, which must stay visible here); it names no password.
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[:1]
    log.warning("database unavailable on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__,
                reason[0][:200] if reason else "")
    return problem_response(503, "database-unavailable", "The database is unavailable; try again shortly.",
                            instance=request.url.path, headers={"Retry-After": "2"})


def _gone(request: Request, exc: ClientDisconnect) -> Response:
    # The client hung up before sending its whole body: nobody reads an answer, nothing failed here.
    log.debug("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=400)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    log.exception("unhandled error on %s %s (incident %s)", request.method, request.url.path, incident)
    return problem_response(500, "internal-error", f"Something went wrong on our side (incident {incident}).",
                            instance=request.url.path, incident=incident)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(PeopleError, _refused)
    app.add_exception_handler(sa.exc.DataError, _unstorable)
    app.add_exception_handler(StorageError, _storage)
    for unavailable in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(Exception, _unexpected)
