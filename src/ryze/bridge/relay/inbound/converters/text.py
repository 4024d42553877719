"""Plain text messages."""

from __future__ import annotations

from ryze.bridge.relay.inbound.effects import CreateMessage, Effect, Skip
from ryze.bridge.relay.markdown import whatsapp_to_chatwoot
from ryze.protocol import WAMessage


class TextConverter:
    def convert(self, message: WAMessage) -> Effect:
        text = message.text
        if not text:
            return Skip("empty text")
        return CreateMessage(
            content=whatsapp_to_chatwoot(text), reply_to=message.replyTo, quote=message.quotedText
        )
