"""Outbound intents: what a Chatwoot webhook asks of WhatsApp (chatwoot-api.md §8).

Classification reads the typed message (``webhook.py``) and returns a typed intent (send, revoke,
typing; mark read follows a sent reply), each with one converter (``converters.py``).

Forwarded: ``message_created`` with ``message_type`` outgoing/template, not private, whose
``source_id`` is not one the bridge wrote (``WAID:…``: the bridge's own mirrors of WhatsApp
messages); ``message_updated`` with ``content_attributes.deleted`` (revoke). Everything else —
incoming messages (the bridge created them), private notes (including the bridge's failure notes),
status updates (including the bridge's own PATCHes) — is ignored. Messages of the integration's
connection conversation never get here: the webhook route hands them to the command handler
first (``bridge.control``), so none of them can become a WhatsApp send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ryze.bridge.relay.outbound.shapes import CONVERSATION_EVENTS, as_int
from ryze.bridge.relay.outbound.webhook import AgentMessage, TypingEvent, parse_message, parse_typing
from ryze.bridge.relay.source_id import WAID_PREFIX as OWN_SOURCE_PREFIX

# message_types whose messages can become WhatsApp sends (a tuple: `in` must not hash a list or dict)
SENDABLE_MESSAGE_TYPES = ("outgoing", "template")


@dataclass(frozen=True, slots=True)
class _MessageIntent:
    """An intent about one agent message: its outbound job is keyed by the message's id."""

    message: AgentMessage

    @property
    def chatwoot_message_id(self) -> int:
        return self.message.id

    @property
    def conversation_id(self) -> int:
        return self.message.conversation_id


@dataclass(frozen=True, slots=True)
class SendIntent(_MessageIntent):
    """An agent's message to send: its text and attachments, in order, each part once."""

    kind = "send"  # the outbound job's kind (a class constant, not a field)


@dataclass(frozen=True, slots=True)
class RevokeIntent(_MessageIntent):
    """An agent deleted a message the bridge sent: revoke each of its WhatsApp parts."""

    kind = "revoke"


@dataclass(frozen=True, slots=True)
class TypingIntent:
    """An agent typing (or stopping) in a conversation: a WhatsApp presence, best effort."""

    chat: str
    state: Literal["composing", "paused"]


@dataclass(frozen=True, slots=True)
class MarkReadIntent:
    """An agent replied: the customer's earlier WhatsApp messages in the chat are read."""

    chat: str
    conversation_id: int
    reply_id: int  # the agent's Chatwoot message; the customer's messages before it are marked
    message_ids: tuple[str, ...]
    # each message's author (same order): a group's read receipt names one (whatsmeow MarkRead)
    senders: tuple[str, ...] = ()


# The intents a stored outbound job carries (the worker's converters build commands from them).
JobIntent = SendIntent | RevokeIntent


def intent_of(message: AgentMessage) -> JobIntent | None:
    """What the bridge does about an agent's message webhook, or None when nothing."""
    if message.private:
        return None  # a private note (or a "private" of another type: not relayed on a guess)
    if message.message_type not in SENDABLE_MESSAGE_TYPES:
        return None
    if message.event == "message_updated":
        return RevokeIntent(message) if message.deleted else None
    if message.source_id is not None and message.source_id.startswith(OWN_SOURCE_PREFIX):
        return None
    return SendIntent(message)


def classify(payload: dict[str, Any]) -> JobIntent | None:
    """A raw webhook's intent (parsed once: the intent carries the typed message)."""
    message = parse_message(payload)
    return intent_of(message) if message is not None else None


def job_intent(kind: str, payload: dict[str, Any]) -> JobIntent | None:
    """A stored job's intent, from its kind and Chatwoot's raw body (None: unreadable)."""
    message = parse_message(payload)
    if message is None:
        return None
    return RevokeIntent(message) if kind == "revoke" else SendIntent(message)


@dataclass(frozen=True)
class StatusChange:
    conversation_id: int  # display id
    status: str
    # Conversation#updated_at as a float (push_event_data / webhook_data); None when absent, and
    # then the change is applied whatever came before (an older Chatwoot, a hand-made webhook).
    updated_at: float | None = None


def conversation_status(payload: dict[str, Any]) -> StatusChange | None:
    """``conversation_*`` events: the status snapshot, to keep the resolver's cache current."""
    if payload.get("event") not in CONVERSATION_EVENTS:
        return None
    conversation_id, status = as_int(payload.get("id")), payload.get("status")
    if conversation_id is None or not isinstance(status, str):
        return None
    stamp = payload.get("updated_at")
    updated_at = float(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else None
    return StatusChange(conversation_id, status, updated_at)


def typing_intent(payload: dict[str, Any]) -> TypingIntent | None:
    """``conversation_typing_on/off`` by an agent (not on a private note) → a presence intent."""
    typing: TypingEvent | None = parse_typing(payload)
    if typing is None or typing.private or typing.chat is None:
        return None
    return TypingIntent(typing.chat, "composing" if typing.on else "paused")
