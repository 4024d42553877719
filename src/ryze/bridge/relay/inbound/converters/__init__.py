"""One converter per WhatsApp message type, each turning a ``WAMessage`` into a Chatwoot draft."""

from __future__ import annotations

from ryze.bridge.relay.inbound.converters.base import ChatwootDraft, Converter
from ryze.bridge.relay.inbound.converters.placeholder import PLACEHOLDER_CONVERTERS
from ryze.bridge.relay.inbound.converters.text import TextConverter
from ryze.protocol import MessageType, WAMessage

CONVERTERS: dict[MessageType, Converter] = {MessageType.TEXT: TextConverter(), **PLACEHOLDER_CONVERTERS}


def convert(message: WAMessage) -> ChatwootDraft | None:
    """The Chatwoot message for ``message``, or None when it has nothing to show."""
    converter = CONVERTERS.get(message.type, CONVERTERS[MessageType.UNSUPPORTED])
    return converter.convert(message)


__all__ = ["CONVERTERS", "ChatwootDraft", "Converter", "convert"]
