"""Bridge commands run once per idempotency id (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from sqlalchemy import event, text

from ryze.api.bridge_link.commands import BRIDGE_MEDIA_RETRY_SECONDS, INTERRUPTED, CommandRunner
from ryze.api.db import Database
from ryze.api.errors import ApiError
from ryze.engines.base import EngineError, NotConnectedError
from ryze.protocol import CommandFrame, ResultFrame

from .fakes import FakeMessaging, Sent


def text_command(cid: str, text: str = "hello", to: str = "5511999999999") -> CommandFrame:
    return CommandFrame(id=cid, action="send_text", params={"to": to, "text": text})


_RUNNERS: list[CommandRunner] = []


def runner(db: Database, messaging: FakeMessaging) -> CommandRunner:
    made = CommandRunner(db.engine, cast(Any, messaging))
    _RUNNERS.append(made)
    return made


@pytest.fixture(autouse=True)
async def _close_runners() -> AsyncIterator[None]:
    """Each runner keeps a writer connection: release it before the database is disposed."""
    yield
    while _RUNNERS:
        await _RUNNERS.pop().aclose()


async def _rows(db: Database) -> dict[str, tuple[str, str]]:
    """command id -> (state, result JSON) of every stored claim."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT command_id, state, result FROM chatwoot_commands"))
        return {r[0]: (r[1], r[2]) for r in rows}


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


@dataclass
class GatedMessaging(FakeMessaging):
    """Sends wait at the gate; ``entered`` is set once ``expect`` sends are waiting there."""

    expect: int = 1
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    _waiting: int = 0

    async def _send(self, action: str, *args: Any, **kwargs: Any) -> Sent:
        self._waiting += 1
        if self._waiting >= self.expect:
            self.entered.set()
        return await super()._send(action, *args, **kwargs)


async def test_concurrent_claims_share_one_transaction_and_all_land(db: Database) -> None:
    fake = GatedMessaging(gate=asyncio.Event(), expect=20)
    r = runner(db, fake)
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CHATWOOT_COMMANDS"):
            inserts.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        # Twenty commands for twenty chats arrive together (one link read burst).
        tasks = [
            asyncio.create_task(r.run("inst", text_command(f"b{n}", to=f"55119{n:08d}"))) for n in range(20)
        ]
        await fake.entered.wait()  # every claim committed, every send waiting at the gate
        assert len(inserts) == 1  # one multi-row INSERT for the twenty claims
        rows = await _rows(db)
        assert sorted(rows) == sorted(f"b{n}" for n in range(20))
        assert {state for state, _ in rows.values()} == {"pending"}
        fake.gate.set()  # type: ignore[union-attr]
        results = await asyncio.gather(*tasks)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert all(res.ok for res in results) and len(fake.outbox) == 20
    rows = await _rows(db)
    assert {state for state, _ in rows.values()} == {"done"}
    for res in results:  # each id kept its own result
        assert ResultFrame.model_validate_json(rows[res.id][1]) == res


async def test_a_crash_during_the_send_answers_interrupted_and_never_sends_again(db: Database) -> None:
    fake = GatedMessaging(gate=asyncio.Event())
    r = runner(db, fake)
    doomed = asyncio.create_task(r.run("inst", text_command("crash")))
    await fake.entered.wait()  # claimed (committed), now inside the send
    doomed.cancel()  # the process dies here: no result, no release
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert (await _rows(db))["crash"][0] == "pending"
    fake.gate.set()  # type: ignore[union-attr]
    result = await runner(db, fake).run("inst", text_command("crash"))  # after the restart
    assert (result.ok, result.retryable, result.error) == (False, False, INTERRUPTED)
    assert fake.outbox == []


async def test_results_releases_and_claims_of_one_batch(db: Database) -> None:
    """A replayed final failure answers its stored result while a released retryable failure runs
    again on its retry (the two arrive together)."""
    fake = FakeMessaging()
    r = runner(db, fake)
    fake.fail_with = ApiError(400, "Invalid number")
    final, retryable_cmd = text_command("f1"), text_command("f2", to="5511000000002")
    first = await r.run("inst", final)
    fake.fail_with = ApiError(503, "Instance is not connected to WhatsApp")
    second = await r.run("inst", retryable_cmd)
    fake.fail_with = None
    # The retry of f2 and a replay of f1 arrive together.
    again, retried = await asyncio.gather(r.run("inst", final), r.run("inst", retryable_cmd))
    assert again == first and not first.ok and not first.retryable
    assert second.retryable and retried.ok and len(fake.outbox) == 1
    rows = await _rows(db)
    assert rows["f1"][0] == rows["f2"][0] == "done"


async def test_one_failing_write_does_not_fail_the_others_of_its_batch(db: Database) -> None:
    """A release and another command's claim share a transaction whose claim INSERT fails once:
    both are written again on their own, and the released command really runs on its retry."""
    fake = FakeMessaging()
    r = runner(db, fake)
    assert await r._claim("inst", "A") is None  # A ran, failed retryably: its release is due
    armed = [True]

    def fail_once(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if armed[0] and statement.lstrip().upper().startswith("INSERT INTO CHATWOOT_COMMANDS"):
            armed[0] = False
            raise RuntimeError("transient database error")

    event.listen(db.engine.sync_engine, "before_cursor_execute", fail_once)
    try:
        # queued together: one batch
        released, claimed = await asyncio.gather(r._release("inst", "A"), r._claim("inst", "B"))
        assert released is None and claimed is None
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", fail_once)
    assert armed == [False]  # the fault fired
    assert {cid: state for cid, (state, _) in (await _rows(db)).items()} == {"B": "pending"}
    retried = await r.run("inst", text_command("A"))  # the bridge's retry of A
    assert retried.ok and len(fake.outbox) == 1


async def test_a_claim_whose_caller_is_gone_is_released(db: Database) -> None:
    fake = FakeMessaging()
    r = runner(db, fake)
    gone = asyncio.create_task(r.run("inst", text_command("gone")))
    await asyncio.sleep(0)  # its claim is queued ...
    gone.cancel()  # ... and RyzeAPI stops before the claim is answered
    with pytest.raises(asyncio.CancelledError):
        await gone
    await r.aclose()  # the committer finishes: the claim landed, then was released
    assert await _rows(db) == {}
    result = await runner(db, fake).run("inst", text_command("gone"))  # the retry after the restart
    assert result.ok and len(fake.outbox) == 1


async def test_a_bridge_media_command_asks_messaging_to_retry_the_url(db: Database) -> None:
    """Chatwoot hands out attachment URLs before its storage serves them: the module asks for the
    bounded retry (messaging itself has no special case for the bridge's source)."""
    fake = FakeMessaging()
    frame = CommandFrame(
        id="m1",
        action="send_media",
        params={"to": "5511999999999", "mediaType": "image", "url": "http://127.0.0.1:9/a.png"},
    )
    result = await runner(db, fake).run("inst", frame)
    assert result.ok
    [sent] = fake.outbox
    assert sent.kwargs["url_retry_seconds"] == BRIDGE_MEDIA_RETRY_SECONDS == 30.0
    assert sent.kwargs["source"] == "chatwoot" and sent.kwargs["command_id"] == "m1"


async def test_an_attachment_chatwoot_never_serves_fails_with_a_reason_for_the_agent(db: Database) -> None:
    """The messaging service words download failures for the public API (``mediaUrl``); the agent
    reads this one on the Chatwoot message, so it names the upload and what to do."""
    fake = FakeMessaging(fail_with=ApiError(400, "Failed to download media from mediaUrl: HTTP 404"))
    frame = CommandFrame(
        id="m404",
        action="send_media",
        params={
            "to": "5511999999999",
            "mediaType": "document",
            "url": "http://127.0.0.1:9/rails/blob/report.pdf",
            "fileName": "report.pdf",
        },
    )
    result = await runner(db, fake).run("inst", frame)
    assert not result.ok and not result.retryable
    assert result.error is not None
    assert result.error.startswith(
        "The attachment report.pdf could not be downloaded from Chatwoot (HTTP 404)"
    )


async def test_params_of_another_action_fail_for_good_without_sending(db: Database) -> None:
    fake = FakeMessaging()
    frame = CommandFrame(id="bad", action="revoke", params={"to": "5511999999999", "text": "x"})
    result = await runner(db, fake).run("inst", frame)
    assert not result.ok and not result.retryable
    assert result.error is not None and result.error.startswith("invalid params: chat")
    assert fake.outbox == []


async def test_a_sends_read_marks_are_executed_after_it_in_the_same_command(db: Database) -> None:
    fake = FakeMessaging()
    r = runner(db, fake)
    frame = CommandFrame(
        id="r1", action="send_text", params={"to": "5511", "text": "yes", "markRead": ["H1", "H2"]}
    )
    result = await r.run("inst", frame)
    assert result.ok and result.wa_message_id == "WA0001"
    assert [(s.action, s.args) for s in fake.outbox] == [
        ("send_text", ("inst", "5511", "yes")),
        ("mark_read", ("inst", "5511", ["H1", "H2"])),
    ]
    assert await r.run("inst", frame) == result  # replayed: neither sent nor marked again
    assert len(fake.outbox) == 2


async def test_a_read_mark_that_fails_leaves_the_send_a_success(db: Database) -> None:
    fake = FakeMessaging(read_fails_with=NotConnectedError())
    r = runner(db, fake)
    media = {"to": "5511", "mediaType": "image", "url": "http://cw/a.png", "markRead": ["H1"]}
    result = await r.run("inst", CommandFrame(id="r2", action="send_media", params=media))
    assert result.ok and result.wa_message_id == "WA0001"  # out on WhatsApp: never retried
    assert [s.action for s in fake.outbox] == ["send_media"]
