"""whatsmeow ``events.GroupInfo`` / ``events.JoinedGroup`` → ``GroupEvent`` (``group.flow``).

whatsmeow (``types/events/events.go``, tulir/whatsmeow): ``GroupInfo`` "is emitted when the
metadata of a group changes" and carries every change of one notification at once (``Name``,
``Topic``, ``Locked``, ``Announce``, ``Ephemeral`` as pointers, ``Join`` / ``Leave`` / ``Promote`` /
``Demote`` as JID lists), ``Sender`` being who made the change (absent for invites) and ``Notify``
their push name. ``JoinedGroup`` "is emitted when you join or are added to a group" and embeds the
whole ``types.GroupInfo`` (subject, topic, participants). neonize 0.5.2 encodes them as
``Neonize.GroupInfoEvent`` (code 22) and ``Neonize.JoinedGroup`` (code 21); its ``GroupInfoEvent``
has no ``SenderPN``, so the actor of a LID-addressed change has no phone-number alternate there.
"""

from __future__ import annotations

from typing import Any

from ryze.engines.base import GroupEvent, GroupSettings, Party
from ryze.engines.neonize.translate.jids import jid_str, timestamp


def group_subject(info: Any) -> str | None:
    """The subject of a ``types.GroupInfo`` (``GetGroupInfo``'s answer, ``JoinedGroup``)."""
    name = info.GroupName.Name if info.HasField("GroupName") else ""
    return name or None


def translate_joined_group(event: Any) -> GroupEvent | None:
    """We created, joined or were added to a group: a ``create`` with every member."""
    info = event.GroupInfo
    chat_jid = jid_str(info.JID) if info.HasField("JID") else None
    if not chat_jid:
        return None
    subject = group_subject(info)
    topic = info.GroupTopic.Topic if info.HasField("GroupTopic") else ""
    # The group's creation time: neonize encodes it as a 32-bit float of Unix seconds (exact to
    # about two minutes); JoinedGroup has no time of its own (0 = now).
    created = int(info.GroupCreated) if info.GroupCreated else 0
    return GroupEvent(
        chat=Party(jid=chat_jid, name=subject),
        action="create",
        timestamp=timestamp(created),
        subject=subject,
        topic=topic or None,
        participants=tuple(_participant(p) for p in info.Participants if jid_str(p.JID)),
        actor=_actor(event, alt_field="SenderPN"),
    )


def translate_group_info(event: Any, *, known_subject: str | None) -> list[GroupEvent]:
    """One event per change in the notification (see ``GroupEvent``); ``known_subject`` is the
    group's subject before it (the session's cache), used for ``chat.name`` unless renamed."""
    chat_jid = jid_str(event.JID) if event.HasField("JID") else None
    if not chat_jid:
        return []
    when = timestamp(event.Timestamp)
    actor = _actor(event)
    subject = known_subject
    renamed = event.HasField("Name")
    if renamed:
        subject = event.Name.Name or None
    chat = Party(jid=chat_jid, name=subject)

    def change(action: Any, **fields: Any) -> GroupEvent:
        return GroupEvent(chat=chat, action=action, timestamp=when, actor=actor, subject=subject, **fields)

    out: list[GroupEvent] = []
    if renamed:
        out.append(change("subject"))
    if event.HasField("Topic"):
        topic = "" if event.Topic.TopicDeleted else event.Topic.Topic
        out.append(change("topic", topic=topic))
    for action, jids in (
        ("add", event.Join),
        ("remove", event.Leave),
        ("promote", event.Promote),
        ("demote", event.Demote),
    ):
        members = tuple(Party(jid=j) for j in (jid_str(x) for x in jids) if j)
        if members:
            out.append(change(action, participants=members))
    settings = GroupSettings(
        announce=event.Announce.IsAnnounce if event.HasField("Announce") else None,
        locked=event.Locked.isLocked if event.HasField("Locked") else None,
        ephemeral_seconds=(
            (event.Ephemeral.DisappearingTimer if event.Ephemeral.IsEphemeral else 0)
            if event.HasField("Ephemeral")
            else None
        ),
    )
    if settings != GroupSettings():
        out.append(change("settings", settings=settings))
    return out


def _participant(p: Any) -> Party:
    """A member of ``types.GroupInfo.Participants``: ``JID`` is how the group addresses them (a
    LID in LID-addressed groups), ``LID`` / ``PhoneNumber`` the other identity when known."""
    primary = jid_str(p.JID) or ""
    if primary.endswith("@lid"):
        alt = jid_str(p.PhoneNumber) if p.HasField("PhoneNumber") else None
    else:
        alt = jid_str(p.LID) if p.HasField("LID") else None
    return Party(jid=primary, alt=alt if alt and alt != primary else None, name=p.DisplayName or None)


def _actor(event: Any, *, alt_field: str | None = None) -> Party | None:
    """Who made the change. (``Notify`` is not their name: whatsmeow calls it "a top-level type
    for the invite".)"""
    actor = jid_str(event.Sender) if event.HasField("Sender") else None
    if not actor:
        return None
    alt = jid_str(getattr(event, alt_field)) if alt_field and event.HasField(alt_field) else None
    return Party(jid=actor, alt=alt if alt and alt != actor else None)
