"""whatsmeow ``events.Message`` → ``WhatsAppMessage``: one small function per message type.

whatsmeow already unwraps the ephemeral / view-once / document-with-caption / edit wrappers and
flags them on the event (``IsEphemeral``, ``IsViewOnce*``, ``IsEdit``); ``_unwrap`` still peels
them so a message built by hand (tests, history) translates the same.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ryze.engines.base import Contact, Location, Media, MediaKind, MessageKind, Poll, WhatsAppMessage
from ryze.engines.neonize._neonize import wa
from ryze.engines.neonize.translate.jids import STATUS_BROADCAST, jid_str, source_parties, timestamp

# FutureProofMessage wrappers, outermost first. view-once ones also mark the message.
_WRAPPERS = (
    ("ephemeralMessage", False),
    ("viewOnceMessage", True),
    ("viewOnceMessageV2", True),
    ("viewOnceMessageV2Extension", True),
    ("documentWithCaptionMessage", False),
    ("editedMessage", False),
)


@dataclass(frozen=True, slots=True)
class _Body:
    """What one message type contributes; the envelope (ids, parties, time) is added later."""

    kind: MessageKind
    text: str = ""
    media: Media | None = None
    location: Location | None = None
    contacts: tuple[Contact, ...] = ()
    poll: Poll | None = None
    target_id: str | None = None
    emoji: str | None = None
    context: Any = None  # ContextInfo of the content (quote, forwarded)
    view_once: bool = False


def translate_message(event: Any) -> WhatsAppMessage | None:
    """``None`` for traffic that is not a chat message (status updates, key distribution,
    history-sync notifications and other protocol messages)."""
    info = event.Info
    source = info.MessageSource
    chat_jid = jid_str(source.Chat)
    if not chat_jid or chat_jid == STATUS_BROADCAST:
        return None
    content, wrapped_view_once = _unwrap(event.Message)
    body = translate_content(content)
    if body is None:
        return None
    chat, sender = source_parties(source, info.Pushname, _verified_name(info))
    context = body.context
    quoted = context.stanzaID if context is not None and context.stanzaID else None
    quoted_text = _quoted_text(context) if quoted else None
    return WhatsAppMessage(
        id=info.ID,
        chat=chat,
        sender=sender,
        from_me=bool(source.IsFromMe),
        timestamp=timestamp(info.Timestamp),
        kind=body.kind,
        is_group=bool(source.IsGroup),
        text=body.text,
        media=body.media,
        location=body.location,
        contacts=body.contacts,
        poll=body.poll,
        reply_to=quoted,
        quoted_text=quoted_text,
        target_id=body.target_id,
        emoji=body.emoji,
        forwarded=bool(context is not None and context.isForwarded),
        view_once=bool(
            wrapped_view_once
            or body.view_once
            or event.IsViewOnce
            or event.IsViewOnceV2
            or event.IsViewOnceV2Extension
        ),
    )


def _quoted_text(context: Any) -> str | None:
    """The text (or caption) of the message a reply quotes, from the copy WhatsApp puts in the
    reply's ``contextInfo.quotedMessage``; None when there is none to show."""
    if not context.HasField("quotedMessage"):
        return None
    quoted, _ = _unwrap(context.quotedMessage)
    body = translate_content(quoted)
    return body.text if body is not None and body.text else None


def _verified_name(info: Any) -> str:
    """A business sender's verified name: whatsmeow fills ``MessageInfo.VerifiedName`` from the
    message's ``verified_name`` certificate (``message.go``, ``parseMessageInfo``); its details
    carry the name (``VerifiedNameCertificate.Details.verifiedName``)."""
    if not info.HasField("VerifiedName") or not info.VerifiedName.HasField("Details"):
        return ""
    return str(info.VerifiedName.Details.verifiedName or "")


def with_saved_name(message: WhatsAppMessage, saved: str | None) -> WhatsAppMessage:
    """A private incoming message with the name our phone book has for its sender (the session
    reads it from whatsmeow's contact store: message events carry only the push name)."""
    if not saved or message.is_group or message.from_me:
        return message
    sender = dataclasses.replace(message.sender, saved_name=saved)
    chat = sender if message.chat.jid == message.sender.jid else message.chat
    return dataclasses.replace(message, chat=chat, sender=sender)


def with_group_subject(message: WhatsAppMessage, subject: str | None) -> WhatsAppMessage:
    """A group message with its chat named after the group's subject (whatsmeow's message events
    carry none: the session knows it from group events or a group-info lookup)."""
    if subject is None or not message.is_group or message.chat.name == subject:
        return message
    return dataclasses.replace(message, chat=dataclasses.replace(message.chat, name=subject))


def _unwrap(message: Any) -> tuple[Any, bool]:
    view_once = False
    for _ in range(8):  # wrappers nest at most a few levels; bound the loop anyway
        for field, marks_view_once in _WRAPPERS:
            if message.HasField(field) and getattr(message, field).HasField("message"):
                message = getattr(message, field).message
                view_once = view_once or marks_view_once
                break
        else:
            return message, view_once
    return message, view_once


def translate_content(message: Any) -> _Body | None:
    """The body of an already unwrapped ``waE2E.Message``."""
    for field, handler in _HANDLERS:
        if message.HasField(field):
            return handler(getattr(message, field))
    if _has_any_content(message):
        return _Body(kind="unsupported")
    return None


# --- one function per type ----------------------------------------------------------------------


def _conversation(text: str) -> _Body:
    return _Body(kind="text", text=text)


def _extended_text(msg: Any) -> _Body:
    return _Body(kind="text", text=msg.text, context=_context(msg))


def _image(msg: Any) -> _Body:
    return _Body(
        kind="image",
        text=msg.caption,
        media=_media("image", msg, "imageMessage"),
        context=_context(msg),
        view_once=msg.viewOnce,
    )


def _video(msg: Any) -> _Body:
    # A GIF is an mp4 with ``gifPlayback`` set: WhatsApp plays it looped and muted.
    return _Body(
        kind="video",
        text=msg.caption,
        media=_media("video", msg, "videoMessage", seconds=msg.seconds, gif=msg.gifPlayback),
        context=_context(msg),
        view_once=msg.viewOnce,
    )


def _ptv(msg: Any) -> _Body:
    # A round "video note". Stored as a videoMessage so whatsmeow's DownloadAny recognises it.
    return _Body(
        kind="video",
        text=msg.caption,
        media=_media("ptv", msg, "videoMessage", seconds=msg.seconds),
        context=_context(msg),
        view_once=msg.viewOnce,
    )


def _audio(msg: Any) -> _Body:
    kind: MediaKind = "ptt" if msg.PTT else "audio"
    return _Body(
        kind="audio",
        media=_media(kind, msg, "audioMessage", seconds=msg.seconds),
        context=_context(msg),
        view_once=msg.viewOnce,
    )


def _document(msg: Any) -> _Body:
    return _Body(
        kind="document",
        text=msg.caption,
        media=_media("document", msg, "documentMessage", file_name=msg.fileName or msg.title or None),
        context=_context(msg),
    )


def _sticker(msg: Any) -> _Body:
    return _Body(kind="sticker", media=_media("sticker", msg, "stickerMessage"), context=_context(msg))


def _location(msg: Any) -> _Body:
    return _Body(
        kind="location",
        location=Location(
            latitude=msg.degreesLatitude,
            longitude=msg.degreesLongitude,
            name=msg.name or None,
            address=msg.address or None,
        ),
        context=_context(msg),
    )


def _live_location(msg: Any) -> _Body:
    # A share's first position and each later one arrive as a LiveLocationMessage of their own
    # (WAWebProtobufsE2E.proto: sequenceNumber grows with each); the bridge ties an update to its
    # share by chat and sender. No field says the share stopped, so ``ended`` stays False here.
    return _Body(
        kind="location",
        text=msg.caption,
        location=Location(
            latitude=msg.degreesLatitude,
            longitude=msg.degreesLongitude,
            live=True,
            sequence=int(msg.sequenceNumber),
        ),
        context=_context(msg),
    )


def _poll(msg: Any) -> _Body:
    # PollCreationMessage (V1 for 1:1 chats, V2 in groups, V3+ single-choice / newer clients):
    # the question and options are clear text; votes (pollUpdateMessage) are encrypted per voter.
    return _Body(
        kind="poll",
        poll=Poll(
            name=msg.name,
            options=tuple(o.optionName for o in msg.options),
            selectable_count=msg.selectableOptionsCount,
        ),
        context=_context(msg),
    )


def _contact(msg: Any) -> _Body:
    return _Body(kind="contact", contacts=(_one_contact(msg),), context=_context(msg))


def _contacts_array(msg: Any) -> _Body:
    return _Body(
        kind="contact",
        text=msg.displayName,
        contacts=tuple(_one_contact(c) for c in msg.contacts),
        context=_context(msg),
    )


def _reaction(msg: Any) -> _Body:
    return _Body(kind="reaction", target_id=msg.key.ID, emoji=msg.text)


def _protocol(msg: Any) -> _Body | None:
    if msg.type == wa.ProtocolMessage.REVOKE:
        return _Body(kind="revoke", target_id=msg.key.ID)
    if msg.type == wa.ProtocolMessage.MESSAGE_EDIT:
        edited, _ = _unwrap(msg.editedMessage)
        new = translate_content(edited)
        return _Body(kind="edit", target_id=msg.key.ID, text=new.text if new is not None else "")
    return None  # history sync, app-state keys, ephemeral settings …: not chat messages


def _poll_vote(_vote: Any) -> None:
    """A vote on a poll (also a vote changed or withdrawn) is no chat message of its own: it is
    encrypted per voter (whatsmeow's ``DecryptPollVote``) and updates the poll on the phone. Taken
    for an unknown message, every vote would show in Chatwoot as "a message that cannot be shown"."""
    return None


_HANDLERS: tuple[tuple[str, Callable[[Any], _Body | None]], ...] = (
    ("protocolMessage", _protocol),
    ("pollUpdateMessage", _poll_vote),
    ("reactionMessage", _reaction),
    ("conversation", _conversation),
    ("extendedTextMessage", _extended_text),
    ("imageMessage", _image),
    ("videoMessage", _video),
    ("ptvMessage", _ptv),
    ("audioMessage", _audio),
    ("documentMessage", _document),
    ("stickerMessage", _sticker),
    ("locationMessage", _location),
    ("liveLocationMessage", _live_location),
    ("contactMessage", _contact),
    ("contactsArrayMessage", _contacts_array),
    ("pollCreationMessage", _poll),
    ("pollCreationMessageV2", _poll),
    ("pollCreationMessageV3", _poll),
    ("pollCreationMessageV5", _poll),
    ("pollCreationMessageV6", _poll),
)

# Fields that ride along with real content but are not content themselves.
_NOT_CONTENT = frozenset({"messageContextInfo", "senderKeyDistributionMessage"})


def _has_any_content(message: Any) -> bool:
    return any(field.name not in _NOT_CONTENT for field, _ in message.ListFields())


# --- helpers ----------------------------------------------------------------------------------


def _context(msg: Any) -> Any:
    return msg.contextInfo if msg.HasField("contextInfo") else None


def _media(
    kind: MediaKind,
    msg: Any,
    field: str,
    *,
    seconds: int = 0,
    file_name: str | None = None,
    gif: bool = False,
) -> Media:
    # The handle is the media sub-message alone (URL, direct path, keys, hashes): exactly what
    # whatsmeow's DownloadAny needs later. The quoted message inside contextInfo is dropped to
    # keep stored handles small.
    holder = wa.Message()
    sub = getattr(holder, field)
    sub.CopyFrom(msg)
    sub.ClearField("contextInfo")
    return Media(
        kind=kind,
        mimetype=msg.mimetype or _DEFAULT_MIME[kind],
        file_name=file_name,
        size=msg.fileLength or None,
        seconds=seconds or None,
        gif=bool(gif),
        handle=holder.SerializeToString(),
    )


_DEFAULT_MIME: dict[MediaKind, str] = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "ptv": "video/mp4",
    "audio": "audio/mpeg",
    "ptt": "audio/ogg; codecs=opus",
    "document": "application/octet-stream",
    "sticker": "image/webp",
}

_WAID = re.compile(r"waid=(\d+)", re.IGNORECASE)


def _one_contact(msg: Any) -> Contact:
    return Contact(display_name=msg.displayName, vcard=msg.vcard, phones=vcard_phones(msg.vcard))


def vcard_phones(vcard: str) -> tuple[str, ...]:
    """Phone numbers (digits only) of the TEL lines; the ``waid`` parameter wins when present."""
    phones: list[str] = []
    for line in vcard.splitlines():
        name = line.split(":", 1)[0].upper()
        if not (name.startswith("TEL") or ".TEL" in name) or ":" not in line:
            continue
        waid = _WAID.search(line)
        digits = waid.group(1) if waid else re.sub(r"\D", "", line.rsplit(":", 1)[1])
        if digits and digits not in phones:
            phones.append(digits)
    return tuple(phones)
