"""Slack incoming webhooks: team notices and alerts (unset URL: alerts go to the log only)."""

from __future__ import annotations

import logging

from pydantic import model_validator

from resources.connection import ConnectionSpec, Credentials
from resources.http import CallPolicy, HttpSession, ProviderError
from resources.provider import Provider

log = logging.getLogger("storehouse.slack")
POLICY = CallPolicy(timeout_s=5.0, attempts=3)  # a notice: a few seconds, three tries, then the log


def post(webhook_url: str | None, text: str, timeout_s: float | None = None) -> bool:
    """Post ``{text}`` to an incoming-webhook URL (the URL is the secret: never logged); False when
    it is unset (the notice goes to the log) or the notice was not delivered."""
    if not webhook_url:
        log.info("slack (not configured): %s", text)
        return False
    base, _, path = webhook_url.partition("/services/")
    with HttpSession(SYSTEM, base, policy=POLICY.with_overrides(timeout_s=timeout_s), redact_path=True) as session:
        try:
            session.request("POST", f"/services/{path}" if path else "", json={"text": text})
        except ProviderError as exc:
            log.warning("slack notice not delivered: %s", exc.kind)
            return False
    return True


SYSTEM = "slack"


class SlackCredentials(Credentials):
    """A tenant's own incoming webhook: its full URL, or its path on the connection's base URL."""

    webhook_url: str | None = None
    hook_path: str | None = None

    @model_validator(mode="after")
    def _names_a_hook(self) -> "SlackCredentials":
        if not (self.webhook_url or self.hook_path):
            raise ValueError("give webhook_url or hook_path")
        return self


CONNECTION = ConnectionSpec(SYSTEM, SlackCredentials)


PROVIDER = Provider(system=SYSTEM, kind="chat", connection=CONNECTION, policy=POLICY, sandbox="slack",
                    rate_limit_scope="about one message a second per hook; our notices are far rarer")
