"""Background workers inside each API process: provisioning jobs and the effects outbox.

Each worker thread claims one due row at a time and sleeps on an event between polls; the
webhook route sets the event after committing a payment, so a paid order starts provisioning at
once in this process while the other processes' pollers stand by. Leases make it safe for any
number of threads and processes to poll the same tables, and make recovery automatic: rows a
dead process held fall due when their lease expires and the next poll (or startup) takes them.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger("storehouse.commerce.worker")


class Poller:
    """``threads`` threads running ``step`` (which returns how much it did) until stopped."""

    def __init__(self, name: str, step: Callable[[], int], threads: int, poll_s: float) -> None:
        self.name, self.step, self.count, self.poll_s = name, step, threads, poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "Poller":
        for i in range(self.count):
            thread = threading.Thread(target=self._loop, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                did = self.step()
            except Exception:  # the database is away: wait a poll and try again
                log.exception("%s: poll failed", self.name)
                did = 0
            if not did:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
