"""Whether an agent message can go before its reorder window ends: nothing earlier is missing.

Chatwoot delivers webhooks from Sidekiq jobs run ten at once (``config/sidekiq.yml``; the
listener builds ``Message#webhook_data`` in ``EventDispatcherJob`` and ``WebhookJob`` posts it), so
an agent's second message can reach the bridge first. The worker holds a fresh message for up to
``outbound_reorder_window`` seconds so that an earlier one still on its way goes first. Most of the
time nothing is on its way, and the hold is pure latency: this module asks Chatwoot once
(``GET …/conversations/{id}/messages?before=<id>``, app/finders/message_finder.rb: the 20
messages before it; with ``after=<id>`` of an agent message known to be older than the window, the
ones since, often a handful) whether the conversation has an agent message the bridge should
have received and has not. None → the message goes at once; some → it waits until they arrive
(or the window ends, as before).

An earlier message matters only when it was created less than the window before this one (by
Chatwoot's clock on both sides: no clock skew with the bridge). One created earlier that is still
not here is later than the window ever covered, so it is not waited for (that was so before too).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol

from ryze.bridge.relay.outbound.webhook import AgentMessage
from ryze.bridge.relay.source_id import WAID_PREFIX
from ryze.chatwoot import ChatwootError
from ryze.chatwoot.models import Message

log = logging.getLogger(__name__)

# Chatwoot's message_type in its REST views (``message_type_before_type_cast``: outgoing 1,
# template 3) and in webhooks (the enum's name): the types the bridge relays (``filters.py``).
_RELAYED_TYPES = (1, 3, "outgoing", "template")
_PAGE = 20  # MessageFinder's page for ``before`` alone (app/finders/message_finder.rb)
_PAGE_BETWEEN = 1000  # its page for ``after`` and ``before``
_SEEN_PER_CONVERSATION = 64  # recent agent message ids kept per conversation
_SEEN_CONVERSATIONS_MAX = 50_000  # then forgotten all at once (forgetting only costs a hold)


class MessageLister(Protocol):
    """What the guard needs of Chatwoot (``ryze.chatwoot.ChatwootClient``)."""

    async def list_messages(
        self, conversation_id: int, *, before: int | None = None, after: int | None = None
    ) -> list[Message]: ...


class ReorderGuard:
    """Remembers which agent messages' webhooks came; finds the earlier ones that did not."""

    def __init__(self, window: float) -> None:
        self._window = window
        # conversation → the recent agent messages received: id → Chatwoot creation time (or None)
        self._seen: dict[int, dict[int, float | None]] = {}
        self._order: dict[int, deque[int]] = {}  # conversation → those ids, oldest first (bounded)
        # conversation → the newest listed message (any kind) and its listed creation second: a
        # start for the next listing, so a busy conversation is not listed 20 messages at a time
        self._anchor: dict[int, tuple[int, float]] = {}

    def received(self, conversation_id: int, message_id: int, created_at: float | None) -> None:
        seen = self._seen.get(conversation_id)
        if seen is None:
            if len(self._seen) >= _SEEN_CONVERSATIONS_MAX:
                self._seen.clear()
                self._order.clear()
                self._anchor.clear()
            seen = self._seen[conversation_id] = {}
            self._order[conversation_id] = deque()
        if message_id in seen:
            return
        order = self._order[conversation_id]
        if len(order) >= _SEEN_PER_CONVERSATION:
            seen.pop(order.popleft(), None)
        seen[message_id] = created_at
        order.append(message_id)

    def still_missing(self, conversation_id: int, missing: frozenset[int]) -> bool:
        seen = self._seen.get(conversation_id, {})
        return any(message_id not in seen for message_id in missing)

    async def missing(self, chatwoot: MessageLister, message: AgentMessage) -> frozenset[int] | None:
        """The earlier agent messages of ``message``'s conversation, created within the window
        before it, whose webhooks have not come; None when that cannot be known (no creation time,
        Chatwoot unreachable, a page full of candidates): then the whole window is waited."""
        if message.created_at is None:
            return None
        cutoff = message.created_at - self._window
        seen = self._seen.get(message.conversation_id, {})
        # A message known to be created before the cutoff (an agent message received, or one a
        # previous listing showed): nothing older can matter, so the listing starts there (its page
        # then holds what came since, often a handful, not the last 20 of anything).
        older = [m for m, at in seen.items() if m < message.id and at is not None and at < cutoff]
        anchor = self._anchor.get(message.conversation_id)
        if anchor is not None and anchor[0] < message.id and anchor[1] + 1 <= cutoff:
            older.append(anchor[0])
        after = max(older) if older else None
        try:
            earlier = await chatwoot.list_messages(message.conversation_id, before=message.id, after=after)
        except ChatwootError as exc:
            log.info(
                "could not list the conversation's messages: the reorder window is waited out",
                extra={"conversation_id": message.conversation_id, "error": str(exc)[:300]},
            )
            return None
        # The REST view's created_at is whole seconds (``created_at.to_i``): a message listed at
        # second s was created before s + 1, so it is a candidate unless s + 1 <= cutoff.
        recent = [m for m in earlier if m.created_at is None or m.created_at + 1 > cutoff]
        self._note_anchor(message.conversation_id, earlier, cutoff)
        if after is not None and len(earlier) >= _PAGE_BETWEEN:
            return None  # the oldest 1000 since ``after``: the newest, nearest this one, were cut
        if after is None and len(earlier) >= _PAGE and len(recent) == len(earlier):
            return None  # the newest 20 may not reach back to the cutoff: more could be missing
        return frozenset(m.id for m in recent if _relayed(m) and m.id not in seen)

    def _note_anchor(self, conversation_id: int, listed: list[Message], cutoff: float) -> None:
        old = [
            (m.id, m.created_at) for m in listed if m.created_at is not None and m.created_at + 1 <= cutoff
        ]
        if not old:
            return
        newest = max(old)
        known = self._anchor.get(conversation_id)
        if conversation_id in self._seen and (known is None or newest[0] > known[0]):
            self._anchor[conversation_id] = newest


def _relayed(message: Message) -> bool:
    """An agent message whose webhook becomes a send (``filters.intent_of``, as far as listed)."""
    if message.private or message.message_type not in _RELAYED_TYPES:
        return False
    return not (message.source_id is not None and message.source_id.startswith(WAID_PREFIX))
