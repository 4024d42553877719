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
import uuid
from collections import deque
from typing import Any
from urllib.parse import unquote, urlparse

import orjson

from ryze.bridge.link.client import LinkUnavailable
from ryze.bridge.relay.context import CommandLink, RelayContext
from ryze.bridge.relay.markdown import chatwoot_to_whatsapp
from ryze.bridge.relay.outbound.format import agent_name, sign
from ryze.bridge.relay.outbound.shapes import as_dict, as_int
from ryze.bridge.relay.source_id import wa_id_of
from ryze.bridge.retry import STATUS_UPDATE
from ryze.bridge.store.repositories import OutboundJobRecord
from ryze.chatwoot import ChatwootError
from ryze.common.tasks import cancel_and_wait
from ryze.protocol import (
    CommandAction,
    CommandFrame,
    PresenceParams,
    RevokeParams,
    SendMediaParams,
    SendTextParams,
)

log = logging.getLogger(__name__)

_MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio"}


class PermanentFailure(Exception):
    """The job cannot succeed (no target chat, nothing to send, refused by WhatsApp)."""


def command_id(integration_id: str, chatwoot_message_id: int, part: int, *, kind: str = "send") -> str:
    prefix = "cw" if kind == "send" else f"cw{kind}"
    return f"{prefix}-{integration_id}-{chatwoot_message_id}-{part}"


# The JID servers a WhatsApp chat can live on: a phone-number user, a LID user, a group.
_JID_SERVERS = ("@s.whatsapp.net", "@lid", "@g.us")


def is_whatsapp_jid(value: object) -> bool:
    if not isinstance(value, str) or "@" not in value:
        return False
    user, _, server = value.partition("@")
    return bool(user) and ("@" + server) in _JID_SERVERS


def whatsapp_target(contact_inbox: dict[str, Any], contact: dict[str, Any]) -> str | None:
    """The WhatsApp chat of a Chatwoot conversation, from its contact inbox and contact.

    ``source_id`` is the chat's JID when the bridge created the contact inbox, but when an agent
    starts a conversation with a contact that has no contact inbox in our inbox, Chatwoot makes one
    with ``source_id = SecureRandom.uuid`` (app/services/contacts/contactable_inboxes_service.rb):
    such a source is no WhatsApp address. Then the contact's identifier (a JID, as the bridge sets
    it), else its phone number (E.164, validated by Chatwoot's Contact model).
    """
    source_id = contact_inbox.get("source_id")
    if is_whatsapp_jid(source_id):
        return str(source_id)
    identifier = contact.get("identifier")
    if is_whatsapp_jid(identifier):
        return str(identifier)
    phone = contact.get("phone_number")
    if isinstance(phone, str) and phone.startswith("+") and phone[1:].isdigit() and len(phone) > 2:
        return phone[1:] + "@s.whatsapp.net"
    return None


def target_chat(payload: dict[str, Any]) -> str | None:
    # as_dict: a field of another type reads as absent (never an AttributeError, never a misread)
    conversation = as_dict(payload.get("conversation"))
    contact_inbox = as_dict(conversation.get("contact_inbox"))
    sender = as_dict(as_dict(conversation.get("meta")).get("sender"))
    return whatsapp_target(contact_inbox, sender)


# Voice notes WhatsApp plays as such are OGG/Opus (what neonize/whatsmeow send as PTT).
_VOICE_CONTENT_TYPES = ("audio/ogg", "audio/opus")
_VOICE_EXTENSIONS = ("ogg", "oga", "opus")


def is_voice_note(attachment: dict[str, Any]) -> bool:
    """Send an audio attachment as a WhatsApp voice note (PTT)?

    Chatwoot's webhook attachment (``Attachment#push_event_data``, app/models/attachment.rb) has no
    ``meta`` key, so the ``is_recorded_audio`` / ``is_voice_message`` flag an upload may carry is never
    seen; what is there is ``file_type``, ``content_type``, ``extension`` and the ``data_url``. An
    OGG/Opus audio is what a voice note is on WhatsApp, so it goes as one; other audio (the MP3 the
    dashboard records for API inboxes, say) goes as an audio file, which WhatsApp plays everywhere.
    A ``meta`` flag, where a fork or an older version sends one, is still honoured.
    """
    if attachment.get("file_type") != "audio":
        return False
    meta = attachment.get("meta")
    if isinstance(meta, dict) and (meta.get("is_voice_message") or meta.get("is_recorded_audio")):
        return True
    content_type = str(attachment.get("content_type") or "").split(";", 1)[0].strip().lower()
    if content_type in _VOICE_CONTENT_TYPES:
        return True
    extension = str(attachment.get("extension") or "").lower()
    if not extension:
        name = _file_name(str(attachment.get("data_url") or "")) or ""
        extension = name.rsplit(".", 1)[1].lower() if "." in name else ""
    return extension in _VOICE_EXTENSIONS


def _order(job: OutboundJobRecord) -> tuple[int, int]:
    """Chatwoot's creation order: message id, and a message's revoke after its send."""
    return job.chatwoot_message_id, 0 if job.kind == "send" else 1


def _file_name(url: str) -> str | None:
    path = urlparse(url).path
    name = unquote(path.rsplit("/", 1)[-1]) if path else ""
    return name or None


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
    ) -> None:
        self.ctx = ctx
        self.link = link
        self._command_timeout = command_timeout
        self._reorder_window = reorder_window
        # per conversation; the jobs not yet started in Chatwoot's creation order (message id)
        self._queues: dict[int, deque[OutboundJobRecord]] = {}
        self._arrived: dict[int, float] = {}  # job id → when its webhook came (monotonic)
        self._started_jobs: set[int] = set()  # job ids whose first attempt began
        self._runners: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._kick = asyncio.Event()
        self._slots = asyncio.Semaphore(max_lanes)
        self._started = False

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

    def submit(self, job: OutboundJobRecord, *, fresh: bool = True) -> None:
        """A persisted job (``fresh``: its webhook just came): queue it in its conversation.

        Chatwoot delivers webhooks from Sidekiq jobs run ten at once (``config/sidekiq.yml``), so an
        agent's second message can arrive first. Jobs not yet started are kept in message-id order
        (Chatwoot's creation order; a revoke after the send of its message), and a fresh job waits
        until ``outbound_reorder_window`` has passed since its webhook before it is sent, so a
        lower id arriving within that time goes first. A job already started is never overtaken.
        """
        if not self._started:
            return  # paused: it stays in the database and is loaded on resume
        queue = self._queues.setdefault(job.conversation_id, deque())
        if any(queued.id == job.id for queued in queue):
            return
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

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def presence(self, chat: str, state: str) -> None:
        """Relay an agent's typing indicator: best effort, not queued (a stale one is worthless)."""
        if not self.link.connected:
            return
        frame = CommandFrame(
            id=f"cwpresence-{self.ctx.integration_id}-{uuid.uuid4().hex}",
            action=CommandAction.PRESENCE,
            params=PresenceParams(chat=chat, state=state).model_dump(),
        )
        task = asyncio.create_task(self._presence(frame), name=f"presence-{self.ctx.integration_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _presence(self, frame: CommandFrame) -> None:
        try:
            await self.link.command(frame, budget=5.0)
        except LinkUnavailable:
            log.debug("typing indicator not relayed", extra={"integration_id": self.ctx.integration_id})

    # ------------------------------------------------------------------ scheduling

    async def _run_conversation(self, conversation_id: int) -> None:
        queue = self._queues[conversation_id]
        try:
            while queue:
                job = queue[0]
                if job.id not in self._started_jobs:
                    hold = self._arrived.get(job.id, -1e9) + self._reorder_window
                    if hold > time.monotonic():
                        await asyncio.sleep(hold - time.monotonic())
                        continue  # a lower message id may have arrived meanwhile: look again
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
        finally:
            self._runners.pop(conversation_id, None)
            if not queue:
                self._queues.pop(conversation_id, None)

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
        payload: dict[str, Any] = orjson.loads(job.payload)
        try:
            commands = await self._commands(job, payload)
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
            if job.kind == "send" and result.wa_message_id:
                await ctx.messages.record(
                    ctx.integration_id,
                    wa_message_id=result.wa_message_id,
                    part=part,
                    chatwoot_message_id=job.chatwoot_message_id,
                    conversation_id=job.conversation_id,
                    chat_jid=str(frame.params.get("to") or frame.params.get("chat") or ""),
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
        return True

    async def _commands(self, job: OutboundJobRecord, payload: dict[str, Any]) -> list[CommandFrame]:
        chat = target_chat(payload)
        if chat is None:
            raise PermanentFailure(
                "the conversation has no WhatsApp chat: its contact_inbox source_id is not a WhatsApp "
                "JID (an agent-started conversation) and the contact has no WhatsApp identifier or "
                "phone number"
            )
        if job.kind == "revoke":
            mapped = await self.ctx.messages.find_chatwoot(self.ctx.integration_id, job.chatwoot_message_id)
            return [
                CommandFrame(
                    id=command_id(self.ctx.integration_id, job.chatwoot_message_id, m.part, kind="revoke"),
                    action=CommandAction.REVOKE,
                    params=RevokeParams(chat=chat, messageId=m.wa_message_id).model_dump(exclude_none=True),
                )
                for m in mapped
                if m.direction == "out"
            ]
        content = payload.get("content")
        text = chatwoot_to_whatsapp(content if isinstance(content, str) else "")
        if self.ctx.record.sign_messages:
            text = sign(text, agent_name(payload))
        reply_to = await self._reply_to(payload)
        listed = payload.get("attachments")
        attachments = [
            a
            for a in (listed if isinstance(listed, list) else [])
            if isinstance(a, dict) and isinstance(a.get("data_url"), str) and a["data_url"]
        ]
        frames: list[CommandFrame] = []
        if not attachments:
            if not text.strip():
                raise PermanentFailure("the message has no text and no attachment")
            frames.append(
                CommandFrame(
                    id=command_id(self.ctx.integration_id, job.chatwoot_message_id, 0),
                    action=CommandAction.SEND_TEXT,
                    params=SendTextParams(to=chat, text=text, replyTo=reply_to).model_dump(exclude_none=True),
                )
            )
            return frames
        for index, attachment in enumerate(attachments):
            url = str(attachment["data_url"])
            media_type = _MEDIA_TYPES.get(str(attachment.get("file_type")), "document")
            params = SendMediaParams(
                to=chat,
                mediaType=media_type,
                url=url,
                mimetype=attachment.get("content_type") or None,
                fileName=_file_name(url),
                caption=(text or None) if index == 0 else None,
                isVoice=is_voice_note(attachment),
                replyTo=reply_to if index == 0 else None,
            )
            frames.append(
                CommandFrame(
                    id=command_id(self.ctx.integration_id, job.chatwoot_message_id, index),
                    action=CommandAction.SEND_MEDIA,
                    params=params.model_dump(exclude_none=True),
                )
            )
        return frames

    async def _reply_to(self, payload: dict[str, Any]) -> str | None:
        attributes = as_dict(payload.get("content_attributes"))
        external = attributes.get("in_reply_to_external_id")
        quoted = wa_id_of(external)
        if quoted is not None:
            return quoted
        internal = as_int(attributes.get("in_reply_to"))  # `true` is not message 1
        if internal is not None:
            mapped = await self.ctx.messages.find_chatwoot(self.ctx.integration_id, internal)
            if mapped:
                return mapped[0].wa_message_id
        return None

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
        if job.kind != "send":
            return
        for attempt in range(STATUS_UPDATE.max_attempts):
            try:
                await self.ctx.chatwoot().update_message_status(
                    job.conversation_id, job.chatwoot_message_id, "failed", external_error=reason[:1000]
                )
                return
            except ChatwootError as exc:
                if not exc.retryable:
                    log.warning(
                        "could not mark the Chatwoot message failed",
                        extra={"integration_id": self.ctx.integration_id, "error": str(exc)[:300]},
                    )
                    return
                await asyncio.sleep(STATUS_UPDATE.backoff(attempt))
        log.warning(
            "could not mark the Chatwoot message failed (retries exhausted)",
            extra={"integration_id": self.ctx.integration_id},
        )
