"""Chatwoot module: integrations, the bridge link's event log and cursors, command results.

Revision ID: 0002_chatwoot
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_chatwoot"
down_revision = "0001_core"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "chatwoot_integrations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "instance_id",
            sa.String(36),
            sa.ForeignKey("instances.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("instance_name", sa.String(64), nullable=False, unique=True),
        sa.Column("bridge_integration_id", sa.String(128), nullable=False),
        sa.Column("chatwoot_base_url", sa.String(2048), nullable=False),
        sa.Column("chatwoot_account_id", sa.BigInteger, nullable=False),
        sa.Column("chatwoot_api_token", sa.Text, nullable=False),
        sa.Column("chatwoot_inbox_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("chatwoot_inbox_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("sign_messages", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("ignore_groups", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("start_as_pending", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reopen_resolved", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "chatwoot_event_log",
        sa.Column("instance_name", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_table(
        "chatwoot_event_cursors",
        sa.Column("instance_name", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "chatwoot_commands",
        sa.Column("instance_name", sa.String(64), primary_key=True),
        sa.Column("command_id", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_chatwoot_commands_created_at", "chatwoot_commands", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_chatwoot_commands_created_at", table_name="chatwoot_commands")
    op.drop_table("chatwoot_commands")
    op.drop_table("chatwoot_event_cursors")
    op.drop_table("chatwoot_event_log")
    op.drop_table("chatwoot_integrations")
