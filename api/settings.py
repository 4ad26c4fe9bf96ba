"""The API's settings (pydantic-settings, ``STOREHOUSE_API_*``), read once by the app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from storehouse.settings import Settings as StorehouseSettings

DEFAULT_PRIORITY = ("esimcard", "mobimatter", "airalo")


def _split(value: object) -> object:
    """Lists from the environment as JSON or comma-separated text."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOREHOUSE_API_", env_file=".env", extra="ignore")

    database_url: str | None = Field(None, description="warehouse URL; default DATABASE_URL or the SQLite file")
    public_url: str = Field("http://127.0.0.1:8000", description="where customers reach this API")
    secret_key: SecretStr | None = Field(None, description="signs order access tokens; default: a file in STOREHOUSE_HOME")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, description="allowed browser origins")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="larger request bodies get 413")
    trust_forwarded_for: bool = Field(False, description="rate-limit by X-Forwarded-For (behind a proxy)")

    checkout_rate_per_s: float = Field(2.0, gt=0, description="checkouts per second per client, sustained")
    checkout_burst: int = Field(10, ge=1, description="checkouts a client may make at once")
    max_quantity: int = Field(5, ge=1, le=100, description="eSIMs per order")
    tenant_cache_s: float = Field(5.0, ge=0, description="how long a tenant's connections are cached")
    webhook_tolerance_s: int = Field(300, ge=1, description="oldest accepted Stripe-Signature timestamp")

    provider_priority: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_PRIORITY))
    provider_timeout_s: float = Field(15.0, gt=0, description="per HTTP call to an eSIM provider")
    provider_attempts: int = Field(3, ge=1, description="tries per provider, for retryable errors only")
    breaker_failures: int = Field(3, ge=1, description="consecutive failures that open a provider's breaker")
    breaker_reset_s: float = Field(60.0, gt=0, description="how long an open breaker refuses calls")
    refund_on_failure: bool = Field(True, description="refund through Stripe when no provider can deliver")

    worker_enabled: bool = Field(True, description="run the provisioning and effects workers in this process")
    worker_threads: int = Field(4, ge=1, le=64)
    lease_s: float = Field(60.0, gt=0, description="a job's lease; renewed while its worker lives")
    poll_s: float = Field(1.0, gt=0, description="how often idle workers look for due jobs")
    give_up_after_s: float = Field(3600, gt=0, description="stop waiting on a provider's unknown outcome this "
                                   "long after payment, and fail over (the stuck-order threshold)")
    retry_base_s: float = Field(2.0, gt=0, description="first wait before a deferred job or effect runs again")

    @field_validator("cors_origins", "provider_priority", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split(value)

    @property
    def warehouse_url(self) -> str:
        return self.database_url or StorehouseSettings().warehouse_url

    @property
    def home(self) -> Path:
        return StorehouseSettings().home
