"""Sign-in settings (``STOREHOUSE_PEOPLE_*``); the signing secret is the shop's
(``STOREHOUSE_SHOP_SECRET_KEY``), from which ``people.credentials`` derives a key per purpose."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PeopleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOREHOUSE_PEOPLE_", env_file=".env", extra="ignore")

    access_token_s: int = Field(900, ge=10, le=3600, description="lifetime of an access token (short: grants are "
                                "checked on every request anyway, at most auth_cache_s late)")
    refresh_token_s: int = Field(14 * 86400, ge=60, description="lifetime of a sign-in session")
    invitation_s: int = Field(7 * 86400, ge=60, description="how long an invitation link works")
    signin_failures_burst: int = Field(5, ge=1, description="failed sign-ins allowed at once per account and "
                                       "per client")
    signin_failures_per_min: float = Field(5.0, gt=0, description="failed sign-ins per minute, sustained")
    argon2_memory_kib: int = Field(19 * 1024, ge=8, description="argon2id memory cost (OWASP: 19 MiB, t=2)")
    argon2_time_cost: int = Field(2, ge=1)
    key_touch_s: float = Field(60.0, ge=0, description="an API key's last-used time is written at most this often")
    # Below 1 s: a revocation must be refused by every API worker within a second (people.credential_cache).
    auth_cache_s: float = Field(0.5, ge=0, le=0.9, description="how long a worker remembers what a bearer resolved "
                                "to (its user and grant on a tenant); 0: read them on every request")
    auth_cache_size: int = Field(4096, ge=1, description="bearer and tenant pairs a worker remembers at most")
