"""A Chatwoot message webhook, parsed once into the typed model the outbound side works with.

The receiver checks the payload's field types first (``shapes.problem``); this module reads the
fields the bridge acts on into frozen dataclasses, so classification, the converters and the worker
never touch ``dict[str, Any]``. The same parser reads a stored job's payload (jobs keep Chatwoot's
raw body, so a job written by an older bridge is read the same way), and uses the ``as_*`` readers,
so a field of another type reads as absent rather than misread.

Chatwoot's shapes: ``Message#webhook_data`` (app/models/message.rb), ``Attachment#push_event_data``
(app/models/attachment.rb), ``Conversation#webhook_data`` (chatwoot-api.md §8).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse

from ryze.bridge.relay.outbound.format import agent_name
from ryze.bridge.relay.outbound.shapes import as_dict, as_int, as_str

# The JID servers a WhatsApp chat can live on: a phone-number user, a LID user, a group.
_JID_SERVERS = ("@s.whatsapp.net", "@lid", "@g.us")


def is_whatsapp_jid(value: object) -> bool:
    if not isinstance(value, str) or "@" not in value:
        return False
    user, _, server = value.partition("@")
    return bool(user) and ("@" + server) in _JID_SERVERS


def whatsapp_target(contact_inbox: dict[str, Any], contact: dict[str, Any]) -> str | None:
    """The WhatsApp chat of a Chatwoot conversation, from its contact inbox and contact.

    ``source_id`` is the chat's JID when the bridge created the contact inbox, but when an agent
    starts a conversation with a contact that has no contact inbox in our inbox, Chatwoot makes one
    with ``source_id = SecureRandom.uuid`` (app/services/contacts/contactable_inboxes_service.rb):
    such a source is no WhatsApp address. Then the contact's identifier (a JID, as the bridge sets
    it), else its phone number (E.164, validated by Chatwoot's Contact model).
    """
    source_id = contact_inbox.get("source_id")
    if is_whatsapp_jid(source_id):
        return str(source_id)
    identifier = contact.get("identifier")
    if is_whatsapp_jid(identifier):
        return str(identifier)
    phone = contact.get("phone_number")
    if isinstance(phone, str) and phone.startswith("+") and phone[1:].isdigit() and len(phone) > 2:
        return phone[1:] + "@s.whatsapp.net"
    return None


def target_chat(payload: dict[str, Any]) -> str | None:
    """The WhatsApp chat of a message or typing webhook's conversation (None: it has none)."""
    conversation = as_dict(payload.get("conversation"))
    contact_inbox = as_dict(conversation.get("contact_inbox"))
    sender = as_dict(as_dict(conversation.get("meta")).get("sender"))
    return whatsapp_target(contact_inbox, sender)


def file_name_of(url: str) -> str | None:
    """The file name at the end of a ``data_url`` (Rails' redirect URL ends with the blob's name)."""
    path = urlparse(url).path
    name = unquote(path.rsplit("/", 1)[-1]) if path else ""
    return name or None


@dataclass(frozen=True, slots=True)
class AgentAttachment:
    """One ``attachments[]`` item that has a file to send (a ``data_url``)."""

    data_url: str
    file_type: str  # image | video | audio | file | … (Attachment.file_types)
    content_type: str  # "" when Chatwoot sent none (older versions)
    extension: str  # lower case, "" when absent (then taken from the URL's file name)
    recorded: bool  # meta.is_recorded_audio / is_voice_message, where a fork or version sends it
    file_name: str | None

    @property
    def is_voice_note(self) -> bool:
        """Send this audio as a WhatsApp voice note (PTT)?

        Chatwoot's webhook attachment (``Attachment#push_event_data``) has no ``meta`` key, so the
        ``is_recorded_audio`` flag an upload may carry is never seen; what is there is
        ``file_type``, ``content_type``, ``extension`` and the ``data_url``. An OGG/Opus audio is
        what a voice note is on WhatsApp, so it goes as one; other audio (the MP3 the dashboard
        records for API inboxes, say) goes as an audio file, which WhatsApp plays everywhere. A
        ``meta`` flag, where sent, makes it a voice note whatever its format: RyzeAPI then
        converts it to OGG/Opus (``ryze.api.services.voice``).
        """
        if self.file_type != "audio":
            return False
        if self.recorded:
            return True
        if self.content_type.split(";", 1)[0].strip().lower() in ("audio/ogg", "audio/opus"):
            return True
        extension = self.extension
        if not extension and self.file_name and "." in self.file_name:
            extension = self.file_name.rsplit(".", 1)[1].lower()
        return extension in ("ogg", "oga", "opus")


@dataclass(frozen=True, slots=True)
class AgentMessage:
    """A ``message_created`` / ``message_updated`` webhook, as far as the bridge acts on it."""

    event: str
    id: int
    conversation_id: int
    chat: str | None  # the WhatsApp chat; None when the conversation has none
    message_type: str | None
    private: bool  # a private note; also True for a "private" of another type (never relayed on a guess)
    source_id: str | None
    content: str
    deleted: bool  # content_attributes.deleted is true
    in_reply_to: int | None  # content_attributes.in_reply_to: the quoted Chatwoot message
    in_reply_to_external_id: str | None  # its source_id, as Chatwoot fills it
    agent_name: str | None  # the sender's name when a person or bot sent it
    attachments: tuple[AgentAttachment, ...]
    # Chatwoot's creation time (unix seconds, Chatwoot's clock); None when absent or unreadable
    created_at: float | None = None
    # the message's status where the payload carries one: a webhook does not, the catch-up sweep's
    # rebuilt one does ("failed": the worker PATCHes it to sent once it is out)
    status: str | None = None


def iso_seconds(value: object) -> float | None:
    """``Message#webhook_data``'s ``created_at``: Rails encodes a time as ISO 8601 with
    milliseconds (``ActiveSupport::JSON::Encoding.time_precision`` = 3, "2026-12-04T21:40:29.123Z",
    or with an offset in another ``config.time_zone``); unix seconds, or None when unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def attachment_of(item: dict[str, Any]) -> AgentAttachment | None:
    url = as_str(item.get("data_url"))
    if not url:
        return None
    meta = as_dict(item.get("meta"))
    return AgentAttachment(
        data_url=url,
        file_type=as_str(item.get("file_type")) or "file",
        content_type=as_str(item.get("content_type")) or "",
        extension=(as_str(item.get("extension")) or "").lower(),
        recorded=meta.get("is_voice_message") is True or meta.get("is_recorded_audio") is True,
        file_name=file_name_of(url),
    )


def parse_message(payload: dict[str, Any]) -> AgentMessage | None:
    """The typed message of a message webhook; None for another event or one without ids."""
    event = payload.get("event")
    if event not in ("message_created", "message_updated"):
        return None
    message_id = as_int(payload.get("id"))
    conversation_id = as_int(as_dict(payload.get("conversation")).get("id"))
    if message_id is None or conversation_id is None:
        return None
    private = payload.get("private")
    attributes = as_dict(payload.get("content_attributes"))
    listed = payload.get("attachments")
    items = listed if isinstance(listed, list) else []
    attachments = tuple(a for a in (attachment_of(i) for i in items if isinstance(i, dict)) if a is not None)
    return AgentMessage(
        event=str(event),
        id=message_id,
        conversation_id=conversation_id,
        chat=target_chat(payload),
        message_type=as_str(payload.get("message_type")),
        private=private is not False and private is not None,
        source_id=as_str(payload.get("source_id")),
        content=as_str(payload.get("content")) or "",
        deleted=attributes.get("deleted") is True,
        in_reply_to=as_int(attributes.get("in_reply_to")),  # `true` is not message 1
        in_reply_to_external_id=as_str(attributes.get("in_reply_to_external_id")),
        agent_name=agent_name(payload),
        attachments=attachments,
        created_at=iso_seconds(payload.get("created_at")),
        status=as_str(payload.get("status")),
    )


@dataclass(frozen=True, slots=True)
class TypingEvent:
    """``conversation_typing_on/off``: who is typing where."""

    chat: str | None
    on: bool
    private: bool  # typing a private note: nothing for the customer to see


def parse_typing(payload: dict[str, Any]) -> TypingEvent | None:
    event = payload.get("event")
    if event not in ("conversation_typing_on", "conversation_typing_off"):
        return None
    return TypingEvent(
        chat=target_chat(payload),
        on=event == "conversation_typing_on",
        private=payload.get("is_private") is True,
    )
