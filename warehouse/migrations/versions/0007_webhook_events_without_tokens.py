"""shop: stored Stripe events lose the order tokens in their redirect URLs

A Checkout Session echoes the ``success_url`` and ``cancel_url`` it was made with, and ours carry
the customer's order token. Events are stored without those query strings since 0006's release;
this strips them from the rows stored before. The rewrite is frozen here (not imported from the
app) so that the migration means the same thing whatever the app later becomes.

Revision ID: 0007_events_no_tokens
Revises: 0006_attempts_no_codes
Create Date: 2026-12-05
"""

from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

import warehouse.types

revision = "0007_events_no_tokens"
down_revision = "0006_attempts_no_codes"
branch_labels = None
depends_on = None

REDIRECT_FIELDS = ("success_url", "cancel_url", "return_url")
BATCH = 500

events = sa.table("webhook_events", sa.column("tenant_id", sa.String), sa.column("event_id", sa.String),
                  sa.column("type", sa.String), sa.column("payload", warehouse.types.JSONDoc))


def _scrubbed(payload: dict) -> dict | None:
    """The payload without redirect query strings, or None when it holds none."""
    obj = (payload.get("data") or {}).get("object") or {}
    hidden = {k: urlsplit(obj[k])._replace(query="").geturl() for k in REDIRECT_FIELDS
              if isinstance(obj.get(k), str) and urlsplit(obj[k]).query}
    if not hidden:
        return None
    return {**payload, "data": {**payload["data"], "object": {**obj, **hidden}}}


def upgrade() -> None:
    conn = op.get_bind()
    after = ("", "")
    while True:  # keyset pages: memory stays flat however many events are stored
        rows = conn.execute(
            sa.select(events.c.tenant_id, events.c.event_id, events.c.payload)
            .where(events.c.type.like("checkout.session.%"),
                   sa.tuple_(events.c.tenant_id, events.c.event_id) > sa.tuple_(*after))
            .order_by(events.c.tenant_id, events.c.event_id).limit(BATCH)
        ).all()
        if not rows:
            return
        for tenant_id, event_id, payload in rows:
            clean = _scrubbed(payload) if isinstance(payload, dict) else None
            if clean is not None:
                conn.execute(sa.update(events).where(events.c.tenant_id == tenant_id, events.c.event_id == event_id)
                             .values(payload=clean))
        after = (rows[-1].tenant_id, rows[-1].event_id)


def downgrade() -> None:
    """The tokens are gone for good: nothing to restore."""
