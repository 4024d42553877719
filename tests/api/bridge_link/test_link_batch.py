"""The negotiated batching of the bridge link (``events`` / ``acks`` frames) over a real WebSocket:
granted only when asked, the replay and live events in ``events`` frames within the caps, ``acks``
pruning like single acks, replay after a reconnect, and the window still counting events."""

from __future__ import annotations

import math
from typing import Any

from ryze.api.bridge_link.link import LinkSettings

from .fake_bridge import FakeBridge
from .harness import Ryze
from .test_link import CONTACT, LinkClient, deliver_texts, link, linked_instance, texts_of


async def batched_resume(client: LinkClient, after: int) -> dict[str, Any]:
    await client.send({"type": "resume", "after": after, "batch": True})
    ready = await client.recv()
    assert ready["type"] == "ready", ready
    return ready


async def event_frames(client: LinkClient, count: int) -> list[list[dict[str, Any]]]:
    """The ``events`` frames carrying the next ``count`` events, each as its list of events."""
    frames: list[list[dict[str, Any]]] = []
    while sum(map(len, frames)) < count:
        frame = await client.recv()
        assert frame["type"] == "events", frame
        assert frame["events"], "an events frame is never empty"
        frames.append(frame["events"])
    assert sum(map(len, frames)) == count, "a frame carried more events than expected"
    return frames


def flat(frames: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [e for f in frames for e in f]


async def test_batching_is_granted_only_when_asked(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    session = await linked_instance(ryze, "asks")
    await deliver_texts(session, ["a", "b", "c"])
    # An older bridge (no capability): ready says no, events come one per frame.
    async with link(ryze, "asks", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        assert ready.get("batch") is False
        singles = await client.events(ready["pending"])  # asserts every frame is an `event`
        assert texts_of(singles) == ["a", "b", "c"]
        assert await client.until_pong() == []
    # A RyzeAPI configured without batching answers no even when asked.
    ryze.module.hub.settings = LinkSettings(batch=False)
    async with link(ryze, "asks", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await batched_resume(client, 0)
        assert ready["batch"] is False
        assert [e["seq"] for e in await client.events(ready["pending"])] == [e["seq"] for e in singles]


async def test_batched_replay_acks_and_reconnect(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    session = await linked_instance(ryze, "batched")
    await deliver_texts(session, [f"m{i}" for i in range(20)])  # no link: all wait in the log
    async with link(ryze, "batched", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await batched_resume(client, 0)
        assert ready["batch"] is True
        frames = await event_frames(client, ready["pending"])
        # What one read returned went out together: as few frames as the 64-event cap allows.
        assert len(frames) == math.ceil(ready["pending"] / 64)
        first = flat(frames)
        seqs = [e["seq"] for e in first]
        assert seqs == sorted(set(seqs)) and ready["last_seq"] == seqs[-1]
        assert texts_of(first) == [f"m{i}" for i in range(20)]
        assert all("token" not in e["event"]["instanceData"] for e in first)
        # One acks frame, out of order, prunes like the single acks; a single ack still works.
        await client.send({"type": "acks", "seqs": [seqs[4], seqs[2], seqs[0], seqs[1], seqs[9]]})
        await client.send({"type": "ack", "seq": seqs[3]})
        assert await client.until_pong() == []  # nothing is sent twice on one connection
    watermark = seqs[4]
    expected = [s for s in seqs if s > watermark and s != seqs[9]]
    async with link(ryze, "batched", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await batched_resume(client, watermark)
        assert ready["pending"] == len(expected)
        again = flat(await event_frames(client, len(expected)))
        assert [e["seq"] for e in again] == expected
        assert [e["event"] for e in again] == [e["event"] for e in first if e["seq"] in expected]
        # Live events follow in events frames too, with the next seq, exactly once.
        await deliver_texts(session, ["live"])
        [live] = flat(await event_frames(client, 1))
        assert live["seq"] == seqs[-1] + 1 and texts_of([live]) == ["live"]
        await client.send({"type": "acks", "seqs": [e["seq"] for e in [*again, live]]})
        assert await client.until_pong() == []
    async with link(ryze, "batched", fake_bridge.token) as ws:
        ready = await batched_resume(LinkClient(ws), watermark)
        assert ready["pending"] == 0


async def test_frames_are_capped(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    ryze.module.hub.settings = LinkSettings(batch_max_events=3)
    session = await linked_instance(ryze, "capped")
    await deliver_texts(session, [f"c{i}" for i in range(10)])
    async with link(ryze, "capped", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await batched_resume(client, 0)
        frames = await event_frames(client, ready["pending"])
        assert max(map(len, frames)) == 3
        assert len(frames) == math.ceil(ready["pending"] / 3)
        assert texts_of(flat(frames)) == [f"c{i}" for i in range(10)]


async def test_window_counts_events_not_frames(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    ryze.module.hub.settings = LinkSettings(window=4)
    session = await linked_instance(ryze, "slowbatch")
    await deliver_texts(session, [f"w{i}" for i in range(10)])
    async with link(ryze, "slowbatch", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await batched_resume(client, 0)
        total = ready["pending"]
        assert total >= 10
        got = flat(await event_frames(client, 4))
        assert await client.until_pong() == []  # 4 events in flight: the window is full
        server_link = ryze.module.hub._links["slowbatch"]
        assert len(server_link.in_flight) == 4
        while len(got) < total:
            # Two acks in one frame free two slots: exactly two more events follow.
            oldest = [e["seq"] for e in got if e["seq"] in server_link.in_flight][:2]
            await client.send({"type": "acks", "seqs": oldest})
            more = min(len(oldest), total - len(got))
            got += flat(await event_frames(client, more))
            assert len(server_link.in_flight) <= 4
            assert await client.until_pong() == []  # and nothing beyond the window
        assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)
        assert texts_of(got) == [f"w{i}" for i in range(10)]


async def test_read_marks_on_sends_are_granted_when_asked_and_reach_the_phone(
    ryze: Ryze, fake_bridge: FakeBridge
) -> None:
    session = await linked_instance(ryze, "marks")
    [customer_id] = await deliver_texts(session, ["are you there?"])
    async with link(ryze, "marks", fake_bridge.token) as ws:  # an older bridge: not offered
        client = LinkClient(ws)
        assert (await client.resume(0)).get("mark_read_on_send") is False
    async with link(ryze, "marks", fake_bridge.token) as ws:
        client = LinkClient(ws)
        await client.send({"type": "resume", "after": 0, "mark_read_on_send": True})
        ready = await client.recv()
        assert ready["type"] == "ready" and ready["mark_read_on_send"] is True
        await client.events(ready["pending"])
        await client.send(
            {
                "type": "command",
                "id": "cw-marks-1",
                "action": "send_text",
                "params": {"to": CONTACT, "text": "yes", "markRead": [customer_id]},
            }
        )
        result = await client.recv()  # one result for the send and its read marks
        assert result["type"] == "result" and result["ok"] is True and result["id"] == "cw-marks-1"
    actions = [(m.get("action"), m.get("text"), m.get("messageIds")) for m in session.outbox_after(0)]
    assert actions[-2:] == [("message", "yes", None), ("read", None, [customer_id])]
