"""One converter per WhatsApp message type, each a pure function of a ``WAMessage`` to an effect."""

from __future__ import annotations

from ryze.bridge.relay.inbound.converters.actions import EditConverter, ReactionConverter, RevokeConverter
from ryze.bridge.relay.inbound.converters.base import Converter
from ryze.bridge.relay.inbound.converters.media import MediaConverter
from ryze.bridge.relay.inbound.converters.rich import (
    ContactConverter,
    LocationConverter,
    PollConverter,
    UnsupportedConverter,
)
from ryze.bridge.relay.inbound.converters.text import TextConverter
from ryze.bridge.relay.inbound.effects import Effect
from ryze.protocol import MessageType, WAMessage

CONVERTERS: dict[MessageType, Converter] = {
    MessageType.TEXT: TextConverter(),
    MessageType.IMAGE: MediaConverter(MessageType.IMAGE),
    MessageType.VIDEO: MediaConverter(MessageType.VIDEO),
    MessageType.AUDIO: MediaConverter(MessageType.AUDIO),
    MessageType.DOCUMENT: MediaConverter(MessageType.DOCUMENT),
    MessageType.STICKER: MediaConverter(MessageType.STICKER),
    MessageType.LOCATION: LocationConverter(),
    MessageType.CONTACT: ContactConverter(),
    MessageType.POLL: PollConverter(),
    MessageType.REACTION: ReactionConverter(),
    MessageType.EDIT: EditConverter(),
    MessageType.REVOKE: RevokeConverter(),
    MessageType.UNSUPPORTED: UnsupportedConverter(),
}


def convert(message: WAMessage) -> Effect:
    """The effect ``message`` asks for in Chatwoot."""
    converter = CONVERTERS.get(message.type, CONVERTERS[MessageType.UNSUPPORTED])
    return converter.convert(message)


__all__ = ["CONVERTERS", "Converter", "convert"]
