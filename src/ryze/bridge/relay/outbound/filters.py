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
    message_id = payload.get("id")
    conversation = payload.get("conversation") or {}
    conversation_id = conversation.get("id") if isinstance(conversation, dict) else None
    if not isinstance(message_id, int) or not isinstance(conversation_id, int):
        return None
    if payload.get("private"):
        return None
    if payload.get("message_type") not in SENDABLE_MESSAGE_TYPES:
        return None
    source_id = payload.get("source_id")
    attributes = payload.get("content_attributes") or {}
    if event == "message_updated":
        if isinstance(attributes, dict) and attributes.get("deleted"):
            return OutboundIntent("revoke", message_id, conversation_id)
        return None
    if isinstance(source_id, str) and source_id.startswith(OWN_SOURCE_PREFIX):
        return None
    return OutboundIntent("send", message_id, conversation_id)


def conversation_status(payload: dict[str, Any]) -> tuple[int, str] | None:
    """``conversation_*`` events: (display id, status), to keep the resolver's cache current."""
    if payload.get("event") not in (
        "conversation_status_changed",
        "conversation_updated",
        "conversation_created",
    ):
        return None
    conversation_id, status = payload.get("id"), payload.get("status")
    if isinstance(conversation_id, int) and isinstance(status, str):
        return conversation_id, status
    return None


def typing_state(payload: dict[str, Any]) -> str | None:
    """``conversation_typing_on/off`` by an agent (not on a private note) → WhatsApp presence state."""
    event = payload.get("event")
    if event not in ("conversation_typing_on", "conversation_typing_off") or payload.get("is_private"):
        return None
    return "composing" if event == "conversation_typing_on" else "paused"
