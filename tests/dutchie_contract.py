"""Every Dutchie exchange checked against Dutchie's own OpenAPI document.

``ContractCheck(sandbox_url).attach(client)`` hooks the client's httpx session: each request it
sends and each response it gets are validated with openapi-core against
``dutchie-pos-openapi.json`` (``tests/contracts/``, copied from ``../shared/reference``), so the fake cannot serve what the
document does not allow (or the client send what it does not take) without a test failing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

NAME = "dutchie-pos-openapi.json"


def document() -> Path:
    """Dutchie's published OpenAPI document, kept with the tests (``tests/contracts/``, a verbatim
    copy of ``shared/reference/dutchie-pos-openapi.json``) so a clone alone can check the fake
    against it; ``$STOREHOUSE_REFERENCE/<NAME>`` checks against another copy."""
    if os.environ.get("STOREHOUSE_REFERENCE"):
        return Path(os.environ["STOREHOUSE_REFERENCE"]) / NAME
    return Path(__file__).resolve().parent / "contracts" / NAME


def date_time(value: object) -> bool:
    """ISO 8601 date-time, with or without an offset: Dutchie's .NET serialiser writes UTC without
    one (``2024-01-01T00:00:00.000``), which strict RFC 3339 would refuse; our client reads both."""
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4)
def _openapi(server: str) -> OpenAPI:
    spec = json.loads(document().read_text())
    spec["servers"] = [{"url": server}]  # the sandbox stands in for api.pos.dutchie.com
    return OpenAPI.from_dict(spec, config=Config(extra_format_validators={"date-time": date_time}))


class _Request:
    def __init__(self, request: httpx.Request, server: str) -> None:
        self.host_url = server.split("/dutchie")[0]
        self.path = request.url.path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "application/json").split(";")[0]
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(request.url.query.decode())), header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict())


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "application/json").split(";")[0]
        self.headers = Headers(dict(response.headers))


@dataclass
class ContractCheck:
    server: str  # the fake's base URL, e.g. http://127.0.0.1:port/dutchie
    exchanges: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, client) -> "ContractCheck":
        client.session.client.event_hooks["response"].append(self._check)
        return self

    def _check(self, response: httpx.Response) -> None:
        response.read()
        openapi, request = _openapi(self.server), _Request(response.request, self.server)
        where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        self.exchanges.append(where)
        for what, validate in (("request", lambda: openapi.validate_request(request)),
                               ("response", lambda: openapi.validate_response(request, _Response(response)))):
            try:
                validate()
            except Exception as exc:  # the validation error names the field and the rule
                cause = exc.__cause__ or exc
                detail = "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
                                   for e in getattr(cause, "schema_errors", None) or []) or str(cause)[:300]
                self.errors.append(f"{where}: {what}: {type(exc).__name__}: {detail}")
