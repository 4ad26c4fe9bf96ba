"""The slicer's settings, under the seed's own environment names (``SLICER_*``).

``SLICER_BIN``, ``SLICER_CONCURRENCY`` (1–4), ``SLICER_TIMEOUT_MS`` (30 s – 5 min) and
``SLICER_DISABLE`` are the seed's; the rest (``STUDIO_SLICING_*``) are ours. Entry points build
``SlicerSettings()`` and pass it on: nothing here reads the environment at import time.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SlicerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STUDIO_SLICING_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    bin: str = Field("prusa-slicer", validation_alias=AliasChoices("SLICER_BIN", "bin"),
                     description="the slicer's command (PrusaSlicer's CLI); a name on PATH or a path")
    concurrency: int = Field(1, ge=1, le=4, validation_alias=AliasChoices("SLICER_CONCURRENCY", "concurrency"),
                             description="slicer processes at once across every API worker and machine")
    timeout_ms: int = Field(120_000, ge=30_000, le=300_000,
                            validation_alias=AliasChoices("SLICER_TIMEOUT_MS", "timeout_ms"),
                            description="one run's limit; past it the slicer's whole process group is killed")
    disable: bool = Field(False, validation_alias=AliasChoices("SLICER_DISABLE", "disable"),
                          description="1: never run the slicer, estimate from the mesh (flagged fallback)")

    retries: int = Field(2, ge=0, le=5, description="runs after the first before the estimate answers")
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1024, description="largest model accepted")
    max_triangles: int = Field(5_000_000, ge=1000, description="largest mesh accepted, in triangles")
    lease_s: float = Field(30.0, gt=0, description="a slice's and a slot's lease; renewed while the slice runs")
    poll_s: float = Field(1.0, gt=0, description="how often idle slice workers look for due slices")
    worker_threads: int = Field(1, ge=1, le=8, description="slice worker threads in each API process")
    retry_backoff_s: float = Field(2.0, ge=0, description="wait before a failed slice's next run (doubles)")
    signed_url_s: int = Field(300, ge=60, le=300, description="life of a G-code download link (60–300 s)")
    tmp_retention_hours: int = Field(24, ge=24, le=48,
                                     description="uploads and their G-code untouched this long are deleted by the "
                                     "hourly housekeeping (24–48 h)")

    @field_validator("disable", mode="before")
    @classmethod
    def _seed_flag(cls, value: object) -> object:
        """The seed sets ``SLICER_DISABLE=1``; an empty value means not disabled."""
        return False if value in ("", None) else value

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000


class SettingsError(ValueError):
    """Settings refused, said in one line per setting (a command prints it, not a traceback)."""


def load() -> SlicerSettings:
    """``SlicerSettings()`` from the environment; :class:`SettingsError` naming each bad setting by its
    environment name and what it allows, e.g. ``SLICER_CONCURRENCY=5: allowed 1 to 4``."""
    try:
        return SlicerSettings()
    except ValidationError as exc:
        raise SettingsError("; ".join(_explain(error) for error in exc.errors())) from None


def _explain(error: dict) -> str:
    name = str(error["loc"][0]) if error.get("loc") else "?"
    field = next((f for key, f in SlicerSettings.model_fields.items()
                  if key == name or name in getattr(f.validation_alias, "choices", ())), None)
    if field is not None and not name.isupper():  # our own STUDIO_SLICING_* name
        name = f"STUDIO_SLICING_{name.upper()}"
    bounds = {}
    for rule in getattr(field, "metadata", ()):
        for key in ("ge", "gt", "le", "lt"):
            if getattr(rule, key, None) is not None:
                bounds[key] = getattr(rule, key)
    low = bounds.get("ge", bounds.get("gt"))
    high = bounds.get("le", bounds.get("lt"))
    allowed = f"allowed {low} to {high}" if low is not None and high is not None else error.get("msg", "invalid")
    return f"{name}={error.get('input')!s}: {allowed}"
