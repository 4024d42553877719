"""WhatsApp → Chatwoot: the event consumers and the retry loop around them.

Every event runs in its chat's lane. A consumer commits its effect in Chatwoot and writes the
mapping row (which is also the deduplication key) before the event is acked. Failures are retried
with jittered backoff (``Retry-After`` respected); attempts only count while Chatwoot is otherwise
making progress, so an outage delays messages but never discards them, while a message Chatwoot
keeps refusing on its own is given up after ``max_attempts``: recorded as failed, shown as a
private note when possible, and acked so its chat moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic

from ryze.bridge.errors import IntegrationBlocked
from ryze.bridge.metrics import failure_reason
from ryze.bridge.relay.context import RelayContext
from ryze.bridge.relay.history.progress import HistoryProgress, Outcome
from ryze.bridge.relay.history.window import time_line, within
from ryze.bridge.relay.inbound.avatars import AvatarRefresher
from ryze.bridge.relay.inbound.converters import convert
from ryze.bridge.relay.inbound.effects import Skip
from ryze.bridge.relay.inbound.executor import EffectExecutor, Target
from ryze.bridge.relay.inbound.group_notices import GroupNotices
from ryze.bridge.relay.inbound.groups import GroupParticipants, GroupSubjects
from ryze.bridge.relay.inbound.jids import jid_user, phone_of
from ryze.bridge.relay.inbound.lanes import LaneKeys, LaneRouter
from ryze.bridge.relay.inbound.media import MediaSource
from ryze.bridge.relay.inbound.names import ContactNames
from ryze.bridge.relay.inbound.resolver import ConversationResolver
from ryze.bridge.retry import AMBIGUOUS, Failure, classify
from ryze.bridge.store.repositories import ChatRecord
from ryze.chatwoot import ChatwootError, ChatwootNotFound
from ryze.chatwoot.port import MessageStatus
from ryze.protocol import (
    ChatType,
    EventEnvelope,
    EventName,
    GroupFlowData,
    HistorySyncData,
    InstanceStateData,
    MessageSource,
    MessageStatusData,
    ReceiptStatus,
    WAMessage,
)

log = logging.getLogger(__name__)

# WhatsApp ids remembered per integration (≈ 20 KiB when full): a second line of defence only,
# since RyzeAPI never logs one message under two seqs (bridge-protocol.md §3.5 item 7).
RELAYED_MEMORY = 256
Consume = Callable[[bool], Awaitable[None]]  # argument: "a previous attempt may have taken effect"


class InboundRelay:
    """Dispatches the link's events to their consumers, each in its chat's lane, and retries them.

    ``done(seq)`` acknowledges an event to the link once its effect is committed (or given up)."""

    def __init__(
        self,
        ctx: RelayContext,
        *,
        lanes: LaneRouter,
        resolver: ConversationResolver,
        done: Callable[[int], None],
        media: MediaSource | None = None,
        live_location_interval: float = 300.0,
        history: HistoryProgress | None = None,
        on_state: Callable[[InstanceStateData], Awaitable[None]] | None = None,
        avatars: AvatarRefresher | None = None,
    ) -> None:
        self.ctx = ctx
        self.live_location_interval = live_location_interval
        self.history = history  # the history import's progress (None: not counted)
        # After the status is updated, the connection conversation hears of it (``bridge.control``).
        self._on_state = on_state
        self.lanes = lanes
        self.resolver = resolver
        self.media = media  # RyzeAPI's media route (None: files are shown as a text saying so)
        self.avatars = avatars  # profile pictures as avatars (None: contacts keep theirs)
        self.participants = GroupParticipants(integration_id=ctx.integration_id, client=ctx.chatwoot)
        self.names = ContactNames(
            integration_id=ctx.integration_id, chats=resolver.chats, client=ctx.chatwoot
        )
        self.groups = GroupSubjects(
            integration_id=ctx.integration_id, chats=resolver.chats, client=ctx.chatwoot, names=self.names
        )
        self.group_notices = GroupNotices(ctx, chats=resolver.chats, client=ctx.chatwoot)
        self._done = done
        # A process that died had at most one message in flight per chat lane: only the first replayed
        # message of each lane that is not already mapped can be half-done (created in Chatwoot,
        # mapping not written), so only that one is checked against Chatwoot before creating. The
        # lane's check is claimed when that message runs, not when it is dispatched: a replay starts
        # at the watermark, so a lane's first replayed messages may be ones already relayed (done
        # while another chat's lane held the watermark back), and they must not use up the check.
        self._replay_lanes: set[str] = set()  # lanes seen in the current replay
        self._unverified_lanes: set[str] = set()  # of those, lanes whose check nobody claimed yet
        self._replaying = False
        self._lane_keys = LaneKeys()
        # WhatsApp ids whose mapping this run committed, most recent last: catches an id delivered
        # again under a *new* seq within this run (the contract dedupes by WhatsApp id). A seq
        # replayed within the run is re-acked by the link without reaching a consumer, and a seq another
        # connection may have relayed is checked against the database (``maybe_relayed``).
        self._relayed: OrderedDict[str, None] = OrderedDict()

    def remember(self, wa_id: str) -> None:
        """The mapping row of ``wa_id`` is committed: a later delivery of it in this run is a duplicate."""
        relayed = self._relayed
        relayed[wa_id] = None
        relayed.move_to_end(wa_id)
        if len(relayed) > RELAYED_MEMORY:
            relayed.popitem(last=False)

    def relayed_recently(self, wa_id: str) -> bool:
        return wa_id in self._relayed

    # ------------------------------------------------------------------ dispatch (called by the link)

    def on_event(self, seq: int, envelope: EventEnvelope, replay: bool) -> None:
        try:
            if envelope.event == EventName.MESSAGE_EXCHANGE:
                message = envelope.message_exchange().message
                key = self._lane_keys.key(message.chat)
                self._note_replay(key, replay)
                # A history message may be one the live relay (or an interrupted import) already
                # relayed under another seq: its mapping is always asked (bridge.md §4a).
                consumer = MessageConsumer(
                    self, message, seq, replay, maybe_relayed=replay or bool(message.history), lane=key
                )
                if message.history and self.history is not None:
                    self.history.offered()
                    self.lanes.submit(key, lambda: self._run_history(seq, consumer))
                else:
                    self.lanes.submit(key, lambda: self._run(seq, consumer, message.id, message.chat))
            elif envelope.event == EventName.HISTORY_SYNC:
                marker = envelope.history_sync()
                began = self.history.begin(marker) if self.history is not None else False
                self.lanes.submit("\x00history", lambda: self._run(seq, self._history_marker(marker, began)))
            elif envelope.event == EventName.MESSAGE_STATUS:
                receipt = envelope.message_status()
                self.lanes.submit(
                    self._lane_keys.key(receipt.chat),
                    lambda: self._run(seq, ReceiptConsumer(self.ctx, receipt)),
                )
            elif envelope.event == EventName.GROUP_FLOW:
                flow = envelope.group_flow()
                self.lanes.submit(
                    self._lane_keys.key(flow.chat), lambda: self._run(seq, self._group_flow(flow))
                )
            elif envelope.event == EventName.INSTANCE_STATE:
                state = envelope.instance_state()
                self.lanes.submit("\x00state", lambda: self._run(seq, self._state(state)))
            else:
                self._done(seq)
        except pydantic.ValidationError as exc:
            reason = f"malformed event: {exc.errors()[:3]}"
            log.warning(
                "malformed event acked without effect",
                extra={"integration_id": self.ctx.integration_id, "seq": seq},
            )
            self.lanes.submit("\x00bad", lambda: self._give_up(seq, reason, ""))

    def reset(self) -> None:
        """The link was stopped (its in-flight events abandoned): the next replay is verified afresh."""
        self._replaying = False
        self._replay_lanes.clear()
        self._unverified_lanes.clear()
        if self.history is not None:
            self.history.reset()

    async def _run_history(self, seq: int, consumer: MessageConsumer) -> None:
        """A history message through the same retry loop, then counted in the import's progress."""
        message = consumer.message
        await self._run(seq, consumer, message.id, message.chat)
        if self.history is not None:
            await self.history.settled(consumer.outcome)

    def _note_replay(self, key: str, replay: bool) -> None:
        if not replay:
            self._replaying = False
            return
        if not self._replaying:
            self._replaying = True
            self._replay_lanes.clear()
            self._unverified_lanes.clear()
        if key not in self._replay_lanes:
            self._replay_lanes.add(key)
            self._unverified_lanes.add(key)

    def claim_verification(self, key: str) -> bool:
        """True once per lane and replay: for its first replayed message not already relayed."""
        if key in self._unverified_lanes:
            self._unverified_lanes.discard(key)
            return True
        return False

    # ------------------------------------------------------------------ retry loop

    async def _run(self, seq: int, consume: Consume, wa_id: str = "", chat: Any = None) -> None:
        ctx = self.ctx
        counted = 0.0
        attempt = 0
        ambiguous = False
        while True:
            started = time.monotonic()
            try:
                await consume(ambiguous)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ctx.metrics.failed("wa_to_cw", failure_reason(exc))
                failure, last_error, weight = await self._assess(exc, seq, started)
                ambiguous = ambiguous or failure in AMBIGUOUS
                delay = ctx.retry.delay(failure, attempt, exc)
            else:
                ctx.health.note_progress()
                self._done(seq)
                return
            attempt += 1
            counted += weight
            if ctx.retry.exhausted(counted):
                await self._give_up(seq, last_error, wa_id, chat)
                return
            log.info(
                "inbound event will be retried",
                extra={
                    "integration_id": ctx.integration_id,
                    "seq": seq,
                    "attempt": attempt,
                    "delay": round(delay, 2),
                    "error": last_error[:300],
                },
            )
            await asyncio.sleep(delay)

    async def _assess(self, exc: Exception, seq: int, started: float) -> tuple[Failure, str, float]:
        """What a failed attempt was (the retry policy's classification, after the reports it calls
        for), the error to keep, and how much the attempt counts toward giving up."""
        health = self.ctx.health
        failure = classify(exc)
        last_error = str(exc)
        if failure is Failure.AUTH:
            assert isinstance(exc, ChatwootError)
            await health.report_chatwoot_error(exc)
        elif failure is Failure.NOT_FOUND:
            try:
                await health.check_inbox()  # the conversation is gone, or the whole inbox?
            except IntegrationBlocked as blocked:
                failure, last_error = Failure.BLOCKED, str(blocked)
        elif failure is Failure.UNEXPECTED:
            # A bug or unexpected data: bounded like a poison message. It may have failed after
            # the Chatwoot message was created (storing the mapping, say), and a seq offered to this
            # connection only skips the mapping lookup: it is ambiguous, Chatwoot is checked.
            log.exception(
                "inbound event failed", extra={"integration_id": self.ctx.integration_id, "seq": seq}
            )
            last_error = f"{exc.__class__.__name__}: {exc}"
        weight = self.ctx.retry.weight(failure, progressing=health.progressed_since(started))
        return failure, last_error, weight

    async def _give_up(self, seq: int, error: str, wa_id: str, chat: Any = None) -> None:
        self.ctx.metrics.failed("wa_to_cw", "gave_up")
        log.error(
            "inbound event given up",
            extra={"integration_id": self.ctx.integration_id, "seq": seq, "error": error[:500]},
        )
        conversation_id: int | None = None
        if chat is not None:
            try:
                record = await self.resolver.resolve(chat)
                conversation_id = record.conversation_id
                if conversation_id is not None:
                    await self.ctx.chatwoot().create_message(
                        conversation_id,
                        content=f"⚠️ A WhatsApp message ({wa_id}) could not be shown here: {error[:500]}",
                        message_type="outgoing",
                        private=True,
                    )
            except ChatwootError as exc:
                log.warning(
                    "could not post the failure note",
                    extra={"integration_id": self.ctx.integration_id, "error": str(exc)},
                )
        if wa_id:
            await self.ctx.messages.record(
                self.ctx.integration_id,
                wa_message_id=wa_id,
                chatwoot_message_id=None,
                conversation_id=conversation_id,
                chat_jid=chat.jid if chat is not None else "",
                direction="in",
                state="failed",
                seq=seq,
                failure=error,
            )
            self.remember(wa_id)
        else:
            await self.ctx.messages.record_failure(self.ctx.integration_id, seq, error)
        self._done(seq)

    # ------------------------------------------------------------------ consumers

    def _group_flow(self, flow: GroupFlowData) -> Consume:
        async def consume(ambiguous: bool) -> None:
            if not self.ctx.record.ignore_groups:
                await self.groups.on_flow(flow)  # the conversation's name first: the line may name it
                await self.group_notices.on_flow(flow, ambiguous=ambiguous)

        return consume

    def _history_marker(self, marker: HistorySyncData, began: bool) -> Consume:
        async def consume(_ambiguous: bool) -> None:
            if self.history is not None:
                await self.history.on_marker(marker, began=began)

        return consume

    def _state(self, state: InstanceStateData) -> Consume:
        async def consume(_ambiguous: bool) -> None:
            await self.ctx.health.set_whatsapp_state(state.state, state.reason)
            if self._on_state is not None:
                await self._on_state(state)

        return consume


class MessageConsumer:
    """``message.exchange``: one WhatsApp message → at most one Chatwoot message, ever."""

    def __init__(
        self,
        relay: InboundRelay,
        message: WAMessage,
        seq: int,
        replay: bool,
        *,
        maybe_relayed: bool = True,
        lane: str = "",
    ) -> None:
        self.relay = relay
        self.message = message
        self.seq = seq
        self.replay = replay  # offered before this connection's ready: may be half-done in Chatwoot
        self.lane = lane
        self._verify = False  # claimed the lane's check (kept across this message's retries)
        # seq <= the last_seq of the current connection's ready: offered before it, so another
        # connection may have relayed it and the mapping table is asked; a later seq was offered
        # to this connection only
        self.maybe_relayed = maybe_relayed
        # What became of it (the history import counts it): set once the consumer returns
        self.outcome: Outcome | None = None
        self._duplicate = False

    async def __call__(self, ambiguous: bool) -> None:
        relay, msg = self.relay, self.message
        if msg.history and not within(msg, relay.ctx.record.history_days):
            self.outcome = "skipped"  # older than the integration's history window (or import off)
            return
        if await self._not_for_chatwoot():
            self.outcome = "duplicate" if self._duplicate else "skipped"
            return
        effect = convert(msg)
        outgoing = msg.fromMe or msg.direction == "outgoing"
        prefix = time_line(msg) if msg.history else ""
        if msg.chat.type == ChatType.GROUP and not outgoing:
            prefix += f"**{self._participant()}:**\n"
        executor = EffectExecutor(
            relay.ctx,
            msg,
            self.seq,
            media=relay.media,
            prefix=prefix,
            on_record=relay.remember,
            live_interval=relay.live_location_interval,
        )
        if isinstance(effect, Skip):
            await executor.record(None, None, state="skipped")
            self.outcome = "skipped"
            return
        chat = await relay.resolver.resolve(msg.chat)
        assert chat.conversation_id is not None
        if self.replay and not self._verify:
            self._verify = relay.claim_verification(self.lane)
        where = Target(chat.conversation_id, outgoing=outgoing, adopt=self._verify or ambiguous)
        try:
            await executor.apply(effect, where)
        except ChatwootNotFound:
            # the conversation was deleted in Chatwoot (or the inbox: the retry loop checks)
            await relay.resolver.forget_conversation(msg.chat)
            raise
        self.outcome = "imported"
        if msg.chat.type == ChatType.GROUP:
            await relay.groups.note_subject(msg.chat, chat)  # the subject it carries names the group
            if not outgoing:
                await relay.participants.note(msg.sender)
        elif not outgoing:
            await self._name_contact(chat)
        if relay.avatars is not None:
            relay.avatars.note(msg.chat, chat)

    async def _name_contact(self, record: ChatRecord) -> None:
        """WhatsApp's name for the person, on their contact (names.py). The message is in
        Chatwoot already: a rename that fails is logged and tried again with the next message."""
        try:
            await self.relay.names.note(self.message.chat, record)
        except ChatwootError as exc:
            log.warning(
                "contact rename failed; retried with the next message",
                extra={
                    "integration_id": self.relay.ctx.integration_id,
                    "contact_id": record.contact_id,
                    "error": str(exc)[:200],
                },
            )

    async def _not_for_chatwoot(self) -> bool:
        """Already relayed, or a message this integration does not mirror: acked without effect."""
        relay, ctx, msg = self.relay, self.relay.ctx, self.message
        if msg.source == MessageSource.CHATWOOT:
            # The agent's own reply, sent by one of our commands. RyzeAPI no longer offers these
            # (bridge-protocol.md §3.4); an older RyzeAPI, or a log written before its upgrade,
            # still may. Never mirrored, and mapped by the outbound worker from the command's
            # result, so it is acked without touching the database.
            self._duplicate = True
            return True
        if relay.relayed_recently(msg.id):
            self._duplicate = True
            return True  # delivered twice within this run
        if self.maybe_relayed and await ctx.messages.seen(ctx.integration_id, msg.id):
            self._duplicate = True
            return True  # already relayed by this or a previous run (replay after a restart)
        if msg.chat.type in (ChatType.NEWSLETTER, ChatType.BROADCAST) or msg.chat.jid == "status@broadcast":
            return True
        return msg.chat.type == ChatType.GROUP and ctx.record.ignore_groups

    def _participant(self) -> str:
        sender = self.message.sender
        if sender.name:
            return sender.name
        phone = phone_of(self.message.chat.model_copy(update={"jid": sender.jid, "pn": sender.pn}))
        return phone or jid_user(sender.jid)


_RECEIPT_STATUS: dict[ReceiptStatus, MessageStatus] = {
    ReceiptStatus.DELIVERED: "delivered",
    ReceiptStatus.READ: "read",
    ReceiptStatus.PLAYED: "read",
}
# Receipts only move a message forward: a late "delivered" after "read" changes nothing (WhatsApp
# sends them from different devices and RyzeAPI may log them in either order).
_RANK = {"": 0, "sent": 1, "delivered": 2, "read": 3}


class ReceiptConsumer:
    """``message.status``: delivered/read/played receipts on agent messages → Chatwoot message status."""

    def __init__(self, ctx: RelayContext, receipt: MessageStatusData) -> None:
        self.ctx = ctx
        self.receipt = receipt

    async def __call__(self, ambiguous: bool) -> None:
        status = _RECEIPT_STATUS.get(self.receipt.status)
        if status is None:
            return
        ctx = self.ctx
        for wa_id in self.receipt.messageIds:
            mapped = await ctx.messages.find_wa_any(ctx.integration_id, wa_id)
            if mapped is None or mapped.direction != "out" or not mapped.chatwoot_message_id:
                continue
            if _RANK.get(mapped.receipt, 0) >= _RANK[status]:
                continue  # already there or further: never downgraded
            conversation_id = mapped.conversation_id
            if conversation_id is None:
                job = await ctx.jobs.find_by_message(ctx.integration_id, mapped.chatwoot_message_id)
                if job is None:
                    continue
                conversation_id = job.conversation_id
            try:
                await ctx.chatwoot().update_message_status(
                    conversation_id, mapped.chatwoot_message_id, status
                )
            except ChatwootNotFound:
                continue  # message or conversation deleted since: nothing to mark
            await ctx.messages.set_receipt(ctx.integration_id, mapped.wa_message_id, mapped.part, status)
