"""last webhook seen: where the catch-up sweep starts

``bridge_integrations.last_webhook_at``: when the bridge last received one of the inbox's
webhooks (unix seconds, 0 = never). The catch-up sweep (``relay/outbound/catchup.py``) looks for
agent messages whose webhook failed from shortly before that point on.

Revision ID: 0008_last_webhook
Revises: 0007_message_map_conversation
Create Date: 2026-12-04 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_last_webhook"
down_revision = "0007_message_map_conversation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bridge_integrations") as batch:
        batch.add_column(sa.Column("last_webhook_at", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("bridge_integrations") as batch:
        batch.drop_column("last_webhook_at")
