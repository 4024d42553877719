"""What the simulated phone network can deliver to an instance, and how it becomes a message.

The shapes mirror what whatsmeow reports (and the neonize engine turns into domain events):

* 1:1 incoming: ``chat == sender`` (the contact; a LID contact carries its phone-number JID as
  ``alt``), ``from_me=False``.
* group incoming: ``chat`` is the group (JID only: whatsmeow's message events do not carry the
  subject), ``sender`` the participant.
* sent from the phone: ``from_me=True``, ``sender`` is us, ``chat`` the recipient (with its
  alternate JID when known); no origin.
* reactions, edits and revokes are messages of their own (new id) whose ``target_id`` names the
  message acted upon; an edit's ``text`` is the new text.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from ryze.engines.base import Contact, Location, Media, MediaKind, MessageKind, Party, WhatsAppMessage

_SERVERS = ("s.whatsapp.net", "lid", "g.us", "newsletter", "broadcast")
STATUS_BROADCAST = "status@broadcast"


def normalize_jid(value: str) -> str:
    """A phone number or JID -> non-AD JID (``5511...`` -> ``5511...@s.whatsapp.net``)."""
    value = value.strip()
    if "@" in value:
        user, _, server = value.partition("@")
        user = user.split(":", 1)[0]
        if not user or server not in _SERVERS:
            raise ValueError(f"not a WhatsApp JID: {value!r}")
        return f"{user}@{server}"
    digits = "".join(ch for ch in value if ch.isdigit())
    if not digits:
        raise ValueError(f"not a phone number: {value!r}")
    return f"{digits}@s.whatsapp.net"


def new_message_id() -> str:
    """Ids shaped like the ones whatsmeow generates for its own sends."""
    return "3EB0" + secrets.token_hex(9).upper()


def wa_now() -> datetime:
    # WhatsApp timestamps have one-second resolution.
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class InboundMedia:
    kind: MediaKind
    data: bytes
    mimetype: str
    file_name: str | None = None
    seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message the phone network delivers (from a contact, or typed on our own phone)."""

    sender: str  # contact (or group participant) JID or number; ignored for from_me
    kind: MessageKind = "text"
    text: str = ""
    sender_alt: str | None = None  # the PN of a LID sender, or the LID of a PN sender
    push_name: str | None = None
    group: str | None = None
    from_me: bool = False  # "sent from the phone"
    to: str | None = None  # from_me: the recipient (defaults to ``sender``); ignored otherwise
    to_alt: str | None = None  # from_me: the recipient's alternate JID (LID of a PN, or PN of a LID)
    media: InboundMedia | None = None
    location: Location | None = None
    contacts: tuple[Contact, ...] = ()
    reply_to: str | None = None
    target_id: str | None = None
    emoji: str | None = None
    id: str | None = None
    timestamp: datetime | None = None
    forwarded: bool = False
    view_once: bool = False


def build_message(item: Inbound, me: Party, media: Media | None) -> WhatsAppMessage:
    """The domain message a whatsmeow session would report for ``item``."""
    group = Party(jid=normalize_jid(item.group)) if item.group else None
    if item.from_me:
        to_alt = normalize_jid(item.to_alt) if item.to_alt else None
        chat = group or Party(jid=normalize_jid(item.to or item.sender), alt=to_alt)
        sender = me
    else:
        contact = Party(
            jid=normalize_jid(item.sender),
            alt=normalize_jid(item.sender_alt) if item.sender_alt else None,
            name=item.push_name,
        )
        chat, sender = (group, contact) if group else (contact, contact)
    text = item.text
    if item.kind == "contact" and len(item.contacts) > 1 and not text:
        text = f"{len(item.contacts)} contacts"  # what the neonize engine reports for a contacts array
    return WhatsAppMessage(
        id=item.id or (new_message_id() if item.from_me else "SIM" + secrets.token_hex(10).upper()),
        chat=chat,
        sender=sender,
        from_me=item.from_me,
        timestamp=item.timestamp or wa_now(),
        kind=item.kind,
        is_group=group is not None,
        text=text,
        media=media,
        location=item.location,
        contacts=item.contacts,
        reply_to=item.reply_to,
        target_id=item.target_id,
        emoji=item.emoji,
        forwarded=item.forwarded,
        view_once=item.view_once,
    )
