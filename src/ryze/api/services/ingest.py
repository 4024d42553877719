"""The inbound path: engine domain events -> message store / instance state -> event bus.

Kept lean on purpose (it carries every message of every instance): one cached instance lookup,
one grouped insert, one envelope, then the bus. A message's event-log rows (the bus's transactional
writers, e.g. the Chatwoot module) are written by that grouped insert's transaction, so the message
and its event commit together; the other subscribers run after the commit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ryze.api.events import (
    EventBus,
    LogWriter,
    PublishError,
    exchange_envelope,
    group_flow_envelope,
    history_envelope,
    split_origin,
    state_envelope,
    status_envelope,
    wa_message,
)
from ryze.api.metrics import ApiMetrics
from ryze.api.records import InstanceRecord
from ryze.api.services.instances import InstanceService
from ryze.api.services.storable import storable
from ryze.api.services.store import MessageStore
from ryze.api.settings import ApiSettings
from ryze.engines.base import (
    ConnectionEvent,
    DomainEvent,
    GroupEvent,
    HistoryChat,
    HistorySyncEvent,
    MessageEvent,
    ReceiptEvent,
    WhatsAppMessage,
)
from ryze.protocol import HistorySyncData, HistorySyncType, MessageSource

log = logging.getLogger(__name__)


class InboundPipeline:
    def __init__(
        self,
        settings: ApiSettings,
        instances: InstanceService,
        store: MessageStore,
        bus: EventBus,
        *,
        metrics: ApiMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._instances = instances
        self._store = store
        self._bus = bus
        self._base_url = settings.public_base_url
        # Messages stored but whose publication failed: a redelivery of one of them publishes it
        # again instead of being dropped as a duplicate. Bounded: it only bridges transient failures.
        self._unpublished: dict[tuple[str, str], None] = {}

    async def handle(self, instance_name: str, event: DomainEvent) -> None:
        instance = await self._instances.get(instance_name)
        if instance is None:
            # The instance was deleted while its session still delivered events.
            log.warning("event for unknown instance dropped", extra={"instance": instance_name})
            return
        if isinstance(event, MessageEvent):
            await self.store_message(instance, event.message, event.origin)
        elif isinstance(event, ReceiptEvent):
            if self._bus.has_subscribers:
                await self._bus.publish(
                    instance.name, status_envelope(self._base_url, instance.name, instance.token, event)
                )
        elif isinstance(event, HistorySyncEvent):
            await self._history(instance, event)
        elif isinstance(event, GroupEvent):
            # Nothing to store (the subject travels on each group message's chat.name); published
            # like a receipt: the bridge link's log makes it durable, a failure is a redelivery.
            if self._bus.has_subscribers:
                await self._bus.publish(
                    instance.name, group_flow_envelope(self._base_url, instance.name, instance.token, event)
                )
        else:
            await self._connection(instance, event)

    async def _history(self, instance: InstanceRecord, event: HistorySyncEvent) -> None:
        """A history sync chunk: ``history.sync`` started, its messages (per chat, oldest first),
        ``history.sync`` finished. Each message is stored like a live one (a message already
        stored is not stored again) and offered flagged ``history``.

        Public contract: these are not new messages, so they are offered on the bridge link only
        (the subscriber that exists); a public webhook or WebSocket delivery must skip envelopes
        whose ``message.history`` is true and ``history.sync`` (not one of the documented events).
        A failure raises: the engine redelivers the whole chunk, and what was stored is not
        stored twice."""
        chats = [chat for chat in event.chats if chat.messages]
        total = sum(len(chat.messages) for chat in chats)
        marker = HistorySyncData(
            phase="started", syncType=HistorySyncType(event.kind), chunk=event.chunk,
            progress=event.progress, final=event.final, chats=len(chats), messages=total,
        )  # fmt: skip
        await self._publish_history(instance, marker)
        # Chats concurrently (their messages share group commits), each chat's messages in
        # order: seqs are handed out in commit order, so every chat is offered oldest first.
        # All of them finish before a failure is raised: nothing keeps running behind the
        # redelivery the failure causes.
        outcomes = await asyncio.gather(
            *(self._store_history_chat(instance, chat) for chat in chats), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        await self._publish_history(instance, marker.model_copy(update={"phase": "finished"}))
        log.info(
            "history sync stored",
            extra={
                "instance": instance.name,
                "sync_type": event.kind,
                "chats": len(chats),
                "messages": total,
            },
        )

    async def _store_history_chat(self, instance: InstanceRecord, chat: HistoryChat) -> None:
        for msg in sorted(chat.messages, key=lambda m: m.timestamp):
            if not await self.store_message(instance, msg, None, history=True):
                await self._offer_stored_again(instance, msg)

    async def _publish_history(self, instance: InstanceRecord, data: HistorySyncData) -> None:
        if self._bus.has_subscribers:
            await self._bus.publish(
                instance.name, history_envelope(self._base_url, instance.name, instance.token, data)
            )

    async def _offer_stored_again(self, instance: InstanceRecord, msg: WhatsAppMessage) -> None:
        """A history message RyzeAPI already stored (live, or by an earlier sync) is offered again,
        as stored, flagged ``history``: it may predate the integration (stored before ``set``).
        The bridge always checks its mapping for history messages, so one it already relayed is
        acked without effect. The bridge's own sends are never offered (it has them)."""
        if not self._bus.has_subscribers:
            return
        stored = await self._store.get(instance.id, msg.id)
        if stored is None or stored.source == MessageSource.CHATWOOT.value or not stored.payload:
            return
        payload = {**stored.payload, "history": True}
        envelope = exchange_envelope(self._base_url, instance.name, instance.token, payload)
        await self._bus.publish(instance.name, envelope)

    async def store_message(
        self, instance: InstanceRecord, msg: WhatsAppMessage, origin: str | None, *, history: bool = False
    ) -> bool:
        """Store and publish one message; False (and nothing published) when already stored."""
        media_url = self._bus.media_url(instance.name, msg.id) if msg.media is not None else None
        # U+0000 replaced in what is stored and published (PostgreSQL cannot store it).
        payload = storable(
            wa_message(msg, origin=origin, media_url=media_url, history=history).model_dump(
                mode="json", exclude_none=True
            )
        )
        source, _ = split_origin(origin, msg.from_me)
        envelope = None
        events: list[tuple[LogWriter, Any]] = []
        if self._bus.has_subscribers:
            envelope = exchange_envelope(self._base_url, instance.name, instance.token, payload)
            # Transactional subscribers (the Chatwoot event log) commit with the message itself.
            events = self._bus.prepare(instance.name, envelope)
        values = MessageStore.row_values(instance.id, msg, source.value, payload)
        # an own send (origin-tagged): the store keeps its record for MessagingService to answer from
        receipt = await self._store.add(values, events, keep=origin is not None and msg.from_me)
        is_new = receipt.new
        key = (instance.id, msg.id)
        if not is_new:
            if msg.from_me and msg.media is not None and msg.media.handle:
                # An engine that reports its own sends after returning (neonize) loses the race
                # to MessagingService, which stored the send without the engine's media handle.
                await self._store.fill_media_handle(instance.id, msg.id, msg.media.handle)
            if key not in self._unpublished:
                return False
        elif msg.kind == "edit" and msg.target_id:
            await self._store.apply_edit(instance.id, msg.target_id, values["text"])
        # a redelivered message is not a new one, nor is one from a history sync
        if is_new and self._metrics is not None and not history:
            self._metrics.message(msg.from_me, source.value)
        if envelope is not None:
            try:
                # The writers' part is committed: with the message, or (a retried publication)
                # by the delivery that stored it.
                await self._bus.publish(instance.name, envelope, logged=True)
            except PublishError:
                self._unpublished[key] = None
                while len(self._unpublished) > 10_000:
                    del self._unpublished[next(iter(self._unpublished))]
                raise
        self._unpublished.pop(key, None)
        return is_new

    async def _connection(self, instance: InstanceRecord, event: ConnectionEvent) -> None:
        me = event.me
        updated = await self._instances.set_state(
            instance,
            event.state.value,
            number_jid=me.jid if me else None,
            profile_name=me.name if me else None,
        )
        log.info(
            "instance state changed",
            extra={"instance": instance.name, "state": event.state.value, "reason": event.reason},
        )
        if self._bus.has_subscribers:
            await self._bus.publish(
                updated.name,
                state_envelope(
                    self._base_url,
                    updated.name,
                    updated.token,
                    event.state.value,
                    event.reason,
                    extra={
                        "number": me.jid.split("@", 1)[0].split(":", 1)[0] if me else None,
                        "name": me.name if me else None,
                        "qr": event.qr,
                        "problem": event.problem,
                    },
                ),
            )
