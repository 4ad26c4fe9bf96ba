"""An S3 API we did not write, for the S3 backend's tests: moto's standalone server in a subprocess.

Not moto's in-process mock: the backend talks HTTP to a real server process, through botocore's
real transport, timeouts and retries. The port is a free one (``STOREHOUSE_TEST_S3_PORT`` pins
it). When the server cannot start (moto not installed, say) the tests that need it skip, saying
why, except in CI, which installs moto with the ``test`` extra: there they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import httpx
import pytest

from resources.storage.s3 import S3Storage
from resources.storage.settings import StorageSettings

ACCESS_KEY, SECRET_KEY = "storehouse-test", "storehouse-test-secret"
IN_CI = os.environ.get("CI") == "true"  # CI must run these, never skip them


def unavailable(reason: str):
    (pytest.fail if IN_CI else pytest.skip)(f"moto's S3 server {reason}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self) -> None:
        self.port = int(os.environ.get("STOREHOUSE_TEST_S3_PORT") or free_port())
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="moto-server-", suffix=".log", delete=False)
        self.proc: subprocess.Popen | None = None

    def start(self) -> MotoServer:
        """Start and wait until it answers; ``pytest.skip`` with the reason when it cannot."""
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            unavailable(f"could not start ({exc}): pip install 'moto[server]'")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = open(self.log.name, errors="replace").read()[-600:]
                unavailable(f"exited at start (pip install 'moto[server]'?): {tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/moto-api/", timeout=1).status_code < 500:
                    return self
            time.sleep(0.2)
        self.stop()
        unavailable(f"did not answer on {self.url} within 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)

    def settings(self, **overrides) -> StorageSettings:
        """Settings for a fresh set of buckets (a prefix of its own), created on first use."""
        values = dict(backend="s3", s3_endpoint_url=self.url, s3_access_key_id=ACCESS_KEY,
                      s3_secret_access_key=SECRET_KEY, s3_bucket_prefix=f"t{uuid.uuid4().hex[:10]}-",
                      s3_create_buckets=True, s3_connect_timeout_s=2, s3_read_timeout_s=10, s3_max_attempts=2)
        values.update(overrides)
        return StorageSettings(**values)

    def storage(self, **overrides) -> S3Storage:
        return S3Storage.from_settings(self.settings(**overrides))
