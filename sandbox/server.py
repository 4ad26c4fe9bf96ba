"""Run the sandbox in a background thread (tests, `storehouse demo`) or in the foreground."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


class SandboxThread:
    """A uvicorn server for the sandbox app on 127.0.0.1, stopped by ``stop()``."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        from sandbox.app import create_app

        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            create_app(), host=host, port=self.port, log_level="warning", access_log=False,
            lifespan="off", backlog=4096, limit_concurrency=4096,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="sandbox", daemon=True)

    def start(self, timeout: float = 15.0) -> "SandboxThread":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"sandbox did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def serve(port: int, host: str = "127.0.0.1") -> None:
    from sandbox.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info", access_log=False)
