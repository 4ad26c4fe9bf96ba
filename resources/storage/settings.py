"""Storage settings (pydantic-settings, ``STOREHOUSE_STORAGE_*``) and the factory every caller uses.

``backend=local`` (default) keeps files under ``STOREHOUSE_HOME/storage``, and its download links
are signed by us and served by the API; ``backend=s3`` talks to any S3-compatible store (AWS,
MinIO, R2, Supabase Storage's S3 endpoint…). Per-bucket dicts come from the environment as JSON,
e.g. ``STOREHOUSE_STORAGE_MAX_UPLOAD_BYTES='{"attachments": 10485760}'``; buckets left out keep
their defaults.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from resources.storage import BUCKETS, Storage
from resources.storage.uploads import DEFAULT_ALLOWED_TYPES, DEFAULT_MAX_UPLOAD_BYTES, canonical_type
from settings import Settings as StorehouseSettings

_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class StorageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOREHOUSE_STORAGE_", env_file=".env", extra="ignore")

    backend: Literal["local", "s3"] = Field("local", description="local folder (default) or an S3-compatible store")
    root: Path | None = Field(None, description="the local backend's folder; default STOREHOUSE_HOME/storage")
    public_url: str | None = Field(None, description="where the API serves local downloads; default the shop "
                                   "API's URL (STOREHOUSE_SHOP_PUBLIC_URL, else STOREHOUSE_API_HOST:PORT)")
    secret_key: SecretStr | None = Field(None, description="signs local download links; default the API's secret "
                                         "(STOREHOUSE_SHOP_SECRET_KEY or its key file), passed in by the caller")
    signed_url_expiry_s: int = Field(300, ge=60, le=300, description="how long a download link works (seed: 60-300 s)")
    max_upload_bytes: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MAX_UPLOAD_BYTES),
                                             description="largest accepted upload per bucket (413 above)")
    allowed_types: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in
                                                                        DEFAULT_ALLOWED_TYPES.items()},
                                                description="content types accepted per bucket (415 otherwise)")

    s3_endpoint_url: str | None = Field(None, description="the S3 API's URL; None: AWS for the region")
    s3_region: str = Field("us-east-1")
    s3_access_key_id: SecretStr | None = Field(None, description="None: boto's own chain (env, profile, role)")
    s3_secret_access_key: SecretStr | None = None
    s3_bucket_prefix: str = Field("storehouse-", description="bucket name = prefix + seed bucket (`storehouse-pdfs`)")
    s3_create_buckets: bool = Field(False, description="create missing buckets at start (needs s3:CreateBucket)")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field("auto", description="path for most self-hosted "
                                                                    "stores (MinIO), virtual for AWS")
    s3_connect_timeout_s: float = Field(5.0, gt=0)
    s3_read_timeout_s: float = Field(30.0, gt=0)
    s3_max_attempts: int = Field(3, ge=1, le=10, description="attempts per call, retryable errors only (botocore "
                                 "standard mode: backoff with jitter, throttling and 5xx)")

    @field_validator("max_upload_bytes", "allowed_types", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("max_upload_bytes")
    @classmethod
    def _sizes(cls, value: dict[str, int]) -> dict[str, int]:
        _known(value)
        if any(size < 1 for size in value.values()):
            raise ValueError("upload limits are positive byte counts")
        return {**DEFAULT_MAX_UPLOAD_BYTES, **value}

    @field_validator("allowed_types")
    @classmethod
    def _types(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        _known(value)
        given = {bucket: sorted({canonical_type(t) for t in types if t.strip()}) for bucket, types in value.items()}
        return {**{k: list(v) for k, v in DEFAULT_ALLOWED_TYPES.items()}, **given}

    @model_validator(mode="after")
    def _s3(self) -> StorageSettings:
        if self.backend == "s3":
            for bucket in BUCKETS:
                if not _S3_BUCKET.match(self.s3_bucket_name(bucket)):
                    raise ValueError(f"s3_bucket_prefix {self.s3_bucket_prefix!r} makes {self.s3_bucket_name(bucket)!r}, "
                                     "not a valid S3 bucket name (3-63 lower-case letters, digits, '.', '-')")
            if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
                raise ValueError("set both s3_access_key_id and s3_secret_access_key, or neither")
        return self

    def s3_bucket_name(self, bucket: str) -> str:
        return f"{self.s3_bucket_prefix}{bucket}"

    @property
    def root_path(self) -> Path:
        return (self.root or StorehouseSettings().home / "storage").resolve()

    @property
    def download_base_url(self) -> str:
        return (self.public_url or StorehouseSettings().api_url).rstrip("/")


def _known(value: dict) -> None:
    unknown = sorted(set(value) - set(BUCKETS))
    if unknown:
        raise ValueError(f"unknown buckets {unknown}; the buckets are {', '.join(BUCKETS)}")


def storage_from_settings(settings: StorageSettings | None = None, *, secret: bytes | None = None,
                          public_url: str | None = None) -> Storage:
    """The configured backend. ``secret`` signs the local backend's links when ``secret_key`` is
    unset: pass ``commerce.tokens.load_secret(...)``, the API's key, so a link made by any process
    (an API worker, a Dagster run emailing a PDF) opens on every API worker. ``public_url``
    overrides where those links point (the API's ``public_url``)."""
    settings = settings or StorageSettings()
    if settings.backend == "s3":
        from resources.storage.s3 import S3Storage  # boto3 loads only where S3 is used

        return S3Storage.from_settings(settings)
    from resources.storage.local import LocalStorage

    key = settings.secret_key.get_secret_value().encode() if settings.secret_key else secret
    if not key:
        raise ValueError("the local storage backend signs its links: set STOREHOUSE_STORAGE_SECRET_KEY or pass "
                         "secret= (the API's key, commerce.tokens.load_secret)")
    return LocalStorage(settings.root_path, key, public_url or settings.download_base_url)
