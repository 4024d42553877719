"""Is a WhatsApp message already in Chatwoot? (the replay / ambiguous-failure check)

A create whose answer was lost, or that a process dying before its mapping row took along, left a
Chatwoot message with ``source_id = WAID:<id>``. Chatwoot's message list answers only the latest 20
of a conversation (``MessageFinder#messages_latest``, ``limit(20)``; ``before=<id>`` gives 20
more), so a conversation that moved on by 20 messages hid it and the message was created twice.
The search pages back until it reaches messages older than the WhatsApp message itself (a create
for it cannot be older, clock skew aside), the start of the conversation, or a bound.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ryze.chatwoot import ChatwootPort
from ryze.chatwoot.models import Message

log = logging.getLogger(__name__)

# Chatwoot's and WhatsApp's clocks may disagree; a create is not taken to predate its message by more.
CLOCK_SKEW_SECONDS = 600.0
# 50 pages of 20: how far back a conversation is read before the message is taken as not created.
MAX_PAGES = 50
_PAGE = 20  # MessageFinder's page size with or without ``before``


def message_time(timestamp: str) -> float | None:
    """The RFC 3339 timestamp of a WhatsApp message, as unix seconds (None when unreadable)."""
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def find_created(
    client: ChatwootPort,
    conversation_id: int,
    source_id: str,
    *,
    not_before: float | None,
    max_pages: int = MAX_PAGES,
) -> Message | None:
    """The conversation's message with ``source_id``, searched newest first, page by page."""
    floor = None if not_before is None else not_before - CLOCK_SKEW_SECONDS
    before: int | None = None
    for _ in range(max_pages):
        page = await client.list_messages(conversation_id, before=before)
        for message in page:
            if message.source_id == source_id:
                return message
        if len(page) < _PAGE:
            return None  # the conversation's first message is on this page
        oldest = min(page, key=lambda m: m.id)
        if floor is not None and oldest.created_at is not None and oldest.created_at < floor:
            return None  # older than the WhatsApp message: its create cannot be further back
        before = oldest.id
    log.warning(
        "already-created check stopped at its page bound",
        extra={"conversation_id": conversation_id, "pages": max_pages},
    )
    return None
