"""integrations: the history import's window (days) and its progress

``history_days`` is how many days of WhatsApp history an integration imports into Chatwoot
(0 = off, 7 by default, settable with the activation's ``history_days``). The ``history_*``
columns are the import's progress as ``GET /v1/integrations/{id}`` reports it (``history``):
its state and counts, kept across a restart of the bridge.

Revision ID: 0004_history
Revises: 0003_selfchecks
Create Date: 2026-12-04 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_history"
down_revision = "0003_selfchecks"
branch_labels = None
depends_on = None

_COUNTS = ("history_received", "history_imported", "history_skipped", "history_duplicates")


def upgrade() -> None:
    with op.batch_alter_table("bridge_integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("history_days", sa.Integer(), nullable=False, server_default="7"))
        batch_op.add_column(
            sa.Column("history_state", sa.String(length=16), nullable=False, server_default="idle")
        )
        for name in _COUNTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("history_started_at", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("history_finished_at", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("bridge_integrations", schema=None) as batch_op:
        for name in ("history_finished_at", "history_started_at", *reversed(_COUNTS), "history_state"):
            batch_op.drop_column(name)
        batch_op.drop_column("history_days")
