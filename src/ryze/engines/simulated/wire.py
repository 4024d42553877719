"""The simulated network on neonize's wire (``SIMULATOR_WIRE=neonize``).

Every domain event the simulated network produces is encoded as the protobuf whatsmeow hands
neonize (``Neonize.Message`` with its ``waE2E.Message``, ``Neonize.Receipt``, ``JoinedGroup``,
``GroupInfoEvent``) and translated back by the neonize engine's own translators
(``ryze.engines.neonize.translate``). Tests of the relay then run on events produced by the neonize
translation, byte for byte what a real session would report for the same traffic, without a
WhatsApp connection. Where neonize carries less than the simulated network knows, the wire wins
(that is the point): a sticker's or an audio's caption, an image's file name, a plain location's
text and an unsupported message's text are dropped; a group's creation time keeps neonize's 32-bit
float precision; a group change's participants lose their names and alternate ids.

Importing this module loads neonize (and its Go runtime): only ``SimulatedEngine(wire="neonize")``
does, lazily.
"""

from __future__ import annotations

from typing import Any

from ryze.engines.base import DomainEvent, GroupEvent, MessageEvent, Party, ReceiptEvent, WhatsAppMessage
from ryze.engines.neonize._neonize import MessageKey, pb, wa
from ryze.engines.neonize.translate import (
    translate_group_info,
    translate_joined_group,
    translate_message,
    translate_receipt,
)
from ryze.engines.neonize.translate.jids import parse_jid
from ryze.engines.neonize.translate.messages import with_group_subject
from ryze.engines.neonize.translate.receipts import RECEIPT_KINDS, UNSET

# Receipt kinds back to neonize's encoding, slips included (translate/receipts.py): played-self
# travels as SERVER_ERROR and a server error as no type at all.
_RECEIPT_TYPES: dict[str, int] = {
    kind: code for code, kind in RECEIPT_KINDS.items() if code not in (pb.Receipt.PLAYED_SELF,)
}


def roundtrip(event: DomainEvent) -> DomainEvent | None:
    """``event`` as the neonize engine would report it (None: the neonize engine reports nothing)."""
    if isinstance(event, MessageEvent):
        translated = translate_message(encode_message(event.message))
        if translated is None:
            return None
        translated = with_group_subject(
            translated, event.message.chat.name if event.message.is_group else None
        )
        return MessageEvent(message=translated, origin=event.origin)
    if isinstance(event, ReceiptEvent):
        return translate_receipt(encode_receipt(event))
    if isinstance(event, GroupEvent):
        return _roundtrip_group(event)
    return event


def media_handle(message: WhatsAppMessage) -> bytes | None:
    """The handle the neonize translation gives ``message``'s media (to alias the blob store)."""
    translated = translate_message(encode_message(message))
    return translated.media.handle if translated is not None and translated.media is not None else None


# --- messages -----------------------------------------------------------------------------------


def encode_message(msg: WhatsAppMessage) -> Any:
    """The ``Neonize.Message`` whatsmeow would deliver for ``msg``."""
    source = pb.MessageSource(
        Chat=_jid(msg.chat.jid), Sender=_jid(msg.sender.jid), IsFromMe=msg.from_me, IsGroup=msg.is_group
    )
    if msg.sender.alt:
        source.SenderAlt.CopyFrom(_jid(msg.sender.alt))
    if msg.from_me and not msg.is_group and msg.chat.alt:
        source.RecipientAlt.CopyFrom(_jid(msg.chat.alt))
    info = pb.MessageInfo(
        ID=msg.id,
        Timestamp=int(msg.timestamp.timestamp() * 1000),
        Pushname=msg.sender.name or "",
        MessageSource=source,
    )
    if msg.sender.business_name:  # as whatsmeow decodes a business sender's verified_name
        info.VerifiedName.Details.verifiedName = msg.sender.business_name
    return pb.Message(Info=info, Message=encode_content(msg))


def encode_content(msg: WhatsAppMessage) -> Any:
    """The ``waE2E.Message`` for ``msg``'s content (one builder per kind)."""
    context = _context(msg)
    content = _BUILDERS[msg.kind](msg, context)
    if msg.view_once and msg.kind in ("image", "video", "audio", "document", "sticker"):
        return wa.Message(viewOnceMessageV2=wa.FutureProofMessage(message=content))
    return content


def _context(msg: WhatsAppMessage) -> Any | None:
    if not msg.reply_to and not msg.forwarded:
        return None
    context = wa.ContextInfo()
    if msg.reply_to:
        context.stanzaID = msg.reply_to
        context.quotedMessage.CopyFrom(wa.Message(conversation=msg.quoted_text or ""))
    if msg.forwarded:
        context.isForwarded = True
    return context


def _text(msg: WhatsAppMessage, context: Any | None) -> Any:
    if context is None:
        return wa.Message(conversation=msg.text)
    return wa.Message(extendedTextMessage=wa.ExtendedTextMessage(text=msg.text, contextInfo=context))


def _media_fields(msg: WhatsAppMessage, context: Any | None) -> dict[str, Any]:
    media = msg.media
    fields: dict[str, Any] = {}
    if media is not None:
        path = "/sim/" + media.handle.decode(errors="replace")
        fields = {
            "URL": "https://mmg.simulated.invalid" + path,
            "directPath": path,
            "mimetype": media.mimetype,
        }
        if media.size:
            fields["fileLength"] = media.size
    if context is not None:
        fields["contextInfo"] = context
    return fields


def _seconds(msg: WhatsAppMessage) -> dict[str, int]:
    return {"seconds": msg.media.seconds} if msg.media is not None and msg.media.seconds else {}


def _image(msg: WhatsAppMessage, context: Any | None) -> Any:
    return wa.Message(imageMessage=wa.ImageMessage(caption=msg.text or None, **_media_fields(msg, context)))


def _video(msg: WhatsAppMessage, context: Any | None) -> Any:
    fields = {**_media_fields(msg, context), **_seconds(msg)}
    if msg.media is not None and msg.media.kind == "ptv":
        return wa.Message(ptvMessage=wa.VideoMessage(caption=msg.text or None, **fields))
    gif = bool(msg.media is not None and msg.media.gif)
    return wa.Message(videoMessage=wa.VideoMessage(caption=msg.text or None, gifPlayback=gif, **fields))


def _audio(msg: WhatsAppMessage, context: Any | None) -> Any:
    ptt = msg.media is not None and msg.media.kind == "ptt"
    return wa.Message(audioMessage=wa.AudioMessage(PTT=ptt, **_media_fields(msg, context), **_seconds(msg)))


def _document(msg: WhatsAppMessage, context: Any | None) -> Any:
    name = msg.media.file_name if msg.media is not None else None
    return wa.Message(
        documentMessage=wa.DocumentMessage(
            fileName=name, caption=msg.text or None, **_media_fields(msg, context)
        )
    )


def _sticker(msg: WhatsAppMessage, context: Any | None) -> Any:
    return wa.Message(stickerMessage=wa.StickerMessage(**_media_fields(msg, context)))


def _location(msg: WhatsAppMessage, context: Any | None) -> Any:
    loc = msg.location
    lat, lon = (loc.latitude, loc.longitude) if loc is not None else (0.0, 0.0)
    extra = {"contextInfo": context} if context is not None else {}
    if loc is not None and loc.live:
        return wa.Message(
            liveLocationMessage=wa.LiveLocationMessage(
                degreesLatitude=lat,
                degreesLongitude=lon,
                caption=msg.text or None,
                sequenceNumber=loc.sequence or None,
                **extra,
            )
        )
    return wa.Message(
        locationMessage=wa.LocationMessage(
            degreesLatitude=lat,
            degreesLongitude=lon,
            name=loc.name if loc is not None else None,
            address=loc.address if loc is not None else None,
            **extra,
        )
    )


def _contact(msg: WhatsAppMessage, context: Any | None) -> Any:
    extra = {"contextInfo": context} if context is not None else {}
    cards = [wa.ContactMessage(displayName=c.display_name, vcard=c.vcard) for c in msg.contacts]
    if len(cards) == 1:
        card = cards[0]
        if context is not None:
            card.contextInfo.CopyFrom(context)
        return wa.Message(contactMessage=card)
    return wa.Message(
        contactsArrayMessage=wa.ContactsArrayMessage(displayName=msg.text, contacts=cards, **extra)
    )


def _reaction(msg: WhatsAppMessage, _context: Any | None) -> Any:
    key = MessageKey(remoteJID=msg.chat.jid, ID=msg.target_id or "")
    return wa.Message(reactionMessage=wa.ReactionMessage(key=key, text=msg.emoji or ""))


def _edit(msg: WhatsAppMessage, _context: Any | None) -> Any:
    key = MessageKey(remoteJID=msg.chat.jid, fromMe=msg.from_me, ID=msg.target_id or "")
    return wa.Message(
        protocolMessage=wa.ProtocolMessage(
            type=wa.ProtocolMessage.MESSAGE_EDIT, key=key, editedMessage=wa.Message(conversation=msg.text)
        )
    )


def _revoke(msg: WhatsAppMessage, _context: Any | None) -> Any:
    key = MessageKey(remoteJID=msg.chat.jid, fromMe=msg.from_me, ID=msg.target_id or "")
    return wa.Message(protocolMessage=wa.ProtocolMessage(type=wa.ProtocolMessage.REVOKE, key=key))


def _poll(msg: WhatsAppMessage, context: Any | None) -> Any:
    poll = msg.poll
    extra = {"contextInfo": context} if context is not None else {}
    return wa.Message(
        pollCreationMessage=wa.PollCreationMessage(
            name=poll.name if poll is not None else msg.text,
            options=[wa.PollCreationMessage.Option(optionName=o) for o in (poll.options if poll else ())],
            selectableOptionsCount=poll.selectable_count if poll is not None else 1,
            **extra,
        )
    )


def _unsupported(msg: WhatsAppMessage, _context: Any | None) -> Any:
    # Something with content that no translator renders (a calendar event): kind "unsupported".
    return wa.Message(eventMessage=wa.EventMessage(name=msg.text or "event"))


_BUILDERS = {
    "text": _text,
    "image": _image,
    "video": _video,
    "audio": _audio,
    "document": _document,
    "sticker": _sticker,
    "location": _location,
    "contact": _contact,
    "reaction": _reaction,
    "edit": _edit,
    "revoke": _revoke,
    "poll": _poll,
    "unsupported": _unsupported,
}


# --- receipts and groups ------------------------------------------------------------------------


def encode_receipt(receipt: ReceiptEvent) -> Any:
    group = receipt.chat.jid.endswith("@g.us")
    source = pb.MessageSource(Chat=_jid(receipt.chat.jid), Sender=_jid(receipt.sender.jid), IsGroup=group)
    if receipt.sender.alt:
        source.SenderAlt.CopyFrom(_jid(receipt.sender.alt))
    out = pb.Receipt(
        MessageSource=source,
        MessageIDs=list(receipt.message_ids),
        Timestamp=int(receipt.timestamp.timestamp() * 1000),
    )
    code = _RECEIPT_TYPES[receipt.kind]
    if code != UNSET:
        out.Type = code
    return out


def encode_group(event: GroupEvent) -> Any:
    """``JoinedGroup`` for a create, else a ``GroupInfoEvent`` carrying the one change."""
    if event.action == "create":
        info = pb.GroupInfo(
            JID=_jid(event.chat.jid),
            GroupCreated=event.timestamp.timestamp(),
            Participants=[_participant(p) for p in event.participants],
        )
        if event.subject:
            info.GroupName.CopyFrom(pb.GroupName(Name=event.subject))
        if event.topic:
            info.GroupTopic.CopyFrom(pb.GroupTopic(Topic=event.topic))
        joined = pb.JoinedGroup(Type="new", GroupInfo=info)
        if event.actor is not None:
            joined.Sender.CopyFrom(_jid(event.actor.jid))
            if event.actor.alt:
                joined.SenderPN.CopyFrom(_jid(event.actor.alt))
        return joined
    out = pb.GroupInfoEvent(JID=_jid(event.chat.jid), Timestamp=int(event.timestamp.timestamp() * 1000))
    if event.actor is not None:
        out.Sender.CopyFrom(_jid(event.actor.jid))
    members = [_jid(p.jid) for p in event.participants]
    if event.action == "subject":
        out.Name.CopyFrom(pb.GroupName(Name=event.subject or ""))
    elif event.action == "topic":
        out.Topic.CopyFrom(pb.GroupTopic(Topic=event.topic or "", TopicDeleted=not event.topic))
    elif event.action == "add":
        out.Join.extend(members)
    elif event.action == "remove":
        out.Leave.extend(members)
    elif event.action == "promote":
        out.Promote.extend(members)
    elif event.action == "demote":
        out.Demote.extend(members)
    elif event.settings is not None:
        settings = event.settings
        if settings.announce is not None:
            out.Announce.CopyFrom(pb.GroupAnnounce(IsAnnounce=settings.announce))
        if settings.locked is not None:
            out.Locked.CopyFrom(pb.GroupLocked(isLocked=settings.locked))
        if settings.ephemeral_seconds is not None:
            seconds = settings.ephemeral_seconds
            out.Ephemeral.CopyFrom(pb.GroupEphemeral(IsEphemeral=seconds > 0, DisappearingTimer=seconds))
    return out


def _roundtrip_group(event: GroupEvent) -> GroupEvent | None:
    encoded = encode_group(event)
    if isinstance(encoded, pb.JoinedGroup):
        return translate_joined_group(encoded)
    known = event.chat.name if event.action != "subject" else None
    changes = translate_group_info(encoded, known_subject=known)
    return changes[0] if changes else None


def _participant(party: Party) -> Any:
    out = pb.GroupParticipant(JID=_jid(party.jid), DisplayName=party.name or "")
    if party.alt:
        field = out.PhoneNumber if party.jid.endswith("@lid") else out.LID
        field.CopyFrom(_jid(party.alt))
    return out


def _jid(value: str) -> Any:
    return parse_jid(value)
