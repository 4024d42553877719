"""The relay's logic against an in-memory Chatwoot through ``ChatwootPort`` (no emulator, no link).

Both directions are built from their narrow collaborators (``RelayContext``), the way the
integration runtime builds them: a test database's repositories, the fake Chatwoot, a health
object, a retry policy with millisecond delays, and (outbound) a fake link answering commands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from bridge.chatwoot_fake import InMemoryChatwoot
from bridge.fake_ryzeapi import envelope, text_message
from ryze.bridge.health import IntegrationHealth
from ryze.bridge.link.client import LinkUnavailable
from ryze.bridge.metrics import BridgeMetrics
from ryze.bridge.relay.context import RelayContext
from ryze.bridge.relay.inbound.consumer import InboundRelay
from ryze.bridge.relay.inbound.lanes import LaneRouter
from ryze.bridge.relay.inbound.resolver import ConversationPolicy, ConversationResolver
from ryze.bridge.relay.outbound.worker import OutboundWorker
from ryze.bridge.retry import RetryPolicy
from ryze.bridge.store.db import BridgeDB
from ryze.bridge.store.repositories import IntegrationRecord, Repositories
from ryze.chatwoot import ChatwootAuthError, ChatwootServerError, ChatwootValidationError
from ryze.protocol import CommandFrame, EventEnvelope, IntegrationStatus, ResultFrame

CHAT = "5511999990001@s.whatsapp.net"
INBOX = 7
ENDPOINT = "POST /api/v1/accounts/1/conversations/:id/messages"


def _record() -> IntegrationRecord:
    now = time.time()
    return IntegrationRecord(
        id="i" * 32, instance="shop", ryzeapi_url="http://127.0.0.1:1", chatwoot_base_url="http://cw",
        chatwoot_account_id=1, token_enc="v1:x:y", inbox_id=INBOX, inbox_name="WhatsApp",
        inbox_secret_enc="", path_secret_hash="0" * 64, sign_messages=False, ignore_groups=False,
        start_as_pending=False, reopen_resolved=False, status="paused", last_error="",
        operator_paused=False, watermark=0, created_at=now, updated_at=now,
    )  # fmt: skip


@dataclass
class Harness:
    repos: Repositories
    chatwoot: InMemoryChatwoot
    record: IntegrationRecord
    health: IntegrationHealth
    metrics: BridgeMetrics
    context: RelayContext
    link_connected: list[bool] = field(default_factory=lambda: [True])

    def inbound(self) -> tuple[InboundRelay, list[int], LaneRouter]:
        done: list[int] = []
        lanes = LaneRouter(max_concurrent=4, name="test")
        resolver = ConversationResolver(
            integration_id=self.record.id,
            inbox_id=INBOX,
            chats=self.repos.chats,
            client=lambda: self.chatwoot,
            policy=lambda: ConversationPolicy(False, False),
        )
        return InboundRelay(self.context, lanes=lanes, resolver=resolver, done=done.append), done, lanes


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    db = BridgeDB(f"sqlite:///{tmp_path / 'bridge.db'}")
    await db.migrate()
    repos = Repositories.create(db)
    record = _record()
    await repos.integrations.insert(record)
    chatwoot = InMemoryChatwoot(inbox_id=INBOX)
    link_connected = [True]

    async def changed() -> None:
        return None

    health = IntegrationHealth(
        inbox_id=INBOX,
        chatwoot=lambda: chatwoot,
        operator_paused=lambda: False,
        link_connected=lambda: link_connected[0],
        on_change=changed,
    )
    metrics = BridgeMetrics()
    context = RelayContext(
        integration_id=record.id,
        record=record,
        messages=repos.messages,
        jobs=repos.outbound,
        chatwoot=lambda: chatwoot,
        health=health,
        metrics=metrics,
        retry=RetryPolicy(base_seconds=0.001, max_seconds=0.002, max_attempts=3),
    )
    try:
        yield Harness(repos, chatwoot, record, health, metrics, context, link_connected)
    finally:
        await db.close()


def _event(message: dict[str, Any]) -> EventEnvelope:
    return EventEnvelope.model_validate(envelope("message.exchange", message, "shop"))


async def _until(check: Callable[[], bool]) -> None:
    for _ in range(2000):  # bounded: ~2 s at most
        if check():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


def _failures(metrics: BridgeMetrics, direction: str, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "ryze_bridge_failures_total", {"direction": direction, "reason": reason}
    )
    return value or 0.0


# ------------------------------------------------------------------------------------ inbound


async def test_a_message_becomes_one_incoming_chatwoot_message_then_is_acked(harness: Harness) -> None:
    relay, done, lanes = harness.inbound()
    relay.on_event(1, _event(text_message("wa-1", CHAT, "hello")), False)
    await _until(lambda: done == [1])
    [created] = harness.chatwoot.public_messages()
    assert (created.content, created.message_type, created.source_id) == ("hello", "incoming", "WAID:wa-1")
    mapped = await harness.repos.messages.find_wa_any(harness.record.id, "wa-1")
    assert mapped is not None and mapped.chatwoot_message_id == created.id
    await lanes.close()


async def test_the_same_whatsapp_id_under_a_new_seq_is_not_created_twice(harness: Harness) -> None:
    relay, done, lanes = harness.inbound()
    relay.on_event(1, _event(text_message("wa-1", CHAT, "hello")), False)
    await _until(lambda: done == [1])
    relay.on_event(2, _event(text_message("wa-1", CHAT, "hello")), True)
    await _until(lambda: done == [1, 2])
    assert len(harness.chatwoot.public_messages()) == 1
    await lanes.close()


async def test_a_half_done_message_behind_already_relayed_ones_is_adopted_after_a_restart(
    harness: Harness,
) -> None:
    """A killed bridge: wa-1 was relayed and mapped, wa-2 created in Chatwoot but not mapped yet.
    The replay starts at the watermark, so wa-1 comes first and is skipped as already relayed; the
    lane's check against Chatwoot must then go to wa-2, not be used up by wa-1 (``make chaos``
    found that duplicate: bridge SIGKILL on PostgreSQL under load)."""
    relay, done, lanes = harness.inbound()
    relay.on_event(1, _event(text_message("wa-1", CHAT, "one")), False)
    await _until(lambda: done == [1])
    [first] = harness.chatwoot.public_messages()
    await harness.chatwoot.create_message(
        first.conversation_id, content="two", message_type="incoming", source_id="WAID:wa-2"
    )  # what the previous process did before it was killed
    await lanes.close()

    restarted, done, lanes = harness.inbound()  # a new process: nothing in memory
    restarted.on_event(1, _event(text_message("wa-1", CHAT, "one")), True)
    restarted.on_event(2, _event(text_message("wa-2", CHAT, "two")), True)
    restarted.on_event(3, _event(text_message("wa-3", CHAT, "three")), False)
    await _until(lambda: done == [1, 2, 3])
    assert [m.content for m in harness.chatwoot.public_messages()] == ["one", "two", "three"]
    mapped = await harness.repos.messages.find_wa_any(harness.record.id, "wa-2")
    assert mapped is not None and mapped.chatwoot_message_id == harness.chatwoot.public_messages()[1].id
    await lanes.close()


async def test_a_create_that_answered_500_after_taking_effect_is_not_repeated(harness: Harness) -> None:
    """Ambiguous failure (the retry policy's TRANSIENT): the next attempt lists the conversation's
    messages and adopts the one carrying our source id instead of creating a second."""
    relay, done, lanes = harness.inbound()
    harness.chatwoot.fail("create_message", ChatwootServerError(500, "boom", endpoint=ENDPOINT), after=True)
    relay.on_event(1, _event(text_message("wa-1", CHAT, "hello")), False)
    await _until(lambda: done == [1])
    [created] = harness.chatwoot.public_messages()
    assert harness.chatwoot.calls.count("create_message") == 1
    assert "list_messages" in harness.chatwoot.calls
    mapped = await harness.repos.messages.find_wa_any(harness.record.id, "wa-1")
    assert mapped is not None and mapped.chatwoot_message_id == created.id
    assert _failures(harness.metrics, "wa_to_cw", "chatwoot_5xx") == 1
    await lanes.close()


async def test_a_message_chatwoot_keeps_refusing_is_given_up_with_a_note(harness: Harness) -> None:
    relay, done, lanes = harness.inbound()
    harness.chatwoot.fail(
        "create_message", ChatwootValidationError(422, '{"error":"bad"}', endpoint=ENDPOINT), times=3
    )
    relay.on_event(1, _event(text_message("wa-1", CHAT, "hello")), False)
    await _until(lambda: done == [1])
    [note] = harness.chatwoot.messages.values()
    assert note.private and "wa-1" in (note.content or "")
    mapped = await harness.repos.messages.find_wa_any(harness.record.id, "wa-1")
    assert mapped is not None and mapped.state == "failed"
    assert _failures(harness.metrics, "wa_to_cw", "gave_up") == 1
    await lanes.close()


async def test_a_revoked_token_does_not_count_toward_giving_up(harness: Harness) -> None:
    """401s (more of them than max_attempts) only delay the message; the integration shows the
    error meanwhile and is active again once Chatwoot accepts."""
    relay, done, lanes = harness.inbound()
    harness.chatwoot.fail("create_message", ChatwootAuthError(401, "revoked", endpoint=ENDPOINT), times=4)
    seen: list[IntegrationStatus] = []
    relay.on_event(1, _event(text_message("wa-1", CHAT, "hello")), False)

    def watched() -> bool:
        seen.append(harness.health.status()[0])
        return done == [1]

    await _until(watched)
    assert IntegrationStatus.ERROR in seen
    assert [m.content for m in harness.chatwoot.public_messages()] == ["hello"]
    await asyncio.sleep(0)  # note_progress's status refresh
    assert harness.health.status() == (IntegrationStatus.ACTIVE, "")
    await lanes.close()


async def test_group_messages_are_acked_without_effect_when_groups_are_ignored(harness: Harness) -> None:
    harness.record.ignore_groups = True
    relay, done, lanes = harness.inbound()
    group = text_message("wa-g", "120363000000000001@g.us", "hi all", chat_type="group", sender=CHAT)
    relay.on_event(1, _event(group), False)
    await _until(lambda: done == [1])
    assert harness.chatwoot.messages == {}
    await lanes.close()


# ------------------------------------------------------------------------------------ outbound


@dataclass
class FakeLink:
    """Answers each command with the next queued result (default: sent, WhatsApp id ``wa-<id>``)."""

    results: list[ResultFrame | Exception] = field(default_factory=list)
    frames: list[CommandFrame] = field(default_factory=list)
    connected: bool = True
    marks_read_on_send: bool = False

    async def command(self, frame: CommandFrame, *, budget: float) -> ResultFrame:
        self.frames.append(frame)
        if self.results:
            result = self.results.pop(0)
            if isinstance(result, Exception):
                raise result
            return result
        return ResultFrame(id=frame.id, ok=True, wa_message_id=f"wa-{frame.id}")


async def _agent_job(harness: Harness, text: str) -> tuple[int, int]:
    """An agent reply stored in the fake Chatwoot and persisted as a job, as the webhook would."""
    conversation = await harness.chatwoot.create_conversation(inbox_id=INBOX, contact_id=1, source_id=CHAT)
    message = await harness.chatwoot.create_message(conversation.id, content=text, message_type="outgoing")
    payload = {
        "event": "message_created",
        "id": message.id,
        "content": text,
        "message_type": "outgoing",
        "conversation": {"id": conversation.id, "contact_inbox": {"source_id": CHAT}},
    }
    job = await harness.repos.outbound.enqueue(
        harness.record.id, message.id, conversation.id, "send", orjson.dumps(payload).decode()
    )
    assert job is not None
    return message.id, conversation.id


def _worker(harness: Harness, link: FakeLink) -> OutboundWorker:
    return OutboundWorker(harness.context, link=link, max_lanes=4, command_timeout=1.0)


async def test_an_agent_reply_becomes_one_send_text_command_and_a_mapping(harness: Harness) -> None:
    message_id, _ = await _agent_job(harness, "**hi** there")
    link = FakeLink()
    worker = _worker(harness, link)
    worker.start()
    await _until(lambda: bool(link.frames) and worker.queued == 0)
    [frame] = link.frames
    assert frame.action.value == "send_text"
    assert frame.params == {"to": CHAT, "text": "*hi* there"}
    await _until(lambda: harness.metrics.registry.get_sample_value(
        "ryze_bridge_messages_relayed_total", {"direction": "cw_to_wa"}) == 1)  # fmt: skip
    mapped = await harness.repos.messages.find_chatwoot(harness.record.id, message_id)
    assert [m.wa_message_id for m in mapped] == [f"wa-{frame.id}"]
    assert await harness.repos.outbound.pending(harness.record.id) == []
    await worker.stop()


async def test_a_send_whatsapp_refuses_marks_the_chatwoot_message_failed(harness: Harness) -> None:
    message_id, _ = await _agent_job(harness, "hello")
    link = FakeLink(results=[ResultFrame(id="x", ok=False, error="not on WhatsApp", retryable=False)])
    worker = _worker(harness, link)
    worker.start()
    await _until(lambda: harness.chatwoot.messages[message_id].status == "failed")
    assert harness.chatwoot.messages[message_id].external_error == "not on WhatsApp"
    assert await harness.repos.outbound.pending(harness.record.id) == []
    await worker.stop()


async def test_a_retryable_failure_reschedules_the_job_with_backoff(harness: Harness) -> None:
    await _agent_job(harness, "hello")
    link = FakeLink(results=[LinkUnavailable("link down")])
    worker = _worker(harness, link)
    worker.start()
    await _until(lambda: len(link.frames) == 2)  # retried after the policy's (millisecond) backoff
    await _until(lambda: worker.queued == 0)
    assert _failures(harness.metrics, "cw_to_wa", "link_down") == 1
    assert await harness.repos.outbound.pending(harness.record.id) == []
    await worker.stop()
