"""Plain text messages."""

from __future__ import annotations

from ryze.bridge.relay.inbound.converters.base import ChatwootDraft
from ryze.bridge.relay.markdown import whatsapp_to_chatwoot
from ryze.protocol import WAMessage


class TextConverter:
    def convert(self, message: WAMessage) -> ChatwootDraft | None:
        text = message.text
        if not text:
            return None
        return ChatwootDraft(content=whatsapp_to_chatwoot(text))
