"""The outbound worker: durable jobs (persisted by the webhook receiver) → link commands.

Jobs of one conversation run in order, one at a time; conversations run concurrently. A job is
one or more parts (text, or one part per attachment); each part is a command whose id
``cw-<integration>-<chatwoot message id>-<part>`` is stable across retries, so RyzeAPI sends it to
WhatsApp at most once. After a part succeeds its WhatsApp id ↔ Chatwoot id mapping is recorded
and ``parts_done`` advanced. A command WhatsApp refuses for good, or one still failing after
``max_attempts``, marks the Chatwoot message ``failed`` with the reason (message status PATCH).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import orjson

from ryze.bridge.link.client import LinkUnavailable
from ryze.bridge.relay.context import CommandLink, RelayContext
from ryze.bridge.relay.outbound.converters import (
    PermanentFailure,
    mark_read_commands,
    presence_command,
    revoke_commands,
    send_commands,
)
from ryze.bridge.relay.outbound.filters import (
    JobIntent,
    MarkReadIntent,
    RevokeIntent,
    SendIntent,
    TypingIntent,
    job_intent,
)
from ryze.bridge.relay.outbound.reorder import ReorderGuard
from ryze.bridge.relay.outbound.webhook import AgentMessage
from ryze.bridge.relay.source_id import wa_id_of
from ryze.bridge.retry import STATUS_UPDATE
from ryze.bridge.store.repositories import OutboundJobRecord
from ryze.chatwoot import ChatwootError
from ryze.chatwoot.port import MessageStatus
from ryze.common.tasks import cancel_and_wait
from ryze.protocol import CommandFrame

log = logging.getLogger(__name__)

# Conversations whose last read mark is remembered (then forgotten all at once: see _mark_read).
_READ_UPTO_MAX = 50_000


def _order(job: OutboundJobRecord) -> tuple[int, int]:
    """Chatwoot's creation order: message id, and a message's revoke after its send."""
    return job.chatwoot_message_id, 0 if job.kind == "send" else 1


class OutboundWorker:
    """Runs an integration's outbound jobs as commands over ``link``, one conversation at a time."""

    def __init__(
        self,
        ctx: RelayContext,
        *,
        link: CommandLink,
        max_lanes: int,
        command_timeout: float,
        reorder_window: float = 0.0,
        mark_read_on_reply: bool = True,
    ) -> None:
        self.ctx = ctx
        self._mark_read_on_reply = mark_read_on_reply
        # per conversation: the agent reply up to which the customer's messages were marked read
        self._read_upto: dict[int, int] = {}
        self.link = link
        self._command_timeout = command_timeout
        self._reorder_window = reorder_window
        self._guard = ReorderGuard(reorder_window)
        # per job: the earlier agent messages it waits for (None: unknown, the whole window)
        self._missing: dict[int, frozenset[int] | None] = {}
        self._arrivals: dict[int, asyncio.Event] = {}  # conversation → set when a job arrives
        # per job: the intent its webhook was parsed into (the worker need not parse it again)
        self._intents: dict[int, JobIntent] = {}
        # per conversation; the jobs not yet started in Chatwoot's creation order (message id)
        self._queues: dict[int, deque[OutboundJobRecord]] = {}
        self._arrived: dict[int, float] = {}  # job id → when its webhook came (monotonic)
        self._started_jobs: set[int] = set()  # job ids whose first attempt began
        self._runners: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._kick = asyncio.Event()
        self._slots = asyncio.Semaphore(max_lanes)
        self._started = False
        # While a catch-up sweep runs (catchup.py) no job starts, so a reply written after a
        # restart does not overtake one written during the outage; bounded by the deadline.
        self._released = asyncio.Event()
        self._released.set()
        self._hold_until = 0.0  # monotonic

    def hold(self, seconds: float) -> None:
        """Start no job until :meth:`release`, or for ``seconds`` at most."""
        self._hold_until = time.monotonic() + seconds
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def _holding(self) -> float:
        """Seconds the hold has left (0: none)."""
        if self._released.is_set():
            return 0.0
        return max(0.0, self._hold_until - time.monotonic())

    def start(self, *, load: bool = True) -> None:
        """Load the jobs left pending by a previous run (once), then run whatever is submitted."""
        if self._started:
            return
        self._started = True
        if not load:
            return
        task = asyncio.create_task(self._load(), name=f"outbound-load-{self.ctx.integration_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load(self) -> None:
        for job in await self.ctx.jobs.pending(self.ctx.integration_id):
            self.submit(job, fresh=False)  # received by a previous run: nothing left to wait for

    def submit(self, job: OutboundJobRecord, *, fresh: bool = True, intent: JobIntent | None = None) -> None:
        """A persisted job (``fresh``: its webhook just came): queue it in its conversation.

        Chatwoot delivers webhooks from Sidekiq jobs run ten at once (``config/sidekiq.yml``), so an
        agent's second message can arrive first. Jobs not yet started are kept in message-id order
        (Chatwoot's creation order; a revoke after the send of its message), and a fresh job waits
        until ``outbound_reorder_window`` has passed since its webhook before it is sent, so a
        lower id arriving within that time goes first — or less, when Chatwoot shows that no
        earlier agent message is still on its way (``reorder.py``). A job already started is never
        overtaken. ``intent``: the job's webhook as the receiver parsed it.
        """
        if not self._started:
            return  # paused: it stays in the database and is loaded on resume
        self._guard.received(
            job.conversation_id,
            job.chatwoot_message_id,
            intent.message.created_at if intent is not None else None,
        )
        arrival = self._arrivals.get(job.conversation_id)
        if arrival is not None:
            arrival.set()  # a runner waiting for an earlier message looks again
        queue = self._queues.setdefault(job.conversation_id, deque())
        if any(queued.id == job.id for queued in queue):
            return
        if intent is not None:
            self._intents[job.id] = intent
        if fresh:
            self._arrived[job.id] = time.monotonic()
        key = _order(job)
        position = len(queue)
        while position > 0:
            before = queue[position - 1]
            if before.id in self._started_jobs or _order(before) <= key:
                break
            position -= 1
        queue.insert(position, job)
        if job.conversation_id not in self._runners:
            task = asyncio.create_task(
                self._run_conversation(job.conversation_id), name=f"outbound-{self.ctx.integration_id}"
            )
            self._runners[job.conversation_id] = task

    def wake(self) -> None:
        """The link is back: jobs waiting out a backoff try again now."""
        self._kick.set()
        self._kick = asyncio.Event()

    async def stop(self) -> None:
        self._started = False
        await cancel_and_wait([*self._runners.values(), *self._tasks])
        self._runners.clear()
        self._tasks.clear()
        self._queues.clear()
        self._arrived.clear()
        self._started_jobs.clear()
        self._missing.clear()
        self._intents.clear()
        self._arrivals.clear()

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def presence(self, intent: TypingIntent) -> None:
        """Relay an agent's typing indicator: best effort, not queued (a stale one is worthless)."""
        if not self.link.connected:
            return
        frame = presence_command(intent, integration_id=self.ctx.integration_id)
        self._best_effort(frame, "typing indicator not relayed")

    def _best_effort(self, frame: CommandFrame, failed: str) -> None:
        task = asyncio.create_task(self._send_once(frame, failed), name=f"outbound-{frame.action}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_once(self, frame: CommandFrame, failed: str) -> None:
        try:
            result = await self.link.command(frame, budget=5.0)
        except LinkUnavailable:
            log.debug(failed, extra={"integration_id": self.ctx.integration_id})
            return
        if not result.ok:
            log.debug(
                failed, extra={"integration_id": self.ctx.integration_id, "error": (result.error or "")[:300]}
            )

    # ------------------------------------------------------------------ scheduling

    async def _run_conversation(self, conversation_id: int) -> None:
        queue = self._queues[conversation_id]
        try:
            while queue:
                job = queue[0]
                held = self._holding() if job.id not in self._started_jobs else 0.0
                if held > 0:
                    try:
                        await asyncio.wait_for(self._released.wait(), held)
                    except TimeoutError:
                        pass  # the sweep took too long: jobs go on as before
                    continue  # the sweep may have queued an earlier message: look again
                if job.id not in self._started_jobs:
                    hold = self._arrived.get(job.id, -1e9) + self._reorder_window
                    if hold > time.monotonic():
                        if not await self._nothing_earlier(job):
                            await self._until_arrival(conversation_id, hold)
                            continue  # a lower message id may have arrived meanwhile: look again
                        if queue[0] is not job:
                            continue  # one arrived during the look-up: it goes first
                    self._started_jobs.add(job.id)
                wait = job.next_attempt_at - time.time()
                if wait > 0:
                    kick = self._kick
                    try:
                        await asyncio.wait_for(kick.wait(), wait)
                    except TimeoutError:
                        pass
                async with self._slots:
                    finished = await self._guarded(job)
                if finished:
                    queue.popleft()
                    self._arrived.pop(job.id, None)
                    self._started_jobs.discard(job.id)
                    self._missing.pop(job.id, None)
                    self._intents.pop(job.id, None)
        finally:
            self._runners.pop(conversation_id, None)
            if not queue:
                self._queues.pop(conversation_id, None)

    async def _nothing_earlier(self, job: OutboundJobRecord) -> bool:
        """Whether the job can go before its hold ends: no earlier agent message of its
        conversation is still on its way (Chatwoot asked once per job, then the answer is kept)."""
        if job.id not in self._missing:
            intent = self._intent(job)
            self._missing[job.id] = (
                None if intent is None else await self._guard.missing(self.ctx.chatwoot(), intent.message)
            )
        missing = self._missing.get(job.id)
        return missing is not None and not self._guard.still_missing(job.conversation_id, missing)

    async def _until_arrival(self, conversation_id: int, deadline: float) -> None:
        """Sleep until a job of the conversation arrives or ``deadline`` (monotonic) passes."""
        arrival = self._arrivals[conversation_id] = asyncio.Event()
        try:
            await asyncio.wait_for(arrival.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass  # the window is over: the job goes, whatever is still missing
        finally:
            if self._arrivals.get(conversation_id) is arrival:
                del self._arrivals[conversation_id]

    def _intent(self, job: OutboundJobRecord) -> JobIntent | None:
        """The job's intent: as the receiver parsed it, else read from the stored webhook."""
        intent = self._intents.get(job.id)
        if intent is None:
            payload: dict[str, Any] = orjson.loads(job.payload)
            intent = job_intent(job.kind, payload)
        return intent

    async def _guarded(self, job: OutboundJobRecord) -> bool:
        try:
            return await self._process(job)
        except asyncio.CancelledError:
            raise
        except Exception:  # never lose the job: it stays pending and is retried
            self.ctx.metrics.failed("cw_to_wa", "internal")
            log.exception(
                "outbound job crashed", extra={"integration_id": self.ctx.integration_id, "job_id": job.id}
            )
            return await self._retry(job, "internal error", counted=True)

    # ------------------------------------------------------------------ one job

    async def _process(self, job: OutboundJobRecord) -> bool:
        """Run the job's remaining parts; True when it is finished (done or failed)."""
        intent = self._intent(job)
        # the customer's messages this reply answers: carried by the send itself when RyzeAPI
        # executes a send's markRead, else marked by a command of their own once it is out
        read_after = self._read_after(intent.message) if isinstance(intent, SendIntent) else None
        carried: tuple[str, ...] = ()
        if (
            read_after is not None
            and isinstance(intent, SendIntent)
            and self.link.marks_read_on_send
            and not (intent.message.chat or "").endswith("@g.us")  # a group's marks name each author
        ):
            carried = tuple(wa_id for wa_id, _ in await self._unread(intent.message, read_after))
        try:
            if intent is None:
                raise PermanentFailure("the stored webhook is not a message webhook")
            commands = await self._commands(intent, mark_read=carried)
        except PermanentFailure as exc:
            await self._fail(job, str(exc))
            return True
        ctx = self.ctx
        for part in range(job.parts_done, len(commands)):
            frame = commands[part]
            try:
                result = await self.link.command(frame, budget=self._command_timeout)
            except LinkUnavailable as exc:
                ctx.metrics.failed("cw_to_wa", "link_down")
                return await self._retry(job, str(exc), counted=self.link.connected)
            if not result.ok:
                ctx.metrics.failed("cw_to_wa", "ryzeapi_error")
                reason = result.error or "WhatsApp refused the message"
                if result.retryable:
                    return await self._retry(job, reason, counted=True)
                await self._fail(job, reason)
                return True
            if isinstance(intent, SendIntent) and result.wa_message_id:
                await ctx.messages.record(
                    ctx.integration_id,
                    wa_message_id=result.wa_message_id,
                    part=part,
                    chatwoot_message_id=job.chatwoot_message_id,
                    conversation_id=job.conversation_id,
                    chat_jid=intent.message.chat or "",
                    direction="out",
                )
            job.parts_done = part + 1
            if job.parts_done < len(commands):  # progress of a multi-part message survives a restart
                await ctx.jobs.update(job.id, parts_done=job.parts_done)
        await ctx.jobs.finish(job.id, "done")
        ctx.metrics.relayed("cw_to_wa")
        # debug, like the inbound side: one JSON line per message was ≈ 3 % of the bridge's CPU
        # under load, and ryze_bridge_messages_relayed already counts them (failures stay at INFO+)
        log.debug(
            "agent message relayed",
            extra={
                "integration_id": ctx.integration_id,
                "chatwoot_message_id": job.chatwoot_message_id,
                "parts": len(commands),
            },
        )
        if isinstance(intent, SendIntent) and intent.message.status == "failed":
            # caught up (catchup.py): Chatwoot shows it failed since its webhook could not be
            # delivered; sent now, so it says so (and drops the external_error)
            await self._set_status(job, "sent", None)
        if isinstance(intent, SendIntent) and read_after is not None:
            self._read_upto[intent.message.conversation_id] = intent.message.id
            if carried:
                self._forget_read(intent.message)
            else:
                self._mark_read(intent.message, read_after)
        return True

    async def _commands(self, intent: JobIntent, *, mark_read: tuple[str, ...] = ()) -> list[CommandFrame]:
        """The intent's converter, with what it needs looked up in the bridge's store."""
        integration_id = self.ctx.integration_id
        if isinstance(intent, RevokeIntent):
            mapped = await self.ctx.messages.find_chatwoot(integration_id, intent.message.id)
            sent = [(m.part, m.wa_message_id) for m in mapped if m.direction == "out"]
            return revoke_commands(intent, integration_id=integration_id, sent=sent)
        return send_commands(
            intent,
            integration_id=integration_id,
            sign_messages=self.ctx.record.sign_messages,
            reply_to=await self._reply_to(intent.message),
            mark_read=mark_read,
        )

    async def _reply_to(self, message: AgentMessage) -> str | None:
        """The WhatsApp id of the message an agent quoted (``content_attributes.in_reply_to``)."""
        quoted = wa_id_of(message.in_reply_to_external_id)
        if quoted is not None:
            return quoted
        if message.in_reply_to is not None:
            mapped = await self.ctx.messages.find_chatwoot(self.ctx.integration_id, message.in_reply_to)
            if mapped:
                return mapped[0].wa_message_id
        return None

    def _read_after(self, message: AgentMessage) -> int | None:
        """The agent reply up to which the customer's messages are already read, when ``message``
        (an agent's reply) has customer messages after it to mark; None when there is nothing to.

        An agent answered: the customer's messages before the reply are read on WhatsApp (blue
        ticks), as when a person replies on the phone. Only the messages relayed since the previous
        reply in this conversation are looked up (``_read_upto``, kept in memory: after a restart
        the last ones are marked again, which WhatsApp takes as a no-op). In a group a read receipt
        names each message's author (the mapping's ``sender_jid``): one ``mark_read`` per sender.
        """
        chat = message.chat
        if not self._mark_read_on_reply or chat is None:
            return None
        conversation_id = message.conversation_id
        first = conversation_id not in self._read_upto
        after = self._read_upto.get(conversation_id, 0)
        if message.id <= after:
            return None
        latest = self.ctx.messages.latest_inbound(self.ctx.integration_id, conversation_id)
        if not first and (latest is None or latest <= after):
            # nothing came in since the previous reply (as far as this process relayed): no
            # look-up, which would cost a query for every agent message of a busy conversation
            self._read_upto[conversation_id] = message.id
            return None
        if len(self._read_upto) >= _READ_UPTO_MAX:
            self._read_upto.clear()  # bounded memory; forgetting only re-marks read messages
        return after

    async def _unread(self, message: AgentMessage, after: int) -> tuple[tuple[str, str], ...]:
        """(WhatsApp id, sender) of the customer's messages relayed between ``after`` and the reply."""
        try:
            unread = await self.ctx.messages.inbound_between(
                self.ctx.integration_id, message.conversation_id, after=after, before=message.id, limit=100
            )
        except Exception:
            log.warning(
                "could not look up the messages to mark read",
                exc_info=True,
                extra={"integration_id": self.ctx.integration_id},
            )
            return ()
        return tuple(unread)

    def _mark_read(self, message: AgentMessage, after: int) -> None:
        """The read marks as a command of their own (RyzeAPI does not take them on a send):
        best effort, after the reply is out and off the conversation's runner."""
        chat = message.chat
        if chat is None:
            return
        task = asyncio.create_task(self._send_read(chat, message, after), name="outbound-mark-read")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget_read(self, message: AgentMessage) -> None:
        """The customer's messages before the reply are marked: the store need not remember them."""
        self.ctx.messages.forget_inbound(self.ctx.integration_id, message.conversation_id, before=message.id)

    async def _send_read(self, chat: str, message: AgentMessage, after: int) -> None:
        unread = await self._unread(message, after)
        self._forget_read(message)
        if not unread or not self.link.connected:
            return
        intent = MarkReadIntent(
            chat,
            message.conversation_id,
            message.id,
            tuple(wa_id for wa_id, _ in unread),
            tuple(sender for _, sender in unread),
        )
        for frame in mark_read_commands(intent, integration_id=self.ctx.integration_id):
            await self._send_once(frame, "mark read failed")

    # ------------------------------------------------------------------ outcomes

    async def _retry(self, job: OutboundJobRecord, reason: str, *, counted: bool) -> bool:
        """Schedule another attempt (False), or give up after ``max_attempts`` counted ones (True)."""
        retry = self.ctx.retry
        attempts = job.attempts + (1 if counted else 0)
        if retry.exhausted(attempts):
            await self._fail(job, reason)
            return True
        delay = retry.backoff(job.attempts)
        job.attempts, job.next_attempt_at, job.last_error = attempts, time.time() + delay, reason[:2000]
        await self.ctx.jobs.update(
            job.id, attempts=attempts, next_attempt_at=job.next_attempt_at, last_error=job.last_error
        )
        log.info(
            "outbound job will be retried",
            extra={
                "integration_id": self.ctx.integration_id,
                "job_id": job.id,
                "attempts": attempts,
                "error": reason[:300],
            },
        )
        return False

    async def _fail(self, job: OutboundJobRecord, reason: str) -> None:
        self.ctx.metrics.failed("cw_to_wa", "gave_up")
        await self.ctx.jobs.finish(job.id, "failed", reason)
        log.warning(
            "agent message failed",
            extra={
                "integration_id": self.ctx.integration_id,
                "chatwoot_message_id": job.chatwoot_message_id,
                "error": reason[:300],
            },
        )
        if job.kind == "send":
            await self._set_status(job, "failed", reason[:1000])

    async def _set_status(self, job: OutboundJobRecord, status: MessageStatus, error: str | None) -> None:
        """The Chatwoot message's status PATCH (retried a bounded number of times)."""
        for attempt in range(STATUS_UPDATE.max_attempts):
            try:
                await self.ctx.chatwoot().update_message_status(
                    job.conversation_id, job.chatwoot_message_id, status, external_error=error
                )
                return
            except ChatwootError as exc:
                if not exc.retryable:
                    log.warning(
                        "could not update the Chatwoot message's status",
                        extra={
                            "integration_id": self.ctx.integration_id,
                            "status": status,
                            "error": str(exc)[:300],
                        },
                    )
                    return
                await asyncio.sleep(STATUS_UPDATE.backoff(attempt))
        log.warning(
            "could not update the Chatwoot message's status (retries exhausted)",
            extra={"integration_id": self.ctx.integration_id, "status": status},
        )
