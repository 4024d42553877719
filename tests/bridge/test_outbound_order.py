"""The outbound worker's order within one conversation (Chatwoot delivers webhooks concurrently,
``config/sidekiq.yml``): jobs not yet started run in message-id order, a fresh job waits out the
reorder window so a lower id arriving meanwhile goes first, and a started job is never overtaken."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import orjson

from ryze.bridge.relay.outbound.filters import SendIntent, classify
from ryze.bridge.relay.outbound.worker import OutboundWorker
from ryze.bridge.store.repositories import OutboundJobRecord
from ryze.chatwoot import ChatwootUnreachable
from ryze.chatwoot.models import Message

from .conftest import eventually


class RecordingWorker(OutboundWorker):
    """Runs no command: records which job ran, optionally held until released."""

    def __init__(self, window: float) -> None:
        super().__init__(
            SimpleNamespace(integration_id="int-1"),  # type: ignore[arg-type]
            link=SimpleNamespace(),  # type: ignore[arg-type]
            max_lanes=4,
            command_timeout=1.0,
            reorder_window=window,
        )
        self.ran: list[tuple[int, str]] = []
        self.gate: asyncio.Event | None = None

    async def _guarded(self, job: OutboundJobRecord) -> bool:
        self.ran.append((job.chatwoot_message_id, job.kind))
        if self.gate is not None:
            await self.gate.wait()
        return True


def job(job_id: int, message_id: int, kind: str = "send") -> OutboundJobRecord:
    return OutboundJobRecord(
        id=job_id,
        integration_id="int-1",
        chatwoot_message_id=message_id,
        conversation_id=3,
        kind=kind,
        payload="{}",
        state="pending",
        attempts=0,
        parts_done=0,
        next_attempt_at=0.0,
        last_error="",
    )


async def test_within_the_window_a_lower_message_id_goes_first() -> None:
    worker = RecordingWorker(window=0.3)
    worker.start(load=False)
    worker.submit(job(1, 30))
    worker.submit(job(2, 20, "revoke"))
    worker.submit(job(3, 10))
    worker.submit(job(4, 20))
    await eventually(lambda: len(worker.ran) == 4)
    assert worker.ran == [(10, "send"), (20, "send"), (20, "revoke"), (30, "send")]
    await worker.stop()


async def test_a_started_job_is_never_overtaken() -> None:
    worker = RecordingWorker(window=0.0)
    worker.gate = asyncio.Event()
    worker.start(load=False)
    worker.submit(job(1, 30))
    await eventually(lambda: worker.ran)  # 30 is being sent
    worker.submit(job(2, 10))  # older, but too late: it goes after
    worker.gate.set()
    await eventually(lambda: len(worker.ran) == 2)
    assert worker.ran == [(30, "send"), (10, "send")]
    await worker.stop()


async def test_jobs_left_by_a_previous_run_do_not_wait() -> None:
    worker = RecordingWorker(window=3600.0)  # a fresh job would wait an hour
    worker.start(load=False)
    worker.submit(job(1, 30), fresh=False)
    worker.submit(job(2, 10), fresh=False)
    await eventually(lambda: len(worker.ran) == 2, timeout=5)
    assert worker.ran == [(10, "send"), (30, "send")]
    await worker.stop()


# ---------------------------------------------------------------- early release (reorder.py)

NOW = 1_796_420_429.0  # Chatwoot's clock in these webhooks (the guard compares its times only)


def webhook_job(job_id: int, message_id: int, created_at: float) -> tuple[OutboundJobRecord, SendIntent]:
    """A fresh send job with its webhook as the receiver parsed it (``created_at`` as Rails writes it)."""
    stamp = (
        datetime.fromtimestamp(created_at, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    payload = {
        "event": "message_created",
        "id": message_id,
        "message_type": "outgoing",
        "private": False,
        "content": f"m{message_id}",
        "created_at": stamp,
        "conversation": {"id": 3, "contact_inbox": {"source_id": "5511999999999@s.whatsapp.net"}},
    }
    intent = classify(payload)
    assert isinstance(intent, SendIntent) and intent.message.created_at == created_at
    record = job(job_id, message_id)
    record.payload = orjson.dumps(payload).decode()
    return record, intent


def listed(message_id: int, created_at: float, message_type: int = 1, **fields: object) -> Message:
    """A message as Chatwoot's REST view lists it (``created_at.to_i``, the type's number)."""
    return Message.model_validate(
        {"id": message_id, "message_type": message_type, "created_at": int(created_at), **fields}
    )


class Conversation:
    """Chatwoot's messages list of the conversation (MessageFinder's pages), or its failure."""

    def __init__(self, messages: list[Message], *, fails: bool = False) -> None:
        self.messages = messages
        self.fails = fails
        self.asked: list[tuple[int | None, int | None]] = []

    async def list_messages(
        self, conversation_id: int, *, before: int | None = None, after: int | None = None
    ) -> list[Message]:
        self.asked.append((before, after))
        if self.fails:
            raise ChatwootUnreachable("connection refused", endpoint="GET /messages")
        rows = [m for m in self.messages if (before is None or m.id < before)]
        if after is not None:
            return [m for m in rows if m.id >= after][:1000]
        return rows[-20:]


def guarded_worker(window: float, chatwoot: Conversation) -> RecordingWorker:
    worker = RecordingWorker(window)
    worker.ctx = SimpleNamespace(integration_id="int-1", chatwoot=lambda: chatwoot)  # type: ignore[assignment]
    return worker


async def test_with_nothing_earlier_on_its_way_a_message_goes_without_waiting() -> None:
    chatwoot = Conversation(
        [
            listed(5, NOW - 7200),  # an agent message of two hours ago: older than the window
            listed(6, NOW - 0.2, message_type=0),  # the customer's
            listed(7, NOW - 0.1, private=True),  # a private note
            listed(8, NOW - 0.1, source_id="WAID:3EB0AA"),  # the bridge's mirror of a phone message
        ]
    )
    worker = guarded_worker(3600.0, chatwoot)  # waiting out the window would take an hour
    worker.start(load=False)
    record, intent = webhook_job(1, 30, NOW)
    worker.submit(record, intent=intent)
    await eventually(lambda: worker.ran, timeout=5)
    assert worker.ran == [(30, "send")]
    assert chatwoot.asked == [(30, None)]
    await worker.stop()


async def test_an_earlier_agent_message_on_its_way_goes_first_as_soon_as_it_arrives() -> None:
    chatwoot = Conversation([listed(10, NOW - 0.3)])  # created just before, its webhook not here yet
    worker = guarded_worker(3600.0, chatwoot)
    worker.start(load=False)
    later, later_intent = webhook_job(1, 30, NOW)
    worker.submit(later, intent=later_intent)
    await eventually(lambda: chatwoot.asked)  # it asked, found 10 missing, and waits for it
    for _ in range(5):
        await asyncio.sleep(0)
    assert worker.ran == []
    earlier, earlier_intent = webhook_job(2, 10, NOW - 0.3)
    worker.submit(earlier, intent=earlier_intent)
    await eventually(lambda: len(worker.ran) == 2, timeout=5)  # long before the hour is over
    assert worker.ran == [(10, "send"), (30, "send")]
    await worker.stop()


async def test_the_listing_starts_at_an_agent_message_older_than_the_window() -> None:
    chatwoot = Conversation([listed(4, NOW - 9, message_type=0), listed(10, NOW - 5)])
    worker = guarded_worker(3600.0, chatwoot)
    worker.start(load=False)
    old, old_intent = webhook_job(1, 10, NOW - 3700)  # received, and older than the window
    worker.submit(old, intent=old_intent, fresh=False)
    await eventually(lambda: worker.ran)
    record, intent = webhook_job(2, 30, NOW)
    worker.submit(record, intent=intent)
    await eventually(lambda: len(worker.ran) == 2, timeout=5)
    assert chatwoot.asked == [(30, 10)]  # between: only what came since the old one
    await worker.stop()


async def test_when_chatwoot_cannot_say_the_whole_window_is_waited() -> None:
    chatwoot = Conversation([], fails=True)
    worker = guarded_worker(0.3, chatwoot)
    worker.start(load=False)
    later, later_intent = webhook_job(1, 30, NOW)
    worker.submit(later, intent=later_intent)
    await eventually(lambda: chatwoot.asked)
    earlier, earlier_intent = webhook_job(2, 10, NOW - 0.1)
    worker.submit(earlier, intent=earlier_intent)  # within the window: it still goes first
    await eventually(lambda: len(worker.ran) == 2)
    assert worker.ran == [(10, "send"), (30, "send")]
    await worker.stop()


async def test_a_page_full_of_recent_messages_is_not_taken_as_complete() -> None:
    # 20 customer messages in the last second: the page cannot show whether an agent message
    # created just before them is missing, so the window is waited (and 10 still goes first)
    chatwoot = Conversation([listed(100 + i, NOW - 0.1, message_type=0) for i in range(20)])
    worker = guarded_worker(0.3, chatwoot)
    worker.start(load=False)
    later, later_intent = webhook_job(1, 200, NOW)
    worker.submit(later, intent=later_intent)
    await eventually(lambda: chatwoot.asked)
    earlier, earlier_intent = webhook_job(2, 10, NOW - 0.2)
    worker.submit(earlier, intent=earlier_intent)
    await eventually(lambda: len(worker.ran) == 2)
    assert worker.ran == [(10, "send"), (200, "send")]
    await worker.stop()
