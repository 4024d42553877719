"""RyzeAPI's internal event bus and the documented ``{event, data, instanceData}`` envelopes.

Engines hand us domain events (``ryze.engines.base``); this module turns them into the public
envelope (``ryze.protocol``) and fans them out to subscribers (the Chatwoot module's durable log).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from ryze.engines.base import GroupEvent, Party, ReceiptEvent, WhatsAppMessage
from ryze.protocol import (
    ChatRef,
    ChatType,
    ContactCard,
    EditInfo,
    EventEnvelope,
    EventName,
    GroupFlowAction,
    GroupFlowData,
    HistorySyncData,
    InstanceData,
    LocationInfo,
    MediaInfo,
    MessageSource,
    MessageStatusData,
    MessageType,
    PollInfo,
    ReactionInfo,
    ReceiptStatus,
    RevokeInfo,
    SenderRef,
    WAMessage,
)

log = logging.getLogger(__name__)

EventHandler = Callable[[str, EventEnvelope], Awaitable[None]]
MediaLocator = Callable[[str, str], str]  # (instance, message id) -> the URL serving its media


class LogWriter(Protocol):
    """The transactional part of a subscriber: rows it writes in the *message store's* transaction.

    For a ``message.exchange`` the message row and the subscriber's rows (the Chatwoot module's
    event log) commit together, so a crash can never keep one without the other. The store calls,
    for one batch: ``lock()`` (held from before the transaction until after ``committed``/
    ``rolled_back``), ``write(conn, items)`` inside the transaction with the items of the batch's
    new messages (in commit order), then ``committed(state)`` or ``rolled_back(state)``.
    """

    def prepare(self, instance: str, envelope: EventEnvelope) -> Any | None:
        """The item to write for this event, or None when the subscriber does not log it."""

    def lock(self) -> AbstractAsyncContextManager[Any]: ...

    async def write(self, conn: AsyncConnection, items: list[Any]) -> Any: ...

    def committed(self, state: Any) -> None: ...

    def rolled_back(self, state: Any) -> None: ...


class EventBus:
    """In-process fan-out. ``publish`` awaits every handler in subscription order.

    A subscriber may also register a :class:`LogWriter`: the publisher of a message then writes
    its rows in the message's own transaction (``writers``), and ``publish(..., logged=True)``
    skips that subscriber's handler (its part is already committed).
    """

    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []
        self._writers: dict[EventHandler, LogWriter] = {}
        self._standalone: list[LogWriter] = []  # writers without a handler (add_writer)
        self._media_locator: MediaLocator | None = None

    def set_media_locator(self, locator: MediaLocator) -> None:
        """A subscriber that serves stored media to its consumers (the Chatwoot module's internal
        media route, for the bridge) names the URL put in ``message.media.url``."""
        self._media_locator = locator

    def media_url(self, instance: str, message_id: str) -> str | None:
        """``message.media.url`` for a message with media: None unless a subscriber serves it."""
        locator = self._media_locator
        return locator(instance, message_id) if locator is not None else None

    def subscribe(self, handler: EventHandler, *, writer: LogWriter | None = None) -> None:
        self._handlers.append(handler)
        if writer is not None:
            self._writers[handler] = writer

    def add_writer(self, writer: LogWriter) -> None:
        """A log writer without a handler: it only writes rows in the message store's transaction
        (the Chatwoot module's command recorder stores a command's result with the message it sent)."""
        self._standalone.append(writer)

    def unsubscribe(self, handler: EventHandler) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)
        self._writers.pop(handler, None)

    @property
    def has_subscribers(self) -> bool:
        """Whether publishing (and preparing) an envelope has any effect at all."""
        return bool(self._handlers) or bool(self._standalone)

    @property
    def writers(self) -> list[LogWriter]:
        """The subscribers' log writers (not the standalone ones of ``add_writer``)."""
        return list(self._writers.values())

    def prepare(self, instance: str, envelope: EventEnvelope) -> list[tuple[LogWriter, Any]]:
        """The transactional items of ``envelope``: (writer, item) for each writer that logs it."""
        out: list[tuple[LogWriter, Any]] = []
        for writer in (*self._writers.values(), *self._standalone):
            item = writer.prepare(instance, envelope)
            if item is not None:
                out.append((writer, item))
        return out

    async def publish(self, instance: str, envelope: EventEnvelope, *, logged: bool = False) -> None:
        """Run every handler; raise :class:`PublishError` afterwards if any of them failed.

        One failing subscriber must not starve the others, but the failure must reach the caller:
        a handler that could not persist means the event would be lost, and the caller's retry
        (a redelivery) is what saves it. ``logged``: the writers' part of this event was committed
        with the message; their handlers are skipped.
        """
        failed = 0
        for handler in self._handlers:
            if logged and handler in self._writers:
                continue
            try:
                await handler(instance, envelope)
            except Exception:
                failed += 1
                log.exception(
                    "event handler failed",
                    extra={"instance": instance, "event": envelope.event.value, "handler": repr(handler)},
                )
        if failed:
            raise PublishError(f"{failed} event handler(s) failed for {envelope.event.value}")


class PublishError(RuntimeError):
    """At least one subscriber could not take an event (see the logged exception)."""


# ---------------------------------------------------------------------------------------------
# Domain values -> documented payloads
# ---------------------------------------------------------------------------------------------

_KIND_TO_TYPE: dict[str, MessageType] = {
    "text": MessageType.TEXT,
    "image": MessageType.IMAGE,
    "video": MessageType.VIDEO,
    "audio": MessageType.AUDIO,
    "document": MessageType.DOCUMENT,
    "sticker": MessageType.STICKER,
    "location": MessageType.LOCATION,
    "contact": MessageType.CONTACT,
    "reaction": MessageType.REACTION,
    "edit": MessageType.EDIT,
    "revoke": MessageType.REVOKE,
    "poll": MessageType.POLL,
    "unsupported": MessageType.UNSUPPORTED,
}


def rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def chat_type(jid: str) -> ChatType:
    if jid.endswith("@g.us"):
        return ChatType.GROUP
    if jid.endswith("@newsletter"):
        return ChatType.NEWSLETTER
    if jid.endswith("@broadcast"):
        return ChatType.BROADCAST
    return ChatType.PRIVATE


def _lid_pn(party: Party) -> tuple[str | None, str | None]:
    """(lid, pn) alternates of a party: the alt is the LID of a PN jid, or the PN of a LID jid."""
    if party.alt is None:
        return None, None
    if party.jid.endswith("@lid"):
        return None, party.alt
    return party.alt, None


def chat_ref(party: Party) -> ChatRef:
    lid, pn = _lid_pn(party)
    return ChatRef(
        jid=party.jid,
        lid=lid,
        pn=pn,
        name=party.name,
        savedName=party.saved_name,
        businessName=party.business_name,
        type=chat_type(party.jid),
    )


def sender_ref(party: Party) -> SenderRef:
    lid, pn = _lid_pn(party)
    return SenderRef(
        jid=party.jid,
        lid=lid,
        pn=pn,
        name=party.name,
        savedName=party.saved_name,
        businessName=party.business_name,
    )


def split_origin(origin: str | None, from_me: bool) -> tuple[MessageSource, str | None]:
    """Sessions carry the caller's tag as ``api`` or ``chatwoot:<command id>``."""
    if not from_me:
        return MessageSource.CONTACT, None
    if origin is None:
        return MessageSource.PHONE, None
    tag, _, command_id = origin.partition(":")
    if tag == MessageSource.CHATWOOT.value:
        return MessageSource.CHATWOOT, command_id or None
    if tag == MessageSource.API.value:
        return MessageSource.API, None
    return MessageSource.PHONE, None


def make_origin(source: str, command_id: str | None) -> str:
    return f"{source}:{command_id}" if command_id else source


def wa_message(
    msg: WhatsAppMessage, *, origin: str | None, media_url: str | None, history: bool = False
) -> WAMessage:
    source, command_id = split_origin(origin, msg.from_me)
    media = None
    if msg.media is not None:
        media = MediaInfo(
            type=msg.media.kind,
            mimetype=msg.media.mimetype,
            fileName=msg.media.file_name,
            size=msg.media.size,
            seconds=msg.media.seconds,
            url=media_url,
            gif=True if msg.media.gif else None,
        )
    location = None
    if msg.location is not None:
        loc = msg.location
        location = LocationInfo(
            latitude=loc.latitude,
            longitude=loc.longitude,
            name=loc.name,
            address=loc.address,
            live=True if loc.live else None,
            sequence=loc.sequence if loc.live and loc.sequence else None,
            ended=True if loc.live and loc.ended else None,
        )
    contacts = None
    if msg.contacts:
        contacts = [
            ContactCard(displayName=c.display_name, vcard=c.vcard, phones=list(c.phones))
            for c in msg.contacts
        ]
    poll = None
    if msg.poll is not None:
        poll = PollInfo(
            name=msg.poll.name, options=list(msg.poll.options), selectableCount=msg.poll.selectable_count
        )
    target = msg.target_id or ""
    return WAMessage(
        id=msg.id,
        direction="outgoing" if msg.from_me else "incoming",
        timestamp=rfc3339(msg.timestamp),
        type=_KIND_TO_TYPE.get(msg.kind, MessageType.UNSUPPORTED),
        chat=chat_ref(msg.chat),
        sender=sender_ref(msg.sender),
        fromMe=msg.from_me,
        source=source,
        commandId=command_id,
        content={"text": msg.text} if msg.text else {},
        media=media,
        location=location,
        contacts=contacts,
        reaction=ReactionInfo(messageId=target, emoji=msg.emoji or "", fromMe=msg.from_me)
        if msg.kind == "reaction"
        else None,
        edit=EditInfo(messageId=target, text=msg.text) if msg.kind == "edit" else None,
        revoke=RevokeInfo(messageId=target) if msg.kind == "revoke" else None,
        poll=poll,
        replyTo=msg.reply_to,
        quotedText=msg.quoted_text,
        isForwarded=True if msg.forwarded else None,
        isViewOnce=True if msg.view_once else None,
        history=True if history else None,
    )


def _instance_data(base_url: str, instance: str, token: str | None) -> InstanceData:
    return InstanceData(baseUrl=base_url, instance=instance, token=token)


def exchange_envelope(
    base_url: str, instance: str, token: str | None, payload: dict[str, Any]
) -> EventEnvelope:
    """``message.exchange`` from a stored WAMessage payload (``model_dump(exclude_none=True)``)."""
    return EventEnvelope(
        event=EventName.MESSAGE_EXCHANGE,
        data={"id": payload["id"], "message": payload},
        instanceData=_instance_data(base_url, instance, token),
    )


def status_envelope(base_url: str, instance: str, token: str | None, receipt: ReceiptEvent) -> EventEnvelope:
    data = MessageStatusData(
        messageIds=list(receipt.message_ids),
        status=ReceiptStatus(receipt.kind),
        chat=chat_ref(receipt.chat),
        messageSender=sender_ref(receipt.sender),
        timestamp=rfc3339(receipt.timestamp),
    )
    return EventEnvelope(
        event=EventName.MESSAGE_STATUS,
        data=data.model_dump(mode="json", exclude_none=True),
        instanceData=_instance_data(base_url, instance, token),
    )


def group_flow_envelope(base_url: str, instance: str, token: str | None, event: GroupEvent) -> EventEnvelope:
    """``group.flow`` (docs/api.md): one change of a group's metadata or membership."""
    settings: dict[str, Any] = {}
    if event.settings is not None:
        values = {
            "announce": event.settings.announce,
            "locked": event.settings.locked,
            "ephemeralSeconds": event.settings.ephemeral_seconds,
        }
        settings = {key: value for key, value in values.items() if value is not None}
    data = GroupFlowData(
        chat=chat_ref(event.chat),
        action=GroupFlowAction(event.action),
        timestamp=rfc3339(event.timestamp),
        subject=event.subject,
        topic=event.topic,
        participants=[sender_ref(p) for p in event.participants],
        actor=sender_ref(event.actor) if event.actor is not None else None,
        settings=settings,
    )
    return EventEnvelope(
        event=EventName.GROUP_FLOW,
        data=data.model_dump(mode="json", exclude_none=True),
        instanceData=_instance_data(base_url, instance, token),
    )


def history_envelope(base_url: str, instance: str, token: str | None, data: HistorySyncData) -> EventEnvelope:
    """``history.sync`` (bridge link only): a history sync chunk starts or ends."""
    return EventEnvelope(
        event=EventName.HISTORY_SYNC,
        data=data.model_dump(mode="json", exclude_none=True),
        instanceData=_instance_data(base_url, instance, token),
    )


def state_envelope(
    base_url: str,
    instance: str,
    token: str | None,
    state: str,
    reason: str | None,
    *,
    extra: dict[str, str | None] | None = None,
) -> EventEnvelope:
    """``instance.state``; ``extra`` adds the optional fields (number, name, qr, problem) that are set."""
    data: dict[str, Any] = {"state": state}
    if reason:
        data["reason"] = reason
    for key, value in (extra or {}).items():
        if value:
            data[key] = value
    return EventEnvelope(
        event=EventName.INSTANCE_STATE,
        data=data,
        instanceData=_instance_data(base_url, instance, token),
    )
