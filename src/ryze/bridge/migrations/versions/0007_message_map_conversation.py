"""message map: an index on (integration, conversation, Chatwoot id)

An agent's reply marks the customer's messages before it read (``MessageMapRepository.
inbound_between``): the messages of one conversation between two Chatwoot ids. With only the
(integration, Chatwoot id) index that range covers every conversation of the integration, and each
row was read from the table to test its conversation: the first reply in a conversation after a
restart read the integration's whole history below it (the bench's outbound phase: ~260 rows per
query, the bridge's read system calls per message tripled). This index bounds it to the
conversation's own rows.

Revision ID: 0007_message_map_conversation
Revises: 0006_chat_contact_profile
Create Date: 2026-12-04 23:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007_message_map_conversation"
down_revision = "0006_chat_contact_profile"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_bridge_message_map_conversation",
        "bridge_message_map",
        ["integration_id", "conversation_id", "chatwoot_message_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_bridge_message_map_conversation", table_name="bridge_message_map")
