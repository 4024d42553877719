"""The ``source_id`` the bridge gives the Chatwoot messages it mirrors from WhatsApp: ``WAID:<id>``.

Chatwoot keeps a message's ``source_id`` and echoes it in webhooks, so the prefix marks the bridge's
own mirrors (never sent back to WhatsApp) and carries the WhatsApp id of a quoted message
(``content_attributes.in_reply_to_external_id``).
"""

from __future__ import annotations

WAID_PREFIX = "WAID:"


def wa_source_id(wa_message_id: str) -> str:
    """The Chatwoot ``source_id`` (or external reply id) of a WhatsApp message."""
    return WAID_PREFIX + wa_message_id


def wa_id_of(source_id: object) -> str | None:
    """The WhatsApp id a ``WAID:`` source id carries, or None for any other value."""
    if isinstance(source_id, str) and source_id.startswith(WAID_PREFIX):
        return source_id[len(WAID_PREFIX) :]
    return None
