"""Webhook delivery for the Stripe fake: signing, delivery switches, retries and an attempt log.

Stripe signs every attempt afresh: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"{t}.{raw_body}")>``. Delivery is at least once, unordered and retried on anything but 2xx, so
the dispatcher can deliberately produce duplicates, reordering, delays, dropped attempts and
concurrent deliveries, while ``wait_settled`` lets tests wait deterministically.

A single scheduler thread picks due deliveries and hands them to a small worker pool. Unless the
``concurrent`` switch is on, one endpoint receives one delivery at a time, in (due, sequence)
order, so the default order is the order events happened in.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Literal

import httpx
from pydantic import BaseModel, Field

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
MAX_ATTEMPT_LOG = 20_000


def compute_signature(secret: str, timestamp: int, body: str | bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"`` keyed by the whole ``whsec_`` secret."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    signed = f"{timestamp}.".encode("ascii") + raw
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: str | bytes, timestamp: int | None = None) -> tuple[str, int]:
    """Return the ``Stripe-Signature`` header value and the timestamp it carries."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={compute_signature(secret, t, body)}", t


class DeliverySwitches(BaseModel):
    """How the fake misbehaves when delivering events (per account, or global)."""

    pause: bool = Field(False, description="queue deliveries but send nothing until unpaused")
    duplicates: int = Field(1, ge=1, le=20, description="deliver every event this many times")
    order: Literal["in_order", "reverse", "shuffle"] = Field(
        "in_order", description="reverse/shuffle hold events and release them as a reordered batch"
    )
    batch_size: int = Field(0, ge=0, le=10_000, description="release a held batch at this size (0: by time)")
    hold_ms: float = Field(1000, ge=0, description="release a partial held batch after this long")
    delay_ms: float = Field(0, ge=0, description="wait before the first attempt of each delivery")
    fail_deliveries: int = Field(0, ge=0, description="drop the next N attempts (counted down) to force retries")
    concurrent: bool = Field(False, description="allow parallel deliveries to one endpoint")
    retry_schedule_s: list[float] = Field(
        default_factory=lambda: [0.2, 0.5, 1.0, 2.0],
        description="waits before retries; attempts = 1 + len(retry_schedule_s)",
    )
    timeout_s: float = Field(5.0, gt=0, le=60)
    seed: int | None = Field(None, description="seed for 'shuffle' (None: random)")


@dataclass
class _Held:
    account: str
    event_id: str
    event_type: str
    body: str
    targets: list[str]


@dataclass
class _Job:
    seq: int
    gen: int
    account: str
    event_id: str
    event_type: str
    endpoint_id: str
    body: str
    copy: int
    due: float
    attempt: int = 1
    resend: bool = False


@dataclass
class _Batch:
    events: list[_Held] = field(default_factory=list)
    started: float = 0.0


# (account, endpoint_id) -> (url, secret) or None when the endpoint is gone or disabled.
EndpointLookup = Callable[[str, str], "tuple[str, str] | None"]
DeliveredCallback = Callable[[str, str, str], None]


class WebhookDispatcher:
    """Queues, reorders, signs, posts and retries webhook deliveries in the background."""

    def __init__(self, lookup: EndpointLookup, on_delivered: DeliveredCallback, workers: int = 16) -> None:
        self._lookup = lookup
        self._on_delivered = on_delivered
        self._cond = threading.Condition()
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._http = httpx.Client(follow_redirects=False, headers={"User-Agent": USER_AGENT})
        self._seq = itertools.count()
        self._attempt_ids = itertools.count(1)
        self._reset_state()

    def _reset_state(self) -> None:
        self._gen = getattr(self, "_gen", 0) + 1
        self._switches: dict[str | None, DeliverySwitches] = {None: DeliverySwitches()}
        self._rngs: dict[str | None, random.Random] = {}
        self._held: dict[str, _Batch] = {}
        self._jobs: list[_Job] = []
        self._busy: set[tuple[str, str]] = set()
        self._in_flight = 0
        self._attempts: list[dict] = []

    # ----- switches -------------------------------------------------------------------------

    def set_switches(self, account: str | None, switches: DeliverySwitches) -> None:
        with self._cond:
            self._switches[account] = switches.model_copy(deep=True)
            self._rngs.pop(account, None)
            self._cond.notify_all()

    def clear_switches(self, account: str | None = None) -> None:
        """Forget one account's switches (falls back to global), or all of them when None."""
        with self._cond:
            if account is None:
                self._switches = {None: DeliverySwitches()}
                self._rngs.clear()
            else:
                self._switches.pop(account, None)
                self._rngs.pop(account, None)
            self._cond.notify_all()

    def switches_snapshot(self) -> dict:
        with self._cond:
            return {
                "global": self._switches[None].model_dump(),
                "accounts": {k: v.model_dump() for k, v in self._switches.items() if k is not None},
            }

    def _effective(self, account: str) -> tuple[str | None, DeliverySwitches]:
        scope = account if account in self._switches else None
        return scope, self._switches[scope]

    # ----- submitting -----------------------------------------------------------------------

    def submit(self, account: str, event_id: str, event_type: str, body: str, targets: list[str]) -> None:
        """Queue a freshly created event for every target endpoint, honouring the switches."""
        if not targets:
            return
        held = _Held(account, event_id, event_type, body, list(targets))
        with self._cond:
            self._ensure_started()
            _, sw = self._effective(account)
            now = time.monotonic()
            if sw.order == "in_order":
                self._enqueue([held], sw, now)
            else:
                batch = self._held.setdefault(account, _Batch(started=now))
                if not batch.events:
                    batch.started = now
                batch.events.append(held)
                if sw.batch_size and len(batch.events) >= sw.batch_size:
                    self._release(account, now)
            self._cond.notify_all()

    def resend(self, account: str, event_id: str, event_type: str, body: str, targets: list[str]) -> int:
        """Deliver an existing event once more to the given endpoints; returns jobs queued."""
        with self._cond:
            self._ensure_started()
            now = time.monotonic()
            for endpoint_id in targets:
                self._jobs.append(_Job(next(self._seq), self._gen, account, event_id, event_type,
                                       endpoint_id, body, copy=1, due=now, resend=True))
            self._cond.notify_all()
            return len(targets)

    def _enqueue(self, events: list[_Held], sw: DeliverySwitches, now: float) -> None:
        due = now + sw.delay_ms / 1000.0
        for held in events:
            for copy in range(1, sw.duplicates + 1):
                for endpoint_id in held.targets:
                    self._jobs.append(_Job(next(self._seq), self._gen, held.account, held.event_id,
                                           held.event_type, endpoint_id, held.body, copy, due))

    def _release(self, account: str, now: float) -> None:
        batch = self._held.pop(account, None)
        if batch is None or not batch.events:
            return
        scope, sw = self._effective(account)
        events = list(batch.events)
        if sw.order == "reverse":
            events.reverse()
        elif sw.order == "shuffle":
            rng = self._rngs.get(scope)
            if rng is None:
                rng = self._rngs[scope] = random.Random(sw.seed)
            rng.shuffle(events)
        self._enqueue(events, sw, now)

    # ----- scheduling -----------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="stripe-webhook")
            self._thread = threading.Thread(target=self._run, name="stripe-webhook-scheduler", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                job, wait = self._next_job()
                if job is None:
                    self._cond.wait(timeout=wait)
                    continue
                self._jobs.remove(job)
                self._busy.add((job.account, job.endpoint_id))
                self._in_flight += 1
            assert self._pool is not None
            self._pool.submit(self._deliver, job)

    def _next_job(self) -> tuple[_Job | None, float | None]:
        """Pick the next runnable job, releasing held batches whose time is up (lock held)."""
        now = time.monotonic()
        wake: list[float] = []
        for account, batch in list(self._held.items()):
            _, sw = self._effective(account)
            deadline = batch.started + sw.hold_ms / 1000.0
            if sw.order == "in_order" or now >= deadline:
                self._release(account, now)
            else:
                wake.append(deadline)
        best: _Job | None = None
        for job in self._jobs:
            _, sw = self._effective(job.account)
            if sw.pause:
                continue
            if job.due > now:
                wake.append(job.due)
                continue
            if not sw.concurrent and (job.account, job.endpoint_id) in self._busy:
                continue
            if best is None or (job.due, job.seq) < (best.due, best.seq):
                best = job
        if best is not None:
            return best, None
        return None, (max(0.0, min(wake) - now) if wake else None)

    # ----- delivering -----------------------------------------------------------------------

    def _deliver(self, job: _Job) -> None:
        succeeded = False
        try:
            target = self._lookup(job.account, job.endpoint_id)
            with self._cond:
                _, sw = self._effective(job.account)
                drop = target is not None and sw.fail_deliveries > 0
                if drop:
                    sw.fail_deliveries -= 1
                schedule = list(sw.retry_schedule_s)
                timeout = sw.timeout_s
            record = {
                "event_id": job.event_id, "event_type": job.event_type, "endpoint_id": job.endpoint_id,
                "_account": job.account, "account": _mask(job.account), "copy": job.copy,
                "attempt": job.attempt, "resend": job.resend,
                "created": time.time(), "url": target[0] if target else None, "status_code": None,
                "error": None, "dropped": drop, "succeeded": False, "duration_ms": 0.0,
                "stripe_signature": None, "next_retry_in_s": None,
            }
            if target is None:
                record["error"] = "endpoint deleted or disabled; delivery abandoned"
                self._finish(job, record, retry_in=None)
                return
            url, secret = target
            header, _ = signature_header(secret, job.body)
            record["stripe_signature"] = header
            started = time.monotonic()
            if drop:
                record["error"] = "dropped by the sandbox (fail_deliveries switch)"
            else:
                try:
                    response = self._http.post(
                        url, content=job.body.encode("utf-8"), timeout=timeout,
                        headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
                    )
                    record["status_code"] = response.status_code
                    succeeded = 200 <= response.status_code < 300
                    if not succeeded:
                        record["error"] = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    record["error"] = f"{type(exc).__name__}: {exc}"
            record["duration_ms"] = round((time.monotonic() - started) * 1000, 2)
            record["succeeded"] = succeeded
            retry_in = None if succeeded or job.attempt > len(schedule) else schedule[job.attempt - 1]
            self._finish(job, record, retry_in)
        except Exception as exc:  # a worker must never die silently and leave `in_flight` stuck
            self._finish(job, {"_account": job.account, "event_id": job.event_id,
                               "error": f"sandbox error: {exc!r}"}, retry_in=None)
        if succeeded:
            self._on_delivered(job.account, job.event_id, job.endpoint_id)

    def _finish(self, job: _Job, record: dict, retry_in: float | None) -> None:
        with self._cond:
            self._busy.discard((job.account, job.endpoint_id))
            self._in_flight -= 1
            if job.gen == self._gen:
                record["id"] = f"whattempt_{next(self._attempt_ids)}"
                record["next_retry_in_s"] = retry_in
                self._attempts.append(record)
                del self._attempts[:-MAX_ATTEMPT_LOG]
                if retry_in is not None:
                    job.attempt += 1
                    job.due = time.monotonic() + retry_in
                    self._jobs.append(job)
            self._cond.notify_all()

    # ----- observing ------------------------------------------------------------------------

    def attempts(self, *, account: str | None = None, event_id: str | None = None,
                 endpoint_id: str | None = None, event_type: str | None = None) -> list[dict]:
        """Delivery attempts, oldest first, optionally filtered."""
        with self._cond:
            return [
                {k: v for k, v in a.items() if k != "_account"} for a in self._attempts
                if (account is None or a.get("_account") == account)
                and (event_id is None or a.get("event_id") == event_id)
                and (endpoint_id is None or a.get("endpoint_id") == endpoint_id)
                and (event_type is None or a.get("event_type") == event_type)
            ]

    def _status(self, account: str | None) -> dict:
        jobs = [j for j in self._jobs if account is None or j.account == account]
        paused = [j for j in jobs if self._effective(j.account)[1].pause]
        held = sum(len(b.events) for a, b in self._held.items() if account is None or a == account)
        return {"queued": len(jobs), "queued_paused": len(paused), "held_events": held,
                "in_flight": self._in_flight, "paused_accounts": sorted({_mask(j.account) for j in paused})}

    def wait_settled(self, account: str | None = None, timeout: float = 10.0) -> dict:
        """Release held batches, then wait until nothing is queued or in flight.

        Returns at once with ``settled: false`` when the remaining work is paused.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            now = time.monotonic()
            for acct in list(self._held):
                if account is None or acct == account:
                    self._release(acct, now)
            self._cond.notify_all()
            while True:
                status = self._status(account)
                idle = status["held_events"] == 0 and status["in_flight"] == 0
                if idle and status["queued"] == 0:
                    return {"settled": True, **status, "attempts": len(self._attempts)}
                if idle and status["queued"] == status["queued_paused"]:
                    return {"settled": False, "reason": "paused", **status, "attempts": len(self._attempts)}
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return {"settled": False, "reason": "timeout", **status, "attempts": len(self._attempts)}
                self._cond.wait(timeout=min(remaining, 0.05))

    def reset(self) -> None:
        """Drop every queued delivery, switch and attempt; in-flight results are ignored."""
        with self._cond:
            busy, in_flight = self._busy, self._in_flight
            self._reset_state()
            # In-flight workers still finish and decrement these, so carry them over.
            self._busy, self._in_flight = busy, in_flight
            self._cond.notify_all()


def _mask(api_key: str) -> str:
    """Attempt logs name the account by a masked key, like Stripe's dashboard does."""
    return api_key if len(api_key) <= 12 else f"{api_key[:8]}...{api_key[-4:]}"
