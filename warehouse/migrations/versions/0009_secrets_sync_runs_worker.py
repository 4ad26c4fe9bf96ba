"""sync_runs.worker: the process running a sync, so one whose process died can be closed

Revision ID: 0009_secrets_sync_worker
Revises: 0008_secrets_credentials
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_secrets_sync_worker"
down_revision = "0008_secrets_credentials"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sync_runs", sa.Column("worker", sa.String(128), nullable=True,
                                         comment="host:pid of the process running it, to tell when it died"))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("worker")
