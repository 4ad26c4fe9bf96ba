"""What a tenant's connection to one system must hold: credentials and options, declared (pydantic).

Each provider module declares its ``ConnectionSpec`` once, next to its client: a model of its
credentials and one of its options, both refusing unknown fields. ``resources.systems`` gathers
them. ``storehouse tenants add`` checks a connection before storing it and the sync assets check
it again when they read it, so a missing or unknown field is said once, by name, instead of a
``KeyError`` deep in a client after minutes of retries.

A ``ConnectionConfigError`` is never retried: not by our HTTP layer (it retries only retryable
``ProviderError``\\ s) and not by Dagster (the assets turn it into ``dg.Failure(allow_retries=False)``).
Its message names fields, never their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class ConnectionConfigError(ValueError):
    """A connection's settings are missing, unknown or malformed: only fixing them helps."""


class Credentials(BaseModel):
    """Secrets of one account (stored encrypted). Numbers given for text are taken as text."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, str_min_length=1, frozen=True)


class Options(BaseModel):
    """Account settings that are not secret (page sizes, locations, rules)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)


@dataclass(frozen=True)
class ConnectionSpec:
    system: str
    credentials: type[Credentials]
    options: type[Options] = Options

    def check(self, credentials: Mapping[str, Any], options: Mapping[str, Any] | None) -> None:
        """Raise ``ConnectionConfigError`` naming every field that is missing, unknown or malformed."""
        problems = [*self._problems("credential", self.credentials, credentials),
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
