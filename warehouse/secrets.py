"""Tenant credentials encrypted at rest: Fernet (AES-CBC + HMAC-SHA256) from ``cryptography``.

The key is ``STOREHOUSE_SECRETS_KEY`` or, when that is unset, the key file
``STOREHOUSE_SECRETS_KEY_FILE`` (default ``$STOREHOUSE_HOME/secrets.key``), created on first use
with owner-only permissions. Either may hold several keys (comma-separated or one a line): the
first encrypts, every one decrypts, which is how ``storehouse secrets rotate`` moves the rows to
a new key without a moment when some cannot be read.

``seal`` and ``unseal`` are the only two doors: ``warehouse.tenants`` writes and reads every
connection's credentials through them. A missing, malformed or wrong key is a ``SecretsKeyError``
that names the setting; no error ever carries a key, a token or a credential.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SETTING = "STOREHOUSE_SECRETS_KEY"
FILE_SETTING = "STOREHOUSE_SECRETS_KEY_FILE"


class SecretsKeyError(RuntimeError):
    """The key that encrypts tenant credentials is missing, malformed or not the right one."""


class Keyring:
    """The keys in use: the first encrypts, all decrypt. ``source`` says where they came from."""

    def __init__(self, keys: list[str], source: str) -> None:
        if not keys:
            raise SecretsKeyError(f"{source} holds no key; a new one: `storehouse secrets new-key`")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError):
            raise SecretsKeyError(
                f"{source} is not a valid key list: each key is 32 url-safe base64-encoded bytes "
                "(Fernet); a new one: `storehouse secrets new-key`") from None
        self.keys, self.source = tuple(keys), source

    def __repr__(self) -> str:  # never show a key
        return f"Keyring({len(self.keys)} key(s) from {self.source})"

    def seal(self, document: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(document, default=str)).decode()

    def unseal(self, token: str) -> dict[str, Any]:
        """Raises ``InvalidToken`` when no key of the ring opens it."""
        return orjson.loads(self._fernet.decrypt(token.encode()))

    def reseal(self, token: str) -> str:
        """The same document encrypted under the first key."""
        return self._fernet.rotate(token.encode()).decode()

    def wrong_key(self, what: str = "tenant credentials") -> SecretsKeyError:
        return SecretsKeyError(
            f"{what} cannot be decrypted with the key from {self.source}: it is not the key "
            f"they were encrypted with. Set {SETTING} (or restore the key file) to that key.")


def generate_key() -> str:
    return Fernet.generate_key().decode()


def parse_keys(text: str) -> list[str]:
    return [k.strip() for k in text.replace(",", "\n").splitlines() if k.strip()]


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key file in one step, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(keys) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _create_key_file(path: Path) -> None:
    """A first key, unless another process made the file meanwhile (``O_EXCL``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(generate_key() + "\n")


def key_source() -> tuple[str | None, Path]:
    """(the setting's value or None, the key file's path), read from the settings now."""
    from settings import Settings

    settings = Settings()
    value = settings.secrets_key.get_secret_value() if settings.secrets_key else None
    return value, settings.secrets_key_path


def load_keyring(create: bool = False) -> Keyring:
    """The keyring the settings name now; with ``create``, a missing key file is made first."""
    return _load(*key_source(), create)


def file_source(path: Path) -> str:
    """How errors name a key file."""
    return f"the key file {path} ({FILE_SETTING}; {SETTING} is unset)"


def _load(value: str | None, path: Path, create: bool) -> Keyring:
    if value is not None:
        return Keyring(parse_keys(value), SETTING)
    source = file_source(path)
    if not path.exists():
        if not create:
            raise SecretsKeyError(
                f"no key to decrypt tenant credentials: {SETTING} is unset and the key file {path} does not "
                f"exist. Set {SETTING} (or {FILE_SETTING}) to the key they were encrypted with.")
        _create_key_file(path)
    return Keyring(parse_keys(path.read_text()), source)


_rings: dict[tuple[str | None, Path], Keyring] = {}
_lock = threading.Lock()


def keyring(create: bool = False) -> Keyring:
    """The keyring of the settings in force (read on each use, never at import), loaded once per source."""
    source = key_source()
    with _lock:
        ring = _rings.get(source)
        if ring is None:
            ring = _rings[source] = _load(*source, create)
        return ring


def forget() -> None:
    """Read the keys again on next use (after a rotation)."""
    with _lock:
        _rings.clear()


def seal(document: dict[str, Any]) -> str:
    return keyring(create=True).seal(document)


def unseal(token: str) -> dict[str, Any]:
    ring = keyring()
    try:
        return ring.unseal(token)
    except InvalidToken:
        pass
    forget()  # the keys may have been rotated by another process since this one loaded them
    ring = keyring()
    try:
        return ring.unseal(token)
    except InvalidToken:
        raise ring.wrong_key() from None


def reseal_all(tokens: dict[Any, str], ring: Keyring, name: Callable[[Any], str] = str) -> dict[Any, str]:
    """Every token re-encrypted under the ring's first key; if one cannot be opened by any of
    its keys, a ``SecretsKeyError`` naming it (``name(its key)``) before any is returned."""
    resealed = {}
    for k, token in tokens.items():
        try:
            resealed[k] = ring.reseal(token)
        except InvalidToken:
            raise ring.wrong_key(name(k)) from None
    return resealed
