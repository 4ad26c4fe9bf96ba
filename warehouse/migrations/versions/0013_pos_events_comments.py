"""pos_events: the provider columns' comments no longer list the POS systems (the registry does, issue 10)

Only the comments change (PostgreSQL keeps column comments; SQLite has none).

Revision ID: 0013_pos_events_comments
Revises: 0009_schemas_analyst_views
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_pos_events_comments"
down_revision = "0009_schemas_analyst_views"
branch_labels = None
depends_on = None

COMMENTS = {  # table: (old, new)
    "pos_webhook_events": ("treez, dutchie, blaze, flowhub, cova, shopify",
                           "the POS system that sent it; the systems: resources/providers.py"),
    "pos_webhook_tokens": ("a POS that does not sign: treez, dutchie, ...",
                           "a POS system that does not sign its webhooks (resources/providers.py)"),
}


def _comment(upgrading: bool) -> None:
    if op.get_bind().dialect.supports_comments:
        for table, (old, new) in COMMENTS.items():
            op.alter_column(table, "provider", comment=new if upgrading else old,
                            existing_comment=old if upgrading else new, existing_type=sa.String(32),
                            existing_nullable=False)


def upgrade() -> None:
    _comment(True)


def downgrade() -> None:
    _comment(False)
