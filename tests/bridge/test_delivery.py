"""Delivery guarantees: duplicates, Chatwoot failures, link drops, restarts, poison messages."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from ryze.emulator import RunningEmulator
from ryze.protocol import CommandFrame, ResultFrame

from .conftest import ACCOUNT, ADMIN_TOKEN, RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import contents, contents_per_chat, conversations, inbox_messages

A = "5511999990003@s.whatsapp.net"
B = "5511999990004@s.whatsapp.net"


async def _setup(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge, **flags: object
) -> dict[str, Any]:
    status, view = await bridge.activate(fake, emulator.url, **flags)
    assert status == 201, view
    await eventually(lambda: fake.connected(str(flags.get("instance", "shop"))))
    return dict(view)


async def test_same_event_twice_gives_one_chatwoot_message(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    for _ in range(3):
        await fake.emit("shop", "message.exchange", text_message("DUP1", A, "only once"))
    await eventually(lambda: not fake.unacked("shop"))
    await fake.emit("shop", "message.exchange", text_message("DUP1", A, "only once"))
    await fake.emit("shop", "message.exchange", text_message("AFTER", A, "next"))
    await eventually(lambda: not fake.unacked("shop"))
    assert contents(emulator, view["inbox_id"]) == ["only once", "next"]


async def test_a_mapping_write_failing_after_the_create_gives_one_chatwoot_message(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge, monkeypatch: Any
) -> None:
    view = await _setup(emulator, fake, bridge)
    repo = bridge.services.repos.messages
    real_record = repo.record
    failures: list[str] = []

    async def fail_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append("database is locked")
            raise RuntimeError("database is locked")  # the Chatwoot message exists already
        return await real_record(*args, **kwargs)

    monkeypatch.setattr(repo, "record", fail_once)
    await fake.emit("shop", "message.exchange", text_message("MAPFAIL1", A, "created, not mapped"))
    await eventually(lambda: not fake.unacked("shop"))
    assert failures  # the fault fired
    assert contents(emulator, view["inbox_id"]) == ["created, not mapped"]


async def test_an_event_another_bridge_relayed_while_our_link_was_down_is_not_relayed_again(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """Two bridge processes on one database (an overlapping deploy): while ours was replaced, the
    other relayed an event it has never seen. When it is offered to us after our next ready, the
    shared mapping table says so and nothing is created twice."""
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("BEFORE", A, "before"))
    await eventually(lambda: not fake.unacked("shop"))
    fake.refuse = True
    await fake.drop("shop")
    await eventually(lambda: not fake.connected("shop"))
    await fake.emit("shop", "message.exchange", text_message("OTHER", A, "relayed by the other bridge"))
    integration = view["id"]
    await bridge.services.repos.messages.record(  # what the other process wrote after its create
        integration, wa_message_id="OTHER", chatwoot_message_id=None, conversation_id=None,
        chat_jid=A, direction="in",
    )  # fmt: skip
    await fake.emit("shop", "message.exchange", text_message("AFTER", A, "after"))
    fake.refuse = False
    await eventually(lambda: fake.connected("shop"))
    await eventually(lambda: not fake.unacked("shop"))
    assert contents(emulator, view["inbox_id"]) == ["before", "after"]


async def test_webhook_delivered_twice_gives_one_command(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("W1", A, "hi"))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])
    reply = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "answer")
    await eventually(lambda: fake.phone)
    inbox = emulator.emulator.state.inboxes[view["inbox_id"]]
    payload = {
        "event": "message_created",
        "id": reply["id"],
        "content": "answer",
        "message_type": "outgoing",
        "private": False,
        "source_id": None,
        "sender": {"id": 1, "name": "Acme Admin", "type": "user"},
        "inbox": {"id": inbox.id, "name": inbox.name},
        "conversation": {"id": conv.display_id, "contact_inbox": {"source_id": A}},
    }
    raw = orjson.dumps(payload)
    ts = str(int(time.time()))
    sig = "sha256=" + hmac.new(inbox.secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    for _ in range(2):
        async with bridge.http.post(
            inbox.webhook_url,
            data=raw,
            headers={
                "Content-Type": "application/json",
                "X-Chatwoot-Timestamp": ts,
                "X-Chatwoot-Signature": sig,
            },
        ) as resp:
            assert resp.status == 200
    await emulator.emulator.incoming_dispatch_idle()
    await eventually(lambda: not fake.unacked("shop"))
    assert len(fake.phone) == 1


async def test_chatwoot_500_and_429_for_a_while_every_message_once_in_order(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("warm-a", A, "a0"))
    await fake.emit("shop", "message.exchange", text_message("warm-b", B, "b0"))
    await eventually(lambda: not fake.unacked("shop"))
    faults = emulator.emulator.faults
    faults.add(method="POST", path=r".*/messages$", status=500, rate=0.5, count=12)
    faults.add(method="POST", path=r".*/messages$", status=429, rate=0.5, count=8, retry_after=0)
    for i in range(1, 16):
        await fake.emit("shop", "message.exchange", text_message(f"a{i}", A, f"a{i}"))
        await fake.emit("shop", "message.exchange", text_message(f"b{i}", B, f"b{i}"))
    await eventually(lambda: not fake.unacked("shop"), timeout=60)
    per_chat = contents_per_chat(emulator, view["inbox_id"])
    assert per_chat[A] == [f"a{i}" for i in range(16)]
    assert per_chat[B] == [f"b{i}" for i in range(16)]
    assert emulator.emulator.recorder.conformance_errors() == []


async def _precreate(emulator: RunningEmulator, display_id: int, wa_id: str, text: str) -> None:
    """What Chatwoot holds when a create went through but its answer was lost (or the bridge died)."""
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{emulator.url}/api/v1/accounts/{ACCOUNT}/conversations/{display_id}/messages",
            json={"content": text, "message_type": "incoming", "source_id": f"WAID:{wa_id}"},
            headers={"api_access_token": ADMIN_TOKEN},
        ) as resp:
            assert resp.status == 200


async def test_ambiguous_failure_is_checked_before_creating_again(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("L0", A, "l0"))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])
    await _precreate(emulator, conv.display_id, "L1", "l1")
    emulator.emulator.faults.add(method="POST", path=r".*/messages$", status=502, count=1)
    await fake.emit("shop", "message.exchange", text_message("L1", A, "l1"))
    await fake.emit("shop", "message.exchange", text_message("L2", A, "l2"))
    await eventually(lambda: not fake.unacked("shop"), timeout=30)
    assert contents_per_chat(emulator, view["inbox_id"])[A] == ["l0", "l1", "l2"]


async def test_link_drop_and_resume(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    for i in range(10):
        await fake.emit("shop", "message.exchange", text_message(f"d{i}", A if i % 2 else B, f"m{i}"))
        if i in (3, 7):
            await fake.drop("shop")
    await eventually(lambda: fake.connected("shop"))
    await eventually(lambda: not fake.unacked("shop"), timeout=40)
    per_chat = contents_per_chat(emulator, view["inbox_id"])
    assert per_chat[A] == [f"m{i}" for i in range(10) if i % 2]
    assert per_chat[B] == [f"m{i}" for i in range(10) if not i % 2]
    assert len(fake.log("shop").resumes) >= 2


async def test_bridge_restart_replays_without_duplicates(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path) as bridge:
        view = await _setup(emulator, fake, bridge)
        await fake.emit("shop", "message.exchange", text_message("r1", A, "r1"))
        await eventually(lambda: not fake.unacked("shop"))
    inbox_id = view["inbox_id"]
    [conv] = conversations(emulator, inbox_id)
    # the bridge "died" right after creating r2 in Chatwoot, before acking: r2 is in Chatwoot already
    await _precreate(emulator, conv.display_id, "r2", "r2")
    await fake.emit("shop", "message.exchange", text_message("r2", A, "r2"))
    await fake.emit("shop", "message.exchange", text_message("r3", A, "r3"))
    async with run_bridge(tmp_path) as bridge:
        await eventually(lambda: fake.connected("shop"))
        await eventually(lambda: not fake.unacked("shop"))
        await fake.emit("shop", "message.exchange", text_message("r4", A, "r4"))
        await eventually(lambda: not fake.unacked("shop"))
        assert contents(emulator, inbox_id) == ["r1", "r2", "r3", "r4"]
        status, shown = await bridge.call("GET", f"/v1/integrations/{view['id']}")
        assert status == 200 and shown["status"] == "active"


async def test_replay_after_restart_is_deduplicated_by_the_database(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    """A new process has no memory of what it relayed: the seqs offered before its link was ready
    (seq <= ready.last_seq) are checked against the mapping table. Only the first replayed message
    of a lane is also verified in Chatwoot, so "x1" (second in its lane) is kept out by the table
    alone."""
    async with run_bridge(tmp_path, database_url) as bridge:
        view = await _setup(emulator, fake, bridge)
        await fake.emit("shop", "message.exchange", text_message("x1", A, "x1"))
        await eventually(lambda: not fake.unacked("shop"))
    # while the bridge is down the log holds a new message and x1 again (e.g. an ack RyzeAPI lost)
    await fake.emit("shop", "message.exchange", text_message("y1", A, "y1"))
    await fake.emit("shop", "message.exchange", text_message("x1", A, "x1"))
    async with run_bridge(tmp_path, database_url) as bridge:
        await eventually(lambda: fake.connected("shop"))
        await eventually(lambda: not fake.unacked("shop"))
        # after the replay, a live seq goes straight through (and is relayed once)
        await fake.emit("shop", "message.exchange", text_message("z1", A, "z1"))
        await eventually(lambda: not fake.unacked("shop"))
        assert contents(emulator, view["inbox_id"]) == ["x1", "y1", "z1"]


async def test_failed_send_marks_chatwoot_message_failed(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("F1", A, "hi"))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])

    def refuse(frame: CommandFrame) -> ResultFrame:
        return ResultFrame(id=frame.id, ok=False, error="number is not on WhatsApp", retryable=False)

    fake.result_hook = refuse
    reply = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "are you there?")
    msg = emulator.emulator.state.messages[reply["id"]]
    await eventually(lambda: msg.status == "failed")
    assert msg.content_attributes.get("external_error") == "number is not on WhatsApp"
    assert fake.phone == []


async def test_retryable_failures_and_timeouts_resend_with_the_same_id(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path, command_timeout=0.5) as bridge:
        view = await _setup(emulator, fake, bridge)
        await fake.emit("shop", "message.exchange", text_message("T1", A, "hi"))
        await eventually(lambda: not fake.unacked("shop"))
        [conv] = conversations(emulator, view["inbox_id"])
        calls: list[str] = []

        def flaky(frame: CommandFrame) -> ResultFrame | None:
            calls.append(frame.id)
            if len(calls) <= 2:
                return ResultFrame(id=frame.id, ok=False, error="WhatsApp busy", retryable=True)
            return None

        fake.hold_results = True  # first: no result at all (time-out) -> retried with the same id
        fake.result_hook = flaky
        reply = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "retry me")
        await eventually(lambda: len(fake.commands_seen) >= 2)
        fake.hold_results = False
        await eventually(lambda: fake.phone)
        await eventually(lambda: not fake.unacked("shop"))
        ids = {i for i in fake.commands_seen if not i.startswith("cwread-")}  # the read receipt of T1
        assert ids == {f"cw-{view['id']}-{reply['id']}-0"}
        assert len(fake.phone) == 1
        msg = emulator.emulator.state.messages[reply["id"]]
        assert msg.status != "failed"


async def test_poison_message_does_not_block_its_chat(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path, max_attempts=3) as bridge:
        view = await _setup(emulator, fake, bridge)
        await fake.emit("shop", "message.exchange", text_message("p0", A, "p0"))
        await eventually(lambda: not fake.unacked("shop"))
        [conv] = conversations(emulator, view["inbox_id"])
        rule = emulator.emulator.faults.add(
            method="POST", path=rf".*/conversations/{conv.display_id}/messages$", status=422
        )
        await fake.emit("shop", "message.exchange", text_message("p1", A, "poison"))
        await eventually(lambda: not fake.unacked("shop"), timeout=40)
        emulator.emulator.faults.rules.remove(rule)
        await fake.emit("shop", "message.exchange", text_message("p2", A, "p2"))
        await eventually(lambda: not fake.unacked("shop"))
        assert contents(emulator, view["inbox_id"]) == ["p0", "p2"]
        failures = await bridge.services.repos.messages.failures(view["id"])
        assert [f["wa_message_id"] for f in failures] == ["p1"]


async def test_deleted_conversation_is_recreated_without_losing_the_message(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("c1", A, "c1"))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])
    state = emulator.emulator.state
    del state.conversations[conv.id]
    del state.conversation_by_display[(ACCOUNT, conv.display_id)]
    await fake.emit("shop", "message.exchange", text_message("c2", A, "c2"))
    await eventually(lambda: not fake.unacked("shop"))
    [new] = conversations(emulator, view["inbox_id"])
    assert new.id != conv.id
    assert [m.content for m in state.messages_of(new)] == ["c2"]


async def test_revoked_token_and_deleted_inbox_set_error_and_messages_wait(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    state = emulator.emulator.state
    admin = state.users_by_token.pop(ADMIN_TOKEN)
    await fake.emit("shop", "message.exchange", text_message("e1", A, "e1"))

    async def status_of() -> dict[str, Any]:
        _, shown = await bridge.call("GET", f"/v1/integrations/{view['id']}")
        return dict(shown)

    async def in_error() -> bool:
        shown = await status_of()
        return shown["status"] == "error" and "rejected the API token" in shown["last_error"]

    await eventually(in_error)
    assert fake.unacked("shop")  # waits, not dropped
    state.users_by_token[ADMIN_TOKEN] = admin
    await eventually(lambda: not fake.unacked("shop"), timeout=30)
    assert contents(emulator, view["inbox_id"]) == ["e1"]
    await eventually(lambda: _active(status_of))

    del state.inboxes[view["inbox_id"]]
    await fake.emit("shop", "message.exchange", text_message("e2", B, "e2"))

    async def inbox_gone() -> bool:
        shown = await status_of()
        return shown["status"] == "error" and "was deleted in Chatwoot" in shown["last_error"]

    await eventually(inbox_gone)


async def _active(status_of: Any) -> bool:
    shown = await status_of()
    return bool(shown["status"] == "active")


async def test_pause_mid_stream_then_resume_loses_and_duplicates_nothing(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("z0", A, "z0"))
    await eventually(lambda: not fake.unacked("shop"))
    emulator.emulator.faults.add(method="POST", path=r".*/messages$", latency=0.02)
    for i in range(1, 21):
        await fake.emit("shop", "message.exchange", text_message(f"z{i}", A if i % 2 else B, f"z{i}"))
    await eventually(lambda: len(inbox_messages(emulator, view["inbox_id"])) >= 4)
    status, _ = await bridge.call("POST", f"/v1/integrations/{view['id']}/pause")
    assert status == 200
    status, _ = await bridge.call("POST", f"/v1/integrations/{view['id']}/resume")
    assert status == 200
    await eventually(lambda: not fake.unacked("shop"), timeout=40)
    per_chat = contents_per_chat(emulator, view["inbox_id"])
    assert per_chat[A] == ["z0"] + [f"z{i}" for i in range(1, 21) if i % 2]
    assert per_chat[B] == [f"z{i}" for i in range(1, 21) if not i % 2]
