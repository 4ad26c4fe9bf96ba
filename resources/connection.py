"""What a tenant's connection to one system must hold: credentials and options, declared (pydantic).

Each provider module declares its ``ConnectionSpec`` once, next to its client: a model of its
credentials and one of its options, both refusing unknown fields. ``resources.systems`` gathers
them. ``storehouse tenants add`` checks a connection before storing it and the sync assets check
it again when they read it, so a missing or unknown field is said once, by name, instead of a
``KeyError`` deep in a client after minutes of retries.

A ``ConnectionConfigError`` is never retried: not by our HTTP layer (it retries only retryable
``ProviderError``\\ s) and not by Dagster (the assets turn it into ``dg.Failure(allow_retries=False)``).
Its message names fields, never their values. The base URL is checked here too: an absolute
http(s) URL with a host, so a typo is refused at once rather than retried as an outage. Options
declare their ranges (``Field(ge=..., le=...)``; page sizes with ``page_size``), so a page size
the provider would refuse is refused here first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConnectionConfigError(ValueError):
    """A connection's settings are missing, unknown or malformed: only fixing them helps."""


class Credentials(BaseModel):
    """Secrets of one account (stored encrypted). Numbers given for text are taken as text."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, str_min_length=1, frozen=True)


class Options(BaseModel):
    """Account settings that are not secret (page sizes, locations, rules)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)


def page_size_field(most: int | None = None) -> Any:
    """An optional page-size option: at least 1 and, where the provider caps it, at most ``most``."""
    return Field(None, ge=1, le=most)


BASE_URL_PROBLEM = "base_url must be an absolute http(s) URL with a host, e.g. https://api.example.com/v1"


def base_url_problem(base_url: Any) -> str | None:
    """Why ``base_url`` cannot be a connection's base URL (never quoting it), or None."""
    if not isinstance(base_url, str):
        return BASE_URL_PROBLEM
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018  (a port out of range or not a number raises here)
    except ValueError:
        return BASE_URL_PROBLEM
    return None if parts.scheme in ("http", "https") and parts.hostname else BASE_URL_PROBLEM


@dataclass(frozen=True)
class ConnectionSpec:
    system: str
    credentials: type[Credentials]
    options: type[Options] = Options

    def check(self, credentials: Mapping[str, Any], options: Mapping[str, Any] | None,
              base_url: str | None = None) -> None:
        """Raise ``ConnectionConfigError`` naming every field that is missing, unknown or malformed
        (and the base URL, when one is given, if it is not an absolute http(s) URL)."""
        url_problem = base_url_problem(base_url) if base_url is not None else None
        problems = [*([url_problem] if url_problem else []),
                    *self._problems("credential", self.credentials, credentials),
                    *self._problems("option", self.options, options or {})]
        if problems:
            raise ConnectionConfigError(f"{self.system} connection: " + "; ".join(problems))

    @staticmethod
    def _problems(kind: str, model: type[BaseModel], given: Mapping[str, Any]) -> list[str]:
        if not isinstance(given, Mapping):
            return [f"{kind}s must be a JSON object"]
        try:
            model.model_validate(dict(given))
        except ValidationError as exc:
            return [_describe(kind, model, error) for error in exc.errors(include_url=False, include_input=False)]
        return []


def _describe(kind: str, model: type[BaseModel], error: Mapping[str, Any]) -> str:
    """One problem in words, with the field's name and never its value."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return f"{kind}s: {message}"
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == "missing":
        return f"missing {kind} '{where}'"
    if error["type"] == "extra_forbidden":
        known = ", ".join(sorted(f.alias or name for name, f in model.model_fields.items())) or "none"
        return f"unknown {kind} '{where}' (known: {known})"
    return f"{kind} '{where}': {message}"
