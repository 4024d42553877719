"""chats: the contact name the bridge last set, and the avatar it last uploaded

``contact_name`` is the name the bridge gave the chat's Chatwoot contact (from WhatsApp: saved,
push or business name, or a group's subject). When Chatwoot's current name differs from it, an
agent edited the name, and the bridge leaves it alone from then on. ``avatar_id`` is the WhatsApp
picture id last uploaded as the contact's avatar and ``avatar_checked_at`` when WhatsApp was last
asked (at most once a day per chat). Existing rows get none of them: their contact's name is
treated as the bridge's own only while it still looks like one the bridge gives (a number).

Revision ID: 0006_chat_contact_profile
Revises: 0005_control_rooms
Create Date: 2026-12-04 22:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_chat_contact_profile"
down_revision = "0005_control_rooms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bridge_chats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("avatar_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("avatar_checked_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bridge_chats", schema=None) as batch_op:
        batch_op.drop_column("avatar_checked_at")
        batch_op.drop_column("avatar_id")
        batch_op.drop_column("contact_name")
