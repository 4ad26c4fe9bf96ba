"""The shop's settings (pydantic-settings, ``STOREHOUSE_SHOP_*``).

One set for every process that sells or fulfils: the API workers and the hourly stuck-order
asset read the same variables, so both buy from the same providers in the same order, with
the same timeouts, breakers and refund policy. ``api.settings.ApiSettings`` adds what only the
HTTP service needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from resources.esim import ESIM_PROVIDERS, PROVIDERS
from settings import Settings as StorehouseSettings


def split_list(value: object) -> object:
    """Lists from the environment as JSON or comma-separated text."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class CommerceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOREHOUSE_SHOP_", env_file=".env", extra="ignore")

    database_url: str | None = Field(None, description="warehouse URL; default DATABASE_URL or the SQLite file")
    public_url: str = Field("http://127.0.0.1:8000", description="where customers reach the shop API")
    secret_key: SecretStr | None = Field(None, description="signs order access tokens; default: a file in STOREHOUSE_HOME")
    max_quantity: int = Field(5, ge=1, le=100, description="eSIMs per order")
    tenant_cache_s: float = Field(5.0, ge=0, description="how long a tenant's connections are cached")
    tenant_cache_size: int = Field(4096, ge=1, description="known shops cached per process, and as many unknown "
                                   "slugs in a cache of their own; the least recently used of each leave first")
    webhook_tolerance_s: int = Field(300, ge=1, description="oldest accepted Stripe-Signature timestamp")

    # The eSIM providers' call policy is each provider's CallPolicy (resources/esim/*.py); these only
    # override named fields of it. Unset (None): the provider's own value.
    provider_priority: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(PROVIDERS), description="failover order; default: the providers' own priority")
    provider_timeout_s: float | None = Field(None, gt=0, description="overrides the providers' timeout_s per call")
    provider_attempts: int | None = Field(None, ge=1, description="overrides the providers' attempts per call "
                                          "(retryable errors only)")
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

    @field_validator("provider_priority", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return split_list(value)

    @property
    def call_timeout_s(self) -> float:
        """The longest one eSIM call may take: the override, else the slowest provider's own timeout
        (how long provisioning and reconciliation wait before reading an unanswered purchase)."""
        return self.provider_timeout_s or max(p.policy.timeout_s for p in ESIM_PROVIDERS)

    @property
    def warehouse_url(self) -> str:
        return self.database_url or StorehouseSettings().warehouse_url

    @property
    def home(self) -> Path:
        return StorehouseSettings().home
