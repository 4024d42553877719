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
from typing import TYPE_CHECKING, Any

import pydantic

from ryze.bridge.errors import IntegrationBlocked
from ryze.bridge.link.client import backoff_delay
from ryze.bridge.metrics import failure_reason
from ryze.bridge.relay.inbound.converters import convert
from ryze.bridge.relay.inbound.lanes import LaneKeys
from ryze.bridge.relay.inbound.resolver import jid_user, phone_of
from ryze.bridge.relay.source_id import wa_source_id
from ryze.chatwoot import (
    ChatwootAuthError,
    ChatwootError,
    ChatwootNotFound,
    ChatwootRateLimited,
    ChatwootServerError,
    ChatwootTimeout,
    ChatwootUnreachable,
)
from ryze.protocol import (
    ChatType,
    EventEnvelope,
    EventName,
    MessageSource,
    MessageStatusData,
    ReceiptStatus,
    WAMessage,
)

if TYPE_CHECKING:
    from ryze.bridge.runtime import IntegrationRuntime

log = logging.getLogger(__name__)

# WhatsApp ids remembered per integration (≈ 20 KiB when full): a second line of defence only,
# since RyzeAPI never logs one message under two seqs (bridge-protocol.md §3.5 item 7).
RELAYED_MEMORY = 256
Consume = Callable[[bool], Awaitable[None]]  # argument: "a previous attempt may have taken effect"


class InboundRelay:
    def __init__(self, rt: IntegrationRuntime) -> None:
        self.rt = rt
        # A process that died had at most one message in flight per chat lane: only the first replayed
        # message of each lane can be half-done (created in Chatwoot, mapping not written), so only
        # that one is checked against Chatwoot before creating.
        self._verified_lanes: set[str] = set()
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
                consumer = MessageConsumer(
                    self.rt, message, seq, self._first_replay_of_lane(key, replay), maybe_relayed=replay
                )
                self.rt.lanes.submit(key, lambda: self._run(seq, consumer, message.id, message.chat))
            elif envelope.event == EventName.MESSAGE_STATUS:
                receipt = envelope.message_status()
                self.rt.lanes.submit(
                    self._lane_keys.key(receipt.chat),
                    lambda: self._run(seq, ReceiptConsumer(self.rt, receipt)),
                )
            elif envelope.event == EventName.INSTANCE_STATE:
                state = envelope.instance_state()
                self.rt.lanes.submit(
                    "\x00state", lambda: self._run(seq, self._state(state.state, state.reason))
                )
            else:
                self.rt.link_done(seq)
        except pydantic.ValidationError as exc:
            reason = f"malformed event: {exc.errors()[:3]}"
            log.warning(
                "malformed event acked without effect", extra={"integration_id": self.rt.id, "seq": seq}
            )
            self.rt.lanes.submit("\x00bad", lambda: self._give_up(seq, reason, ""))

    def reset(self) -> None:
        """The link was stopped (its in-flight events abandoned): the next replay is verified afresh."""
        self._replaying = False
        self._verified_lanes.clear()

    def _first_replay_of_lane(self, key: str, replay: bool) -> bool:
        if not replay:
            self._replaying = False
            self._verified_lanes.clear()
            return False
        if not self._replaying:
            self._replaying = True
            self._verified_lanes.clear()
        if key in self._verified_lanes:
            return False
        self._verified_lanes.add(key)
        return True

    # ------------------------------------------------------------------ retry loop

    async def _run(self, seq: int, consume: Consume, wa_id: str = "", chat: Any = None) -> None:
        counted = 0.0
        attempt = 0
        ambiguous = False
        last_error = ""
        settings = self.rt.settings
        while True:
            started = time.monotonic()
            try:
                try:
                    await consume(ambiguous)
                except Exception as exc:  # counted by reason here, without a wrapper coroutine per attempt
                    self.rt.metrics.failed("wa_to_cw", failure_reason(exc))
                    raise
                self.rt.note_progress()
                self.rt.link_done(seq)
                return
            except asyncio.CancelledError:
                raise
            except IntegrationBlocked as exc:
                last_error = str(exc)
                delay = backoff_delay(attempt + 3, settings.retry_base_seconds, settings.retry_max_seconds)
            except ChatwootAuthError as exc:
                await self.rt.report_chatwoot_error(exc)
                last_error = str(exc)
                delay = backoff_delay(attempt + 3, settings.retry_base_seconds, settings.retry_max_seconds)
            except ChatwootNotFound as exc:
                last_error = str(exc)
                delay = backoff_delay(attempt, settings.retry_base_seconds, settings.retry_max_seconds)
                try:
                    await self.rt.check_inbox()
                    counted += 1
                except IntegrationBlocked as blocked:
                    last_error = str(blocked)
                    delay = backoff_delay(
                        attempt + 3, settings.retry_base_seconds, settings.retry_max_seconds
                    )
            except ChatwootRateLimited as exc:
                last_error = str(exc)
                delay = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else backoff_delay(attempt, settings.retry_base_seconds, settings.retry_max_seconds)
                )
                counted += self.rt.progressed_since(started)
            except (ChatwootServerError, ChatwootTimeout, ChatwootUnreachable) as exc:
                ambiguous = True  # the create may have happened: check Chatwoot before creating again
                last_error = str(exc)
                delay = backoff_delay(attempt, settings.retry_base_seconds, settings.retry_max_seconds)
                counted += self.rt.progressed_since(started)
            except ChatwootError as exc:  # 4xx the message itself provokes
                last_error = str(exc)
                delay = backoff_delay(attempt, settings.retry_base_seconds, settings.retry_max_seconds)
                counted += 1
            except Exception as exc:  # a bug or unexpected data: bounded like a poison message
                log.exception("inbound event failed", extra={"integration_id": self.rt.id, "seq": seq})
                # It may have failed after the Chatwoot message was created (storing the mapping,
                # say), and a seq offered to this connection only skips the mapping lookup: check Chatwoot.
                ambiguous = True
                last_error = f"{exc.__class__.__name__}: {exc}"
                delay = backoff_delay(attempt, settings.retry_base_seconds, settings.retry_max_seconds)
                counted += 1
            attempt += 1
            if counted >= settings.max_attempts:
                await self._give_up(seq, last_error, wa_id, chat)
                return
            log.info(
                "inbound event will be retried",
                extra={
                    "integration_id": self.rt.id,
                    "seq": seq,
                    "attempt": attempt,
                    "delay": round(delay, 2),
                    "error": last_error[:300],
                },
            )
            await asyncio.sleep(delay)

    async def _give_up(self, seq: int, error: str, wa_id: str, chat: Any = None) -> None:
        self.rt.metrics.failed("wa_to_cw", "gave_up")
        log.error(
            "inbound event given up", extra={"integration_id": self.rt.id, "seq": seq, "error": error[:500]}
        )
        conversation_id: int | None = None
        if chat is not None:
            try:
                record = await self.rt.resolver.resolve(chat)
                conversation_id = record.conversation_id
                if conversation_id is not None:
                    await self.rt.client().create_message(
                        conversation_id,
                        content=f"⚠️ A WhatsApp message ({wa_id}) could not be shown here: {error[:500]}",
                        message_type="outgoing",
                        private=True,
                    )
            except ChatwootError as exc:
                log.warning(
                    "could not post the failure note", extra={"integration_id": self.rt.id, "error": str(exc)}
                )
        if wa_id:
            await self.rt.repos.messages.record(
                self.rt.id,
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
            await self.rt.repos.messages.record_failure(self.rt.id, seq, error)
        self.rt.link_done(seq)

    # ------------------------------------------------------------------ consumers

    def _state(self, state: str, reason: str | None) -> Consume:
        async def consume(_ambiguous: bool) -> None:
            await self.rt.set_whatsapp_state(state, reason)

        return consume


class MessageConsumer:
    """``message.exchange``: one WhatsApp message → at most one Chatwoot message, ever."""

    def __init__(
        self,
        rt: IntegrationRuntime,
        message: WAMessage,
        seq: int,
        replay: bool,
        *,
        maybe_relayed: bool = True,
    ) -> None:
        self.rt = rt
        self.message = message
        self.seq = seq
        self.replay = replay  # the first replayed message of its lane: may be half-done in Chatwoot
        # seq <= the last_seq of the current connection's ready: offered before it, so another
        # connection may have relayed it and the mapping table is asked; a later seq was offered
        # to this connection only
        self.maybe_relayed = maybe_relayed

    async def __call__(self, ambiguous: bool) -> None:
        rt, msg = self.rt, self.message
        if msg.source == MessageSource.CHATWOOT:
            # The agent's own reply, sent by one of our commands. RyzeAPI no longer offers these
            # (bridge-protocol.md §3.4); an older RyzeAPI, or a log written before its upgrade,
            # still may. Never mirrored, and mapped by the outbound worker from the command's
            # result, so it is acked without touching the database.
            return
        repo = rt.repos.messages
        if rt.inbound.relayed_recently(msg.id):
            return  # delivered twice within this run
        if self.maybe_relayed and await repo.seen(rt.id, msg.id):
            return  # already relayed by this or a previous run (replay after a restart)
        if msg.chat.type in (ChatType.NEWSLETTER, ChatType.BROADCAST) or msg.chat.jid == "status@broadcast":
            return
        if msg.chat.type == ChatType.GROUP and rt.record.ignore_groups:
            return
        draft = convert(msg)
        if draft is None:
            await self._record(None, None, state="skipped")
            return
        outgoing = msg.fromMe or msg.direction == "outgoing"
        content = draft.content
        if msg.chat.type == ChatType.GROUP and not outgoing:
            content = f"**{self._participant()}:**\n{content}"
        chat = await rt.resolver.resolve(msg.chat)
        assert chat.conversation_id is not None
        client = rt.client()
        source_id = wa_source_id(msg.id)
        if self.replay or ambiguous:
            for existing in await client.list_messages(chat.conversation_id):
                if existing.source_id == source_id:
                    await self._record(existing.id, chat.conversation_id)
                    return
        attributes = dict(draft.content_attributes)
        quoted = self._quoted_id()
        if quoted:
            target = await repo.find_wa_any(rt.id, quoted)
            if (
                target is not None
                and target.chatwoot_message_id
                and target.conversation_id == chat.conversation_id
            ):
                attributes["in_reply_to"] = target.chatwoot_message_id
            else:
                attributes["in_reply_to_external_id"] = wa_source_id(quoted)
        try:
            created = await client.create_message(
                chat.conversation_id,
                content=content,
                message_type="outgoing" if outgoing else "incoming",
                source_id=source_id,
                content_attributes=attributes or None,
            )
        except ChatwootNotFound:
            # the conversation was deleted in Chatwoot (or the inbox: the retry loop checks)
            await rt.resolver.forget_conversation(msg.chat)
            raise
        await self._record(created.id, chat.conversation_id)
        rt.metrics.relayed("wa_to_cw")

    def _participant(self) -> str:
        sender = self.message.sender
        if sender.name:
            return sender.name
        phone = phone_of(self.message.chat.model_copy(update={"jid": sender.jid, "pn": sender.pn}))
        return phone or jid_user(sender.jid)

    def _quoted_id(self) -> str | None:
        msg = self.message
        if msg.replyTo:
            return msg.replyTo
        for ref in (msg.reaction, msg.edit, msg.revoke):
            if ref is not None:
                return ref.messageId
        return None

    async def _record(
        self,
        chatwoot_id: int | None,
        conversation_id: int | None,
        *,
        state: str = "done",
        direction: str = "in",
        part: int = 0,
    ) -> None:
        await self.rt.repos.messages.record(
            self.rt.id,
            wa_message_id=self.message.id,
            part=part,
            chatwoot_message_id=chatwoot_id,
            conversation_id=conversation_id,
            chat_jid=self.message.chat.jid,
            direction=direction,
            state=state,
            seq=self.seq,
        )
        self.rt.inbound.remember(self.message.id)


_RECEIPT_STATUS = {
    ReceiptStatus.DELIVERED: "delivered",
    ReceiptStatus.READ: "read",
    ReceiptStatus.PLAYED: "read",
}


class ReceiptConsumer:
    """``message.status``: delivered/read receipts on agent messages → Chatwoot message status."""

    def __init__(self, rt: IntegrationRuntime, receipt: MessageStatusData) -> None:
        self.rt = rt
        self.receipt = receipt

    async def __call__(self, ambiguous: bool) -> None:
        status = _RECEIPT_STATUS.get(self.receipt.status)
        if status is None:
            return
        for wa_id in self.receipt.messageIds:
            mapped = await self.rt.repos.messages.find_wa_any(self.rt.id, wa_id)
            if mapped is None or mapped.direction != "out" or not mapped.chatwoot_message_id:
                continue
            job = await self.rt.repos.outbound.find_by_message(self.rt.id, mapped.chatwoot_message_id)
            if job is None:
                continue
            try:
                await self.rt.client().update_message_status(
                    job.conversation_id,
                    mapped.chatwoot_message_id,
                    "read" if status == "read" else "delivered",
                )
            except ChatwootNotFound:
                continue  # message or conversation deleted since: nothing to mark
