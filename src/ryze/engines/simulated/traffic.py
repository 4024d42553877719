"""What the simulated phone network can deliver to an instance, and how it becomes a message.

The shapes mirror what whatsmeow reports (and the neonize engine turns into domain events):

* 1:1 incoming: ``chat == sender`` (the contact; a LID contact carries its phone-number JID as
  ``alt``), ``from_me=False``.
* group incoming: ``chat`` is the group, named after its subject when the network knows it (the
  neonize engine looks it up once per group and caches it), ``sender`` the participant.
* sent from the phone: ``from_me=True``, ``sender`` is us, ``chat`` the recipient (with its
  alternate JID when known); no origin.
* reactions, edits and revokes are messages of their own (new id) whose ``target_id`` names the
  message acted upon; an edit's ``text`` is the new text.
* group changes (``GroupChange``) become ``GroupEvent``s, one per change, as whatsmeow's
  ``GroupInfo`` / ``JoinedGroup`` events become in the neonize engine.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ryze.engines.base import (
    Contact,
    GroupAction,
    GroupEvent,
    GroupSettings,
    Location,
    Media,
    MediaKind,
    MessageKind,
    Party,
    Poll,
    WhatsAppMessage,
)

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
    gif: bool = False  # a video played as a looping GIF


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message the phone network delivers (from a contact, or typed on our own phone)."""

    sender: str  # contact (or group participant) JID or number; ignored for from_me
    kind: MessageKind = "text"
    text: str = ""
    sender_alt: str | None = None  # the PN of a LID sender, or the LID of a PN sender
    push_name: str | None = None
    saved_name: str | None = None  # the name our own phone book has for the sender
    business_name: str | None = None  # the sender's verified business name
    group: str | None = None
    from_me: bool = False  # "sent from the phone"
    to: str | None = None  # from_me: the recipient (defaults to ``sender``); ignored otherwise
    to_alt: str | None = None  # from_me: the recipient's alternate JID (LID of a PN, or PN of a LID)
    media: InboundMedia | None = None
    location: Location | None = None
    contacts: tuple[Contact, ...] = ()
    poll: Poll | None = None
    reply_to: str | None = None
    quoted_text: str | None = None  # the quoted message's text, as WhatsApp copies it into a reply
    target_id: str | None = None
    emoji: str | None = None
    id: str | None = None
    timestamp: datetime | None = None
    forwarded: bool = False
    view_once: bool = False


def build_message(
    item: Inbound, me: Party, media: Media | None, subjects: Mapping[str, str] | None = None
) -> WhatsAppMessage:
    """The domain message a whatsmeow session would report for ``item``; ``subjects`` are the
    group subjects the network knows (group JID -> subject)."""
    group = None
    if item.group:
        group_jid = normalize_jid(item.group)
        group = Party(jid=group_jid, name=(subjects or {}).get(group_jid))
    if item.from_me:
        to_alt = normalize_jid(item.to_alt) if item.to_alt else None
        chat = group or Party(jid=normalize_jid(item.to or item.sender), alt=to_alt)
        sender = me
    else:
        contact = Party(
            jid=normalize_jid(item.sender),
            alt=normalize_jid(item.sender_alt) if item.sender_alt else None,
            name=item.push_name,
            saved_name=item.saved_name,
            business_name=item.business_name,
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
        poll=item.poll,
        reply_to=item.reply_to,
        quoted_text=item.quoted_text if item.reply_to else None,
        target_id=item.target_id,
        emoji=item.emoji,
        forwarded=item.forwarded,
        view_once=item.view_once,
    )


@dataclass(frozen=True, slots=True)
class GroupMember:
    jid: str  # how the group addresses the member (a LID in LID-addressed groups)
    alt: str | None = None  # the other identity (PN of a LID, or LID of a PN) when known
    name: str | None = None


@dataclass(frozen=True, slots=True)
class GroupChange:
    """One change of a group the network announces (whatsmeow ``GroupInfo`` / ``JoinedGroup``).

    ``create``: we created, joined or were added to the group; ``participants`` are all its
    members, ``subject`` and ``topic`` its metadata. ``subject`` / ``topic``: renamed / new
    description. ``add`` / ``remove`` / ``promote`` / ``demote``: ``participants`` are the members
    concerned. ``settings``: ``announce`` / ``locked`` / ``ephemeral_seconds``.
    """

    group: str
    action: GroupAction
    subject: str | None = None
    topic: str | None = None
    participants: tuple[GroupMember, ...] = ()
    actor: str | None = None  # who made the change (JID or number)
    actor_alt: str | None = None
    settings: GroupSettings | None = None
    timestamp: datetime | None = None


def build_group_event(change: GroupChange, known_subject: str | None) -> GroupEvent:
    """The ``GroupEvent`` the neonize engine reports for the same change; ``known_subject`` is the
    group's subject before it (``chat.name`` unless the change renames the group)."""
    jid = normalize_jid(change.group)
    if not jid.endswith("@g.us"):
        raise ValueError(f"not a group JID: {change.group!r}")
    renames = change.action in ("create", "subject")
    subject = (change.subject or None) if renames else known_subject
    full = change.action == "create"
    members = tuple(
        Party(
            jid=normalize_jid(m.jid),
            # whatsmeow describes members (alternate id, name) only in the full group info of a
            # create; a change's Join / Leave / Promote / Demote lists are bare JIDs
            alt=normalize_jid(m.alt) if full and m.alt else None,
            name=m.name if full else None,
        )
        for m in change.participants
    )
    actor = None
    if change.actor:
        # neonize's GroupInfoEvent has no SenderPN: only a create names the actor's alternate id
        actor_alt = normalize_jid(change.actor_alt) if full and change.actor_alt else None
        actor = Party(jid=normalize_jid(change.actor), alt=actor_alt)
    return GroupEvent(
        chat=Party(jid=jid, name=subject),
        action=change.action,
        timestamp=change.timestamp or wa_now(),
        subject=subject,
        topic=change.topic if change.action in ("create", "topic") else None,
        participants=members,
        actor=actor,
        settings=change.settings if change.action == "settings" else None,
    )
