"""The bridge's side of the negotiated link batching, against both generations of RyzeAPI (the fake
in either mode): it always asks, acks with ``acks`` frames only when granted, relays a batch exactly
like single events (in order per chat, once), and replays batches correctly after a reconnect."""

from __future__ import annotations

from ryze.emulator import RunningEmulator

from .conftest import RunningBridge, eventually
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import contents, contents_per_chat

A = "5511999990101@s.whatsapp.net"
B = "5511999990102@s.whatsapp.net"
C = "5511999990103@s.whatsapp.net"
CHATS = (A, B, C)


async def _setup(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge) -> int:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201, view
    await eventually(lambda: fake.connected("shop"))
    return int(view["inbox_id"])


async def _link_down(fake: FakeRyzeAPI) -> None:
    fake.refuse = True
    await fake.drop("shop")
    await eventually(lambda: not fake.connected("shop"))


async def test_batched_link_replays_a_backlog_in_order_once(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    inbox_id = await _setup(emulator, fake, bridge)
    log = fake.log("shop")
    assert log.resume_frames[-1].batch is True and log.batch
    await fake.emit("shop", "message.exchange", text_message("warm", A, "warm"))
    await eventually(lambda: not fake.unacked("shop"))
    # The link drops; a backlog over several chats builds up, then comes back in events frames.
    await _link_down(fake)
    fake.max_batch = 16
    for i in range(90):
        await fake.emit("shop", "message.exchange", text_message(f"b{i}", CHATS[i % 3], f"b{i}"))
    fake.refuse = False
    await eventually(lambda: fake.connected("shop"))
    await eventually(lambda: not fake.unacked("shop"), timeout=60)
    per_chat = contents_per_chat(emulator, inbox_id)
    for n, chat in enumerate(CHATS):
        expected = [f"b{i}" for i in range(90) if i % 3 == n]
        assert per_chat[chat] == (["warm", *expected] if chat == A else expected)
    assert log.sent["events"] >= 90 // 16 and log.sent["event"] == 0
    # Every seq acked, each once; acks travelled in acks frames, never one ack per frame.
    assert sorted(log.acks_received) == sorted({s for s, _ in log.events})
    assert len(log.acks_received) == len(set(log.acks_received))
    assert log.received["acks"] >= 1 and log.received["ack"] == 0
    assert fake.violations == []


async def test_older_ryzeapi_gets_single_acks(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    fake.batch = False  # ignores the request: ready without the field, one event per frame
    inbox_id = await _setup(emulator, fake, bridge)
    log = fake.log("shop")
    assert log.resume_frames[-1].batch is True and not log.batch
    for i in range(30):
        await fake.emit("shop", "message.exchange", text_message(f"o{i}", CHATS[i % 3], f"o{i}"))
    await eventually(lambda: not fake.unacked("shop"), timeout=40)
    assert sorted(contents(emulator, inbox_id)) == sorted(f"o{i}" for i in range(30))
    assert log.sent["event"] == 30 and log.sent["events"] == 0
    assert log.received["ack"] == 30 and log.received["acks"] == 0
    assert fake.violations == []


async def test_ryzeapi_downgraded_between_connections(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    """What was granted on one connection is not assumed on the next: an older RyzeAPI behind the
    same URL after a reconnect gets single acks, including for the seqs done while it was down."""
    inbox_id = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("n0", A, "n0"))
    await eventually(lambda: not fake.unacked("shop"))
    await _link_down(fake)
    fake.batch = False
    for i in range(1, 6):
        await fake.emit("shop", "message.exchange", text_message(f"n{i}", A, f"n{i}"))
    fake.refuse = False
    await eventually(lambda: fake.connected("shop"))
    await eventually(lambda: not fake.unacked("shop"), timeout=40)
    assert contents(emulator, inbox_id) == [f"n{i}" for i in range(6)]
    log = fake.log("shop")
    assert log.received["ack"] >= 5  # the replay on the older connection, acked one by one
    assert fake.violations == []
