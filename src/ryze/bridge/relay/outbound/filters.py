"""Which Chatwoot webhook events become WhatsApp commands (chatwoot-api.md §8, "What the bridge must filter").

Forwarded: ``message_created`` with ``message_type`` outgoing/template, not private, whose
``source_id`` is not one the bridge wrote (``WAID:…``: the bridge's own mirrors of WhatsApp
messages); ``message_updated`` with ``content_attributes.deleted`` (revoke). Everything else —
incoming messages (the bridge created them), private notes (including the bridge's failure notes),
status updates (including the bridge's own PATCHes) — is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ryze.bridge.relay.outbound.shapes import CONVERSATION_EVENTS, as_dict, as_int
from ryze.bridge.relay.source_id import WAID_PREFIX as OWN_SOURCE_PREFIX

# message_types whose messages can become WhatsApp sends (a tuple: `in` must not hash a list or dict)
SENDABLE_MESSAGE_TYPES = ("outgoing", "template")


@dataclass(frozen=True)
class OutboundIntent:
    kind: str  # send | revoke
    chatwoot_message_id: int
    conversation_id: int


def classify(payload: dict[str, Any]) -> OutboundIntent | None:
    event = payload.get("event")
    if event not in ("message_created", "message_updated"):
        return None
    message_id = as_int(payload.get("id"))
    conversation_id = as_int(as_dict(payload.get("conversation")).get("id"))
    if message_id is None or conversation_id is None:
        return None
    if payload.get("private") is not False and payload.get("private") is not None:
        return None  # a private note (or a "private" of another type: not relayed on a guess)
    if payload.get("message_type") not in SENDABLE_MESSAGE_TYPES:
        return None
    source_id = payload.get("source_id")
    attributes = as_dict(payload.get("content_attributes"))
    if event == "message_updated":
        if attributes.get("deleted") is True:
            return OutboundIntent("revoke", message_id, conversation_id)
        return None
    if isinstance(source_id, str) and source_id.startswith(OWN_SOURCE_PREFIX):
        return None
    return OutboundIntent("send", message_id, conversation_id)


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


def typing_state(payload: dict[str, Any]) -> str | None:
    """``conversation_typing_on/off`` by an agent (not on a private note) → WhatsApp presence state."""
    event = payload.get("event")
    if event not in ("conversation_typing_on", "conversation_typing_off") or payload.get("is_private"):
        return None
    return "composing" if event == "conversation_typing_on" else "paused"
