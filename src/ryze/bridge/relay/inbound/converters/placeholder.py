"""Types not yet rendered richly: a short text placeholder (the rich-message work replaces these)."""

from __future__ import annotations

from ryze.bridge.relay.inbound.converters.base import ChatwootDraft, Converter
from ryze.bridge.relay.markdown import whatsapp_to_chatwoot
from ryze.protocol import MessageType, WAMessage


class MediaPlaceholder:
    def __init__(self, label: str) -> None:
        self.label = label

    def convert(self, message: WAMessage) -> ChatwootDraft | None:
        name = message.media.fileName if message.media and message.media.fileName else ""
        head = f"[{self.label}{': ' + name if name else ''}]"
        caption = message.text
        return ChatwootDraft(content=f"{head}\n{whatsapp_to_chatwoot(caption)}" if caption else head)


class LocationPlaceholder:
    def convert(self, message: WAMessage) -> ChatwootDraft | None:
        loc = message.location
        if loc is None:
            return ChatwootDraft(content="[location]")
        lines = ["[location]"]
        if loc.name:
            lines.append(loc.name)
        if loc.address:
            lines.append(loc.address)
        lines.append(f"https://maps.google.com/?q={loc.latitude},{loc.longitude}")
        return ChatwootDraft(content="\n".join(lines))


class ContactPlaceholder:
    def convert(self, message: WAMessage) -> ChatwootDraft | None:
        cards = message.contacts or []
        lines = ["[contact]"]
        for card in cards:
            phones = ", ".join(card.phones)
            lines.append(f"{card.displayName}{' — ' + phones if phones else ''}")
        return ChatwootDraft(content="\n".join(lines))


class ReactionPlaceholder:
    def convert(self, message: WAMessage) -> ChatwootDraft | None:
        if message.reaction is None or not message.reaction.emoji:
            return None  # a removed reaction has nothing to show
        return ChatwootDraft(content=message.reaction.emoji)


class EditPlaceholder:
    def convert(self, message: WAMessage) -> ChatwootDraft | None:
        if message.edit is None:
            return None
        return ChatwootDraft(content=f"[edited] {whatsapp_to_chatwoot(message.edit.text)}")


class RevokePlaceholder:
    def convert(self, message: WAMessage) -> ChatwootDraft | None:
        return ChatwootDraft(content="[message deleted]")


class UnsupportedPlaceholder:
    def convert(self, message: WAMessage) -> ChatwootDraft | None:
        return ChatwootDraft(content="[unsupported WhatsApp message]")


PLACEHOLDER_CONVERTERS: dict[MessageType, Converter] = {
    MessageType.IMAGE: MediaPlaceholder("image"),
    MessageType.VIDEO: MediaPlaceholder("video"),
    MessageType.AUDIO: MediaPlaceholder("audio"),
    MessageType.DOCUMENT: MediaPlaceholder("document"),
    MessageType.STICKER: MediaPlaceholder("sticker"),
    MessageType.LOCATION: LocationPlaceholder(),
    MessageType.CONTACT: ContactPlaceholder(),
    MessageType.REACTION: ReactionPlaceholder(),
    MessageType.EDIT: EditPlaceholder(),
    MessageType.REVOKE: RevokePlaceholder(),
    MessageType.UNSUPPORTED: UnsupportedPlaceholder(),
}
