"""One converter per outbound intent: typed intent (+ what the worker looked up) → command frames.

Pure functions: no I/O, no clock. The worker resolves what they need from the bridge's store (the
quoted message's WhatsApp id, the WhatsApp parts of a message to revoke, the customer's unread
messages) and hands it in, then sends the frames in order and records their results.

Command ids are stable per Chatwoot message and part (``cw-<integration>-<message id>-<part>``),
so RyzeAPI sends each part at most once however often the job is retried (bridge-protocol.md §3.6).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

from ryze.bridge.relay.markdown import chatwoot_to_whatsapp
from ryze.bridge.relay.outbound.filters import MarkReadIntent, RevokeIntent, SendIntent, TypingIntent
from ryze.bridge.relay.outbound.format import sign
from ryze.bridge.relay.outbound.webhook import AgentAttachment
from ryze.protocol import (
    CommandAction,
    CommandFrame,
    MarkReadParams,
    PresenceParams,
    RevokeParams,
    SendMediaParams,
    SendTextParams,
)

# Chatwoot's Attachment.file_types → WhatsApp media types; everything else goes as a document.
MediaType = Literal["image", "video", "audio", "document"]
_MEDIA_TYPES: dict[str, MediaType] = {"image": "image", "video": "video", "audio": "audio"}
# WhatsApp shows no caption on audio (a voice note or a file): the text is a part of its own.
_NO_CAPTION = ("audio",)


class PermanentFailure(Exception):
    """The job cannot succeed (no target chat, nothing to send, refused by WhatsApp)."""


NO_CHAT = (
    "the conversation has no WhatsApp chat: its contact_inbox source_id is not a WhatsApp JID (an "
    "agent-started conversation) and the contact has no WhatsApp identifier or phone number"
)


def command_id(integration_id: str, chatwoot_message_id: int, part: int, *, kind: str = "send") -> str:
    prefix = "cw" if kind == "send" else f"cw{kind}"
    return f"{prefix}-{integration_id}-{chatwoot_message_id}-{part}"


def _media(
    chat: str, attachment: AgentAttachment, caption: str | None, reply_to: str | None
) -> SendMediaParams:
    return SendMediaParams(
        to=chat,
        mediaType=_MEDIA_TYPES.get(attachment.file_type) or "document",
        url=attachment.data_url,
        mimetype=attachment.content_type or None,
        fileName=attachment.file_name,
        caption=caption,
        isVoice=attachment.is_voice_note,
        replyTo=reply_to,
    )


def send_commands(
    intent: SendIntent,
    *,
    integration_id: str,
    sign_messages: bool,
    reply_to: str | None,
    mark_read: tuple[str, ...] = (),
) -> list[CommandFrame]:
    """An agent's message as ordered parts: its attachments in Chatwoot's order, the text once.

    The text rides as the caption of the first attachment that can carry one; when the first
    attachment is audio (no caption on WhatsApp) the text goes first, as a text part of its own,
    so it is read before what it introduces. The quote (``reply_to``) goes on the first part, the
    read marks of the customer's messages the reply answers (``mark_read``) on the last.
    """
    message = intent.message
    if message.chat is None:
        raise PermanentFailure(NO_CHAT)
    chat = message.chat
    text = chatwoot_to_whatsapp(message.content)
    if sign_messages:
        text = sign(text, message.agent_name)
    parts: list[tuple[CommandAction, SendTextParams | SendMediaParams]] = []
    attachments = message.attachments
    if not attachments:
        if not text.strip():
            raise PermanentFailure("the message has no text and no attachment")
        parts.append((CommandAction.SEND_TEXT, SendTextParams(to=chat, text=text, replyTo=reply_to)))
    else:
        caption: str | None = text if text.strip() else None
        if caption is not None and attachments[0].file_type in _NO_CAPTION:
            parts.append((CommandAction.SEND_TEXT, SendTextParams(to=chat, text=caption, replyTo=reply_to)))
            caption = None
        for attachment in attachments:  # the caption (if still unsent) on the first, then none
            quote = reply_to if not parts else None
            parts.append((CommandAction.SEND_MEDIA, _media(chat, attachment, caption, quote)))
            caption = None
    if mark_read:
        parts[-1][1].markRead = list(mark_read)
    return [
        CommandFrame(
            id=command_id(integration_id, message.id, index),
            action=action,
            params=params.model_dump(exclude_none=True),
        )
        for index, (action, params) in enumerate(parts)
    ]


def revoke_commands(
    intent: RevokeIntent, *, integration_id: str, sent: Sequence[tuple[int, str]]
) -> list[CommandFrame]:
    """Revoke every WhatsApp part (``(part, WhatsApp id)``) the bridge sent for the deleted message."""
    message = intent.message
    if message.chat is None:
        raise PermanentFailure(NO_CHAT)
    return [
        CommandFrame(
            id=command_id(integration_id, message.id, part, kind="revoke"),
            action=CommandAction.REVOKE,
            params=RevokeParams(chat=message.chat, messageId=wa_id).model_dump(),
        )
        for part, wa_id in sent
    ]


def presence_command(intent: TypingIntent, *, integration_id: str) -> CommandFrame:
    """A typing indicator: a fresh id each time (a presence is not idempotent, nor worth replaying)."""
    return CommandFrame(
        id=f"cwpresence-{integration_id}-{uuid.uuid4().hex}",
        action=CommandAction.PRESENCE,
        params=PresenceParams(chat=intent.chat, state=intent.state).model_dump(),
    )


def mark_read_commands(intent: MarkReadIntent, *, integration_id: str) -> list[CommandFrame]:
    """The customer's messages before the agent's reply, marked read (ids per reply: replayable).

    A private chat takes one receipt for all of them. A group's receipt names the author of its
    messages and can only carry one (tulir/whatsmeow receipt.go ``MarkRead``: "once for each
    user"), so a group gets one command per sender, in the order each first wrote.
    """
    if not intent.chat.endswith("@g.us"):
        return [_mark_read(intent, integration_id, 0, intent.message_ids, None)]
    by_sender: dict[str, list[str]] = {}
    for wa_id, sender in zip(intent.message_ids, intent.senders, strict=True):
        if sender:  # a row recorded without its author cannot be marked in a group
            by_sender.setdefault(sender, []).append(wa_id)
    return [
        _mark_read(intent, integration_id, part, tuple(ids), sender)
        for part, (sender, ids) in enumerate(by_sender.items())
    ]


def _mark_read(
    intent: MarkReadIntent, integration_id: str, part: int, ids: tuple[str, ...], sender: str | None
) -> CommandFrame:
    return CommandFrame(
        id=command_id(integration_id, intent.reply_id, part, kind="read"),
        action=CommandAction.MARK_READ,
        params=MarkReadParams(chat=intent.chat, messageIds=list(ids), sender=sender).model_dump(
            exclude_none=True
        ),
    )
