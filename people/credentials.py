"""Secrets of sign-in: argon2id password hashes, signed tokens, API keys and refresh tokens.

Nothing here is stored in the clear: passwords as argon2id (argon2-cffi), refresh tokens and API
keys (256-bit random values, which need no slow hash) as SHA-256. Access tokens and invitation
links are JWTs (HS256) under keys derived per purpose from the shop's one secret
(``commerce.tokens.load_secret``), so an order link's key never signs a sign-in and vice versa.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PREFIX = "shk_"


def derive_key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"storehouse:{purpose}".encode(), hashlib.sha256).digest()


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Passwords:
    def __init__(self, memory_kib: int, time_cost: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verified against when the account does not exist, so both cases cost the same time.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False


class Signer:
    """JWTs for one purpose (``access`` or ``invitation``)."""

    def __init__(self, secret: bytes, purpose: str) -> None:
        self._key, self.purpose = derive_key(secret, f"people:{purpose}"), purpose

    def sign(self, claims: dict[str, Any], ttl_s: int) -> str:
        now = dt.datetime.now(dt.timezone.utc)
        body = {**claims, "typ": self.purpose, "iat": now, "exp": now + dt.timedelta(seconds=ttl_s)}
        return jwt.encode(body, self._key, algorithm="HS256")

    def read(self, token: str) -> dict[str, Any] | None:
        """The claims, or None for a token that is forged, expired, malformed or for another purpose."""
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], options={"require": ["exp", "typ"]})
        except jwt.PyJWTError:
            return None
        return claims if claims.get("typ") == self.purpose else None


@dataclass(frozen=True)
class NewKey:
    prefix: str
    key: str  # shown once

    @property
    def digest(self) -> str:
        return sha256(self.key)


def new_api_key() -> NewKey:
    prefix = secrets.token_hex(6)
    return NewKey(prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}")


def key_prefix(key: str) -> str | None:
    """The lookup prefix of something shaped like an API key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, _, rest = key[len(KEY_PREFIX):].partition("_")
    return prefix if len(prefix) == 12 and rest else None


def same_digest(stored_sha256: str, given: str) -> bool:
    return hmac.compare_digest(stored_sha256.encode(), sha256(given).encode())


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)
