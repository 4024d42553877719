"""Bridge commands run once per idempotency id (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ryze.api.chatwoot.commands import INTERRUPTED, CommandRunner
from ryze.api.db import Database
from ryze.api.errors import ApiError
from ryze.engines.base import EngineError, NotConnectedError
from ryze.protocol import CommandFrame

from .fakes import FakeMessaging


def text_command(cid: str, text: str = "hello", to: str = "5511999999999") -> CommandFrame:
    return CommandFrame(id=cid, action="send_text", params={"to": to, "text": text})


def runner(db: Database, messaging: FakeMessaging) -> CommandRunner:
    return CommandRunner(db.engine, cast(Any, messaging))


async def test_replayed_id_sends_once_and_returns_the_stored_result(db: Database) -> None:
    fake = FakeMessaging()
    r = runner(db, fake)
    first = await r.run("inst", text_command("c1"))
    again = await r.run("inst", text_command("c1"))
    assert first.ok and first.wa_message_id == "WA0001"
    assert again == first
    assert len(fake.outbox) == 1
    sent = fake.outbox[0]
    assert sent.kwargs["source"] == "chatwoot" and sent.kwargs["command_id"] == "c1"
    # A new runner (RyzeAPI restarted) still knows the id.
    assert await runner(db, fake).run("inst", text_command("c1")) == first
    assert len(fake.outbox) == 1


async def test_replay_while_running_waits_for_the_same_result(db: Database) -> None:
    fake = FakeMessaging(gate=asyncio.Event())
    r = runner(db, fake)
    first = asyncio.create_task(r.run("inst", text_command("c2")))
    second = asyncio.create_task(r.run("inst", text_command("c2")))
    await asyncio.sleep(0.05)
    assert not first.done() and not second.done()
    fake.gate.set()  # type: ignore[union-attr]
    a, b = await asyncio.gather(first, second)
    assert a == b and a.ok
    assert len(fake.outbox) == 1


async def test_retryable_failure_is_not_stored(db: Database) -> None:
    fake = FakeMessaging(fail_with=NotConnectedError())
    r = runner(db, fake)
    result = await r.run("inst", text_command("c3"))
    assert (result.ok, result.retryable, result.error) == (
        False,
        True,
        "Instance is not connected to WhatsApp",
    )
    fake.fail_with = None
    retried = await r.run("inst", text_command("c3"))  # same id, now connected: really sent
    assert retried.ok and len(fake.outbox) == 1


async def test_final_failure_is_stored(db: Database) -> None:
    fake = FakeMessaging(fail_with=ApiError(400, "Invalid number"))
    r = runner(db, fake)
    result = await r.run("inst", text_command("c4"))
    assert (result.ok, result.retryable, result.error) == (False, False, "Invalid number")
    fake.fail_with = None
    assert await r.run("inst", text_command("c4")) == result
    assert fake.outbox == []
    fake.fail_with = ApiError(503, "Instance is not connected to WhatsApp")
    assert (await r.run("inst", text_command("c5"))).retryable is True
    fake.fail_with = EngineError("not on WhatsApp", retryable=False)
    assert (await r.run("inst", text_command("c6"))).retryable is False


async def test_pending_claim_from_a_crash_is_not_executed_again(db: Database) -> None:
    fake = FakeMessaging()
    r = runner(db, fake)
    assert await r._claim("inst", "c7") is None  # claimed, then the process "died"
    result = await runner(db, fake).run("inst", text_command("c7"))
    assert (result.ok, result.retryable, result.error) == (False, False, INTERRUPTED)
    assert fake.outbox == []


async def test_every_action_reaches_messaging(db: Database) -> None:
    fake = FakeMessaging()
    r = runner(db, fake)
    frames = [
        CommandFrame(id="m1", action="send_media", params={
            "to": "5511", "mediaType": "image", "url": "http://cw/a.png", "caption": "c", "fileName": "a.png",
        }),
        CommandFrame(id="m2", action="react", params={"chat": "5511", "messageId": "X", "emoji": "👍"}),
        CommandFrame(id="m3", action="edit", params={"chat": "5511", "messageId": "X", "text": "new"}),
        CommandFrame(id="m4", action="revoke", params={"chat": "5511", "messageId": "X"}),
        CommandFrame(id="m5", action="mark_read", params={"chat": "5511", "messageIds": ["X"]}),
        CommandFrame(id="m6", action="presence", params={"chat": "5511", "state": "composing"}),
    ]  # fmt: skip
    results = [await r.run("inst", f) for f in frames]
    assert all(res.ok for res in results)
    assert [s.action for s in fake.outbox] == [
        "send_media",
        "react",
        "edit",
        "revoke",
        "mark_read",
        "presence",
    ]
    media = fake.outbox[0]
    assert media.args == ("inst", "5511", "image")
    assert media.kwargs["url"] == "http://cw/a.png" and media.kwargs["command_id"] == "m1"
    assert results[4].wa_message_id is None


async def test_invalid_params_fail_without_retry(db: Database) -> None:
    fake = FakeMessaging()
    result = await runner(db, fake).run(
        "inst", CommandFrame(id="bad", action="send_text", params={"to": "x"})
    )
    assert not result.ok and not result.retryable
    assert result.error is not None and result.error.startswith("invalid params: text")
