"""The catch-up sweep: agent messages whose webhook never reached the bridge are sent after all.

Chatwoot posts each webhook once and never retries (``lib/webhooks/trigger.rb``): when the POST
raises, ``Webhooks::Trigger#handle_error`` → ``update_message_status`` runs
``Messages::StatusUpdateService.new(message, 'failed', error.message)`` for an API inbox's
``message_created`` / ``message_updated``, so the agent's message shows *failed* with
``content_attributes.external_error`` = the exception's text ("Failed to open TCP connection to
…" for a bridge that is down, "500 Internal Server Error" for one that could not store the job).
Nothing else would ever send such a message.

So when an integration starts (a bridge restart), and after the webhook route could not store a
webhook, the bridge lists the inbox's recent conversations (``GET …/conversations?inbox_id=&
status=all``, latest activity first: app/finders/conversation_finder.rb) and their latest messages,
and enqueues every agent message created since shortly before the last webhook it saw
(``bridge_integrations.last_webhook_at``; never further back than ``BRIDGE_CATCHUP_WINDOW``)
that is *failed* by a delivery error — not by a 400/413 the bridge answered on purpose — or still
*sent* (its webhook never came, or is still on its way), exactly as if its webhook had arrived:
the same job table and key (integration, Chatwoot message id, kind), so whichever of the sweep
and a late webhook comes second is the duplicate and is dropped. Jobs go in Chatwoot id order per
conversation; while a sweep runs the worker starts no new job (bounded), so a reply written after
the restart does not overtake one written during the outage. When the send succeeds, the worker's
status PATCH moves the message from failed to sent (Messages::StatusUpdateService accepts any
status but read → delivered), which also clears ``external_error``.

Bounded: at most ``max_pages`` pages of conversations (25 each), stopping at the first whose last
activity is before the sweep's start point, and at most ``message_pages`` pages (20 each) of
messages per conversation; a failed sweep is tried again a bounded number of times.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ryze.bridge.relay.outbound import shapes
from ryze.bridge.relay.outbound.filters import SendIntent, classify
from ryze.bridge.relay.source_id import WAID_PREFIX
from ryze.bridge.store.repositories import OutboundJobRecord
from ryze.chatwoot import ChatwootNotFound
from ryze.chatwoot.models import ConversationSummary, ListedMessage
from ryze.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CONVERSATION_PAGE = 25  # ConversationFinder's page size (app/finders/conversation_finder.rb)
MESSAGE_PAGE = 20  # MessageFinder's page for ``before`` alone (app/finders/message_finder.rb)
# REST views give message_type as its number (``message_type_before_type_cast``), webhooks its name
_SENDABLE = {1: "outgoing", 3: "template", "outgoing": "outgoing", "template": "template"}
# A webhook the bridge answered 400 (a shape it cannot act on) or 413 (too large) was refused on
# purpose: RestClient's message for it is "<code> <reason>". A 404 is not: the bridge answers it
# while an integration's runtime is not loaded (starting, stopping), and a 401 comes of a secret
# reset the bridge had not learnt yet; the sweep reads the message from Chatwoot itself.
_REFUSED = re.compile(r"^\s*(?:400|413)\b")
_SAVE_EVERY = 10.0  # seconds between writes of last_webhook_at (the hottest route must not write)
_ATTEMPTS = 12  # a sweep that fails (Chatwoot or storage down) is tried again this many times
_BACKOFF_MAX = 10.0
FOLLOW_UP = 10.0  # seconds after the start-up sweep for the last of its follow-ups (see start)


class CatchupChatwoot(Protocol):
    """What the sweep asks of Chatwoot (``ryze.chatwoot.ChatwootClient``)."""

    async def list_conversations(self, inbox_id: int, *, page: int) -> list[ConversationSummary]: ...

    async def list_messages_detailed(
        self, conversation_id: int, *, before: int | None = None
    ) -> list[ListedMessage]: ...


class CatchupJobs(Protocol):
    """The outbound job table's enqueue (``OutboundRepository``): the webhook's own idempotency."""

    async def enqueue(
        self, integration_id: str, chatwoot_message_id: int, conversation_id: int, kind: str, payload: str
    ) -> OutboundJobRecord | None: ...


class CatchupWorker(Protocol):
    """The outbound worker's side: hold new jobs while a sweep runs, and take the swept ones."""

    def hold(self, seconds: float) -> None: ...

    def release(self) -> None: ...

    def submit(
        self, job: OutboundJobRecord, *, fresh: bool = True, intent: SendIntent | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class CatchupLimits:
    window: float  # seconds looked back at most (0: no sweep)
    max_pages: int  # pages of conversations
    message_pages: int = 5  # pages of messages per conversation
    # seconds before the last webhook seen: last_webhook_at is written every few seconds, and
    # Chatwoot's clock (messages' created_at) may differ a little from the bridge's
    margin: float = 60.0
    hold: float = 30.0  # the worker starts no new job for at most this long while a sweep runs


def wanted(message: ListedMessage, since: float) -> bool:
    """An agent message the bridge should have received and sent, created at or after ``since``."""
    if message.private or message.message_type not in _SENDABLE:
        return False
    if message.source_id is not None and message.source_id.startswith(WAID_PREFIX):
        return False  # the bridge's own mirror of a message sent from the phone
    if message.content_attributes.get("deleted") is True:
        return False  # deleted by the agent: nothing to send
    if message.created_at is None or message.created_at + 1 <= since:  # REST: whole seconds
        return False
    if message.status == "failed":
        error = message.content_attributes.get("external_error")
        return not (isinstance(error, str) and _REFUSED.match(error))
    return message.status == "sent"


def webhook_of(
    message: ListedMessage, conversation: ConversationSummary, *, inbox_id: int, chat: str | None
) -> dict[str, Any]:
    """The ``message_created`` webhook Chatwoot would have posted (``Message#webhook_data``), as
    far as the bridge reads it (``webhook.parse_message``)."""
    payload: dict[str, Any] = {
        "event": "message_created",
        "id": message.id,
        "content": message.content,
        "content_type": message.content_type or "text",
        "content_attributes": message.content_attributes,
        "created_at": message.created_at,
        "message_type": _SENDABLE[message.message_type] if message.message_type is not None else None,
        "private": False,
        "status": message.status,
        "source_id": message.source_id,
        "attachments": message.attachments,
        "conversation": {
            "id": conversation.id,
            "meta": {"sender": shapes.as_dict(conversation.meta.get("sender"))},
            # the bridge's own record of the conversation's chat first (the webhook's source_id)
            "contact_inbox": {"source_id": chat} if chat else {},
        },
        "inbox": {"id": inbox_id},
        "catch_up": True,  # not Chatwoot's: says in the stored job where it came from
    }
    if message.sender is not None:
        payload["sender"] = message.sender
    return payload


class CatchupSweep:
    """One integration's sweep: run at start, again when asked, never two at once."""

    def __init__(
        self,
        *,
        integration_id: str,
        inbox_id: int,
        created_at: float,
        last_seen: float,
        chatwoot: Callable[[], CatchupChatwoot],
        jobs: CatchupJobs,
        worker: CatchupWorker,
        chat_of: Callable[[int], Awaitable[str | None]],
        is_control: Callable[[int], Awaitable[bool]],
        save_seen: Callable[[float], Awaitable[None]],
        limits: CatchupLimits,
    ) -> None:
        self.integration_id = integration_id
        self._inbox_id = inbox_id
        self._created_at = created_at
        self._chatwoot = chatwoot
        self._jobs = jobs
        self._worker = worker
        self._chat_of = chat_of
        self._is_control = is_control
        self._save_seen = save_seen
        self.limits = limits
        self._seen_at = last_seen  # the last webhook received (memory)
        self._saved_at = last_seen  # … as written to the database
        self._since: float | None = None  # the start point of the sweep that is due (None: none)
        self._running: float | None = None  # … of the sweep running now
        self._follow_up: float | None = None  # the start point of the follow-up sweeps still due
        self._first_seen = False  # a verified webhook came since start (the route answers)
        self._wanted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.last_enqueued = 0  # messages the last sweep enqueued (logs, tests)
        self.sweeps = 0  # sweeps completed

    @property
    def enabled(self) -> bool:
        return self.limits.window > 0

    def seen(self) -> None:
        """A verified webhook of the inbox was received (the webhook route: memory only)."""
        self._seen_at = time.time()
        if not self._first_seen and self._follow_up is not None:
            self._first_seen = True
            self._due(self._follow_up)

    def request(self) -> None:
        """The webhook route could not store a webhook: Chatwoot marks its message failed, so
        sweep from now on (once storage works again: a failing sweep is tried again)."""
        if not self.enabled or not self._tasks:
            return
        self._due(time.time() - self.limits.margin)

    def start(self, *, delay: float = 0.0) -> None:
        """Sweep since the last webhook seen, after ``delay`` seconds (the start-up spread of many
        integrations, as their links: not every inbox listed at once)."""
        if not self.enabled or self._tasks:
            return
        now = time.time()
        since = max(now - self.limits.window, self._saved_at - self.limits.margin, self._created_at - 1)
        self._due(since, hold=delay + self.limits.hold)
        # The start-up sweep runs while the HTTP server may not listen yet: a message written
        # after its listing and before the route answers fails too, and so may a webhook on a
        # connection to the process that was (a client's keep-alive pool). Sweeps from the start
        # cover that: one once the route is shown to work (its first verified webhook, which
        # waits for it) and one FOLLOW_UP seconds after the start, whatever came.
        self._follow_up = now + delay - self.limits.margin
        self._first_seen = False
        self._tasks = [
            asyncio.create_task(self._run(delay), name=f"catchup-{self.integration_id}"),
            asyncio.create_task(self._save_loop(), name=f"catchup-seen-{self.integration_id}"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        self._follow_up = None
        await cancel_and_wait(tasks)
        self._worker.release()
        await self._flush()

    def _due(self, since: float, *, hold: float | None = None) -> None:
        self._since = since if self._since is None else min(self._since, since)
        self._worker.hold(self.limits.hold if hold is None else hold)
        self._wanted.set()

    # ------------------------------------------------------------------ last webhook seen

    def _point(self) -> float:
        """What may be written as last_webhook_at: never past the start of a sweep still due, so
        a bridge killed before it ran sweeps from there on its next start."""
        pending = [at + self.limits.margin for at in (self._since, self._running) if at is not None]
        return min([self._seen_at, *pending])

    async def _flush(self) -> None:
        point = self._point()
        if point > self._saved_at:
            await self._save_seen(point)
            self._saved_at = point

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(_SAVE_EVERY)
            try:
                await self._flush()
            except Exception:  # storage down: written on a later round (or by the next sweep)
                log.warning(
                    "could not save the last webhook time",
                    extra={"integration_id": self.integration_id},
                    exc_info=True,
                )

    # ------------------------------------------------------------------ sweeping

    def _follow_up_now(self) -> None:
        since, self._follow_up = self._follow_up, None
        self._first_seen = True
        if since is not None:
            self._due(since)

    async def _run(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        follow_up_at = time.monotonic() + FOLLOW_UP
        while True:
            wait = follow_up_at - time.monotonic() if self._follow_up is not None else None
            try:
                await asyncio.wait_for(self._wanted.wait(), wait)
            except TimeoutError:
                self._follow_up_now()
            self._wanted.clear()
            since, self._since = self._since, None
            if since is None:
                continue
            self._running = since
            try:
                await self._sweep_with_retries(since)
            finally:
                self._running = None
            if self._since is None:
                self._worker.release()

    async def _sweep_with_retries(self, since: float) -> None:
        delay = 1.0
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self.last_enqueued = await self.sweep(since)
            except asyncio.CancelledError:
                raise
            except Exception:  # Chatwoot or storage still failing: tried again, bounded
                log.warning(
                    "catch-up sweep failed",
                    extra={"integration_id": self.integration_id, "attempt": attempt},
                    exc_info=True,
                )
                self._worker.hold(self.limits.hold)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            self.sweeps += 1
            return
        log.error(
            "catch-up sweep given up: agent messages written meanwhile may stay failed",
            extra={"integration_id": self.integration_id, "since": since},
        )

    async def sweep(self, since: float) -> int:
        """Enqueue the agent messages created since ``since`` that the bridge never received;
        the number enqueued (a message with a job already is not counted)."""
        started = time.monotonic()
        client = self._chatwoot()
        enqueued = scanned = 0
        for page in range(1, self.limits.max_pages + 1):
            rows = await client.list_conversations(self._inbox_id, page=page)
            older = False
            for conversation in rows:
                if conversation.last_activity_at is not None and conversation.last_activity_at + 1 <= since:
                    older = True  # latest activity first: every later one is older still
                    break
                if conversation.inbox_id not in (None, self._inbox_id):
                    continue
                if await self._is_control(conversation.id):
                    continue  # the connection conversation: agents' commands, never WhatsApp sends
                scanned += 1
                enqueued += await self._conversation(client, conversation, since)
            if older or len(rows) < CONVERSATION_PAGE:
                break
        log.info(
            "catch-up sweep done",
            extra={
                "integration_id": self.integration_id,
                "conversations": scanned,
                "enqueued": enqueued,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return enqueued

    async def _conversation(
        self, client: CatchupChatwoot, conversation: ConversationSummary, since: float
    ) -> int:
        found: dict[int, ListedMessage] = {}
        before: int | None = None
        try:
            for _ in range(self.limits.message_pages):
                rows = await client.list_messages_detailed(conversation.id, before=before)
                found.update((m.id, m) for m in rows if wanted(m, since))
                if len(rows) < MESSAGE_PAGE:
                    break
                oldest = min(rows, key=lambda m: m.id)
                if oldest.created_at is not None and oldest.created_at + 1 <= since:
                    break
                before = oldest.id
        except ChatwootNotFound:
            log.info(
                "conversation gone before the catch-up sweep read it",
                extra={"integration_id": self.integration_id, "conversation_id": conversation.id},
            )
            return 0
        if not found:
            return 0
        chat = await self._chat_of(conversation.id)
        count = 0
        for message_id in sorted(found):  # Chatwoot's creation order
            payload = webhook_of(found[message_id], conversation, inbox_id=self._inbox_id, chat=chat)
            intent = classify(payload)
            if not isinstance(intent, SendIntent):
                continue
            job = await self._jobs.enqueue(
                self.integration_id, message_id, conversation.id, intent.kind, orjson.dumps(payload).decode()
            )
            if job is None:
                continue  # its webhook came (or an earlier sweep took it): already the bridge's
            log.info(
                "agent message caught up",
                extra={
                    "integration_id": self.integration_id,
                    "conversation_id": conversation.id,
                    "chatwoot_message_id": message_id,
                },
            )
            self._worker.submit(job, fresh=False, intent=intent)
            count += 1
        return count
