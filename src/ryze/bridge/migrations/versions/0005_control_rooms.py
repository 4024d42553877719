"""control rooms: each integration's connection conversation

The bot contact and conversation the bridge posts connection changes, QR codes and command
answers into (``ryze.bridge.control``), the last state it posted (so a replayed or repeated
``instance.state`` is not posted twice) and the QR images still shown (deleted when replaced).

Revision ID: 0005_control_rooms
Revises: 0004_history
Create Date: 2026-12-04 21:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_control_rooms"
down_revision = "0004_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bridge_control_rooms",
        sa.Column("integration_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("last_state", sa.Text(), nullable=False, server_default=""),
        sa.Column("qr_message_ids", sa.Text(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_bridge_control_rooms")),
    )


def downgrade() -> None:
    op.drop_table("bridge_control_rooms")
