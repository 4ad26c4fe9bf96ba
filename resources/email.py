"""Resend: transactional email over the shared ``HttpSession``, one ``Idempotency-Key`` per message.

A tenant's ``resend`` connection holds ``credentials.api_key`` and ``options.from`` (the shop's
sender, e.g. ``"NumnaRoad <orders@numnaroad.com>"``); ``base_url`` is ``https://api.resend.com``
in production. Resend keeps an idempotency key for 24 h: the same key with the same body returns
the first message's id and sends nothing, which is what makes a re-sent email after a crash
harmless. Resend allows 2 requests a second per team, so the session paces itself to that and
still honours ``Retry-After`` on a 429.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from pydantic import Field

from resources.connection import ConnectionSpec, Credentials, Options
from resources.http import CallPolicy, HttpSession
from resources.provider import Provider
from warehouse.tenants import TenantConnection

SYSTEM = "resend"
# 10 s per call, 4 attempts (a Retry-After past 10 s gives up), 2 calls a second (Resend's default
# team limit); a connection's timeout_s and rate_limit options override. Clients live in the API's
# pool (commerce.clients), so the retry budget is renewed every minute.
POLICY = CallPolicy(timeout_s=10.0, attempts=4, retry_after_ceiling_s=10.0, rate_limit_per_s=2.0,
                    retry_window_s=60.0)
DEFAULT_SENDER = "Storehouse <orders@storehouse.invalid>"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"
    content_id: str | None = None  # referenced from the HTML as ``cid:<content_id>``

    def wire(self) -> dict:
        out = {"filename": self.filename, "content": base64.b64encode(self.content).decode("ascii"),
               "content_type": self.content_type}
        if self.content_id:
            out["content_id"] = self.content_id
        return out


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    html: str
    text: str
    attachments: tuple[Attachment, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()


class ResendClient:
    """Sends ``Email``s for one Resend account (API key never logged: it lives in a header)."""

    def __init__(self, base_url: str, api_key: str, sender: str = DEFAULT_SENDER, *,
                 timeout_s: float | None = None, rate_limit: float | None = None, attempts: int | None = None) -> None:
        self.sender = sender
        policy = POLICY.with_overrides(timeout_s=timeout_s, attempts=attempts, rate_limit_per_s=rate_limit)
        self.session = HttpSession("resend", base_url, headers={"Authorization": f"Bearer {api_key}"}, policy=policy)

    def send(self, email: Email, idempotency_key: str) -> str:
        """Send (or, for a key already used with this body, return the first send's id)."""
        body = {
            "from": self.sender, "to": [email.to], "subject": email.subject,
            "html": email.html, "text": email.text,
            "attachments": [a.wire() for a in email.attachments],
            "tags": [{"name": k, "value": v} for k, v in email.tags],
        }
        response = self.session.request("POST", "/emails", json=body, headers={"Idempotency-Key": idempotency_key})
        return str(response.json()["id"])

    def close(self) -> None:
        self.session.close()


def resend_client(connection: TenantConnection) -> ResendClient:
    """A client for the tenant's Resend account; raises ``ValueError`` without an API key."""
    key = connection.credentials.get("api_key")
    if not key:
        raise ValueError(f"tenant {connection.tenant_id} has no Resend api_key")
    opts = connection.options
    return ResendClient(connection.base_url, str(key), str(opts.get("from") or DEFAULT_SENDER),
                        timeout_s=opts.get("timeout_s"), rate_limit=opts.get("rate_limit"))


class ResendCredentials(Credentials):
    api_key: str


class ResendOptions(Options):
    from_: str | None = Field(None, alias="from")
    timeout_s: float | None = Field(None, gt=0)
    rate_limit: float | None = Field(None, gt=0)


CONNECTION = ConnectionSpec(SYSTEM, ResendCredentials, ResendOptions)


PROVIDER = Provider(system=SYSTEM, kind="email", connection=CONNECTION, policy=POLICY, client=resend_client,
                    sandbox="resend",
                    rate_limit_scope=("2 requests a second per team: our limiter holds per client (one per "
                                      "message batch in one process); a 429 past it waits its Retry-After"))
