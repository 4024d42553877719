"""self-check reports: the last one of each integration

The self-check runs in the background after an activation and on demand; its report is shown in
``IntegrationView.checks`` (and RyzeAPI's ``GET /api/chatwoot/list``), also after a restart.

Revision ID: 0003_selfchecks
Revises: 0002_message_map_kind
Create Date: 2026-12-04 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_selfchecks"
down_revision = "0002_message_map_kind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bridge_selfchecks",
        sa.Column("integration_id", sa.String(length=32), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("ran_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_bridge_selfchecks")),
    )


def downgrade() -> None:
    op.drop_table("bridge_selfchecks")
