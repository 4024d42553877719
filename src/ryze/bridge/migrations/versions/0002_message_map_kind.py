"""message map: kind, target and sender of each mapped message; the last receipt applied

A reaction removal, an edit or a revoke must find what it acts on, and a reaction changed by
the same person must find the previous one: each row now says what it is (``kind``), which
WhatsApp message it acts on (``target_wa_id``) and who sent it (``sender_jid``). ``receipt`` is
the highest status a WhatsApp receipt moved the Chatwoot message to, so a late "delivered"
never downgrades a "read". Existing rows are carried forward as plain messages with no target.

Revision ID: 0002_message_map_kind
Revises: 0001_bridge
Create Date: 2026-12-04 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_message_map_kind"
down_revision = "0001_bridge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bridge_message_map", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="message"))
        batch_op.add_column(sa.Column("target_wa_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("sender_jid", sa.String(length=255), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("receipt", sa.String(length=16), nullable=False, server_default=""))
        batch_op.create_index(
            "ix_bridge_message_map_target", ["integration_id", "target_wa_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("bridge_message_map", schema=None) as batch_op:
        batch_op.drop_index("ix_bridge_message_map_target")
        batch_op.drop_column("receipt")
        batch_op.drop_column("sender_jid")
        batch_op.drop_column("target_wa_id")
        batch_op.drop_column("kind")
