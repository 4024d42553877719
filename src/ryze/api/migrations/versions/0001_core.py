"""RyzeAPI core: accounts, instances, message store.

Revision ID: 0001_core
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("instance_quota", sa.Integer, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id", sa.String(36), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("token_enc", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False, server_default="disconnected"),
        sa.Column("number_jid", sa.String(100), nullable=True),
        sa.Column("profile_name", sa.String(200), nullable=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_instances_account_id", "instances", ["account_id"])
    op.create_table(
        "messages",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column(
            "instance_id", sa.String(36), sa.ForeignKey("instances.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("wa_id", sa.String(128), nullable=False),
        sa.Column("chat_jid", sa.String(128), nullable=False),
        sa.Column("sender_jid", sa.String(128), nullable=False),
        sa.Column("from_me", sa.Boolean, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("target_id", sa.String(128), nullable=True),
        sa.Column("media_kind", sa.String(20), nullable=True),
        sa.Column("media_mimetype", sa.String(200), nullable=True),
        sa.Column("media_file_name", sa.String(500), nullable=True),
        sa.Column("media_handle", sa.LargeBinary, nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("instance_id", "wa_id", name="uq_messages_instance_wa_id"),
    )
    op.create_index("ix_messages_instance_chat_ts", "messages", ["instance_id", "chat_jid", "timestamp"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_index("ix_instances_account_id", table_name="instances")
    op.drop_table("instances")
    op.drop_table("accounts")
