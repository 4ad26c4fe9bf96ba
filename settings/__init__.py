"""Every setting Storehouse reads from the environment, in one place (pydantic-settings).

Nothing reads ``os.environ`` at import time: entry points build ``Settings()`` and pass values on.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    home: Path = Field(Path(".storehouse"), alias="STOREHOUSE_HOME", description="local state folder")
    database_url: str | None = Field(None, alias="DATABASE_URL", description="SQLAlchemy URL of the warehouse")
    dagster_home: Path | None = Field(None, alias="DAGSTER_HOME")
    dagster_database_url: str | None = Field(
        None, alias="STOREHOUSE_DAGSTER_DATABASE_URL",
        description="postgresql+psycopg2:// URL of the Dagster instance's storage (runs, events, schedules); SQLite files "
                    "under DAGSTER_HOME when unset")
    executor: Literal["in_process", "celery"] = Field(
        "in_process", alias="STOREHOUSE_EXECUTOR",
        description="where the sync jobs' steps run: in the run's process, or on Celery workers")
    celery_broker_url: str = Field("redis://127.0.0.1:6379/0", alias="STOREHOUSE_CELERY_BROKER_URL",
                                   description="the Celery broker (redis:// or amqp://) when STOREHOUSE_EXECUTOR=celery")
    celery_backend_url: str | None = Field(None, alias="STOREHOUSE_CELERY_BACKEND_URL",
                                           description="the Celery result backend (default: the broker's URL, "
                                                       "rpc:// for amqp)")
    sandbox_host: str = Field("127.0.0.1", alias="STOREHOUSE_SANDBOX_HOST")
    sandbox_port: int = Field(8900, alias="STOREHOUSE_SANDBOX_PORT")
    api_host: str = Field("127.0.0.1", alias="STOREHOUSE_API_HOST")
    api_port: int = Field(8000, alias="STOREHOUSE_API_PORT")
    secrets_key: SecretStr | None = Field(
        None, alias="STOREHOUSE_SECRETS_KEY",
        description="Fernet key(s) encrypting tenant credentials, comma-separated: the first encrypts, all decrypt")
    secrets_key_file: Path | None = Field(
        None, alias="STOREHOUSE_SECRETS_KEY_FILE",
        description="key file used when STOREHOUSE_SECRETS_KEY is unset (created on first use, mode 0600)")
    storefront_public_url: str | None = Field(None, alias="STOREHOUSE_SHOP_PUBLIC_URL",
                                              description="where customers reach the API, when not at api_host:api_port")
    ui_host: str = Field("127.0.0.1", alias="STOREHOUSE_UI_HOST")
    ui_port: int = Field(3000, alias="STOREHOUSE_UI_PORT", description="the Dagster webserver's port")
    docs_port: int = Field(8080, alias="STOREHOUSE_DOCS_PORT", description="where `storehouse docs` serves the "
                           "analysts' data dictionary")

    @cached_property
    def warehouse_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'warehouse.db').resolve()}"

    @cached_property
    def dagster_home_path(self) -> Path:
        return (self.dagster_home or self.home / "dagster").resolve()

    @property
    def celery_backend(self) -> str:
        if self.celery_backend_url:
            return self.celery_backend_url
        return "rpc://" if self.celery_broker_url.startswith(("amqp", "pyamqp")) else self.celery_broker_url

    @property
    def secrets_key_path(self) -> Path:
        return (self.secrets_key_file or self.home / "secrets.key").resolve()

    @property
    def sandbox_url(self) -> str:
        return f"http://{self.sandbox_host}:{self.sandbox_port}"

    @property
    def api_url(self) -> str:
        """Where the shop API is reached (its public URL when one is set)."""
        return (self.storefront_public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def ui_url(self) -> str:
        return f"http://{self.ui_host}:{self.ui_port}"
