"""A history sync on the bridge link: markers around each chunk, its messages flagged ``history``
per chat oldest first (a message already stored offered again, as stored), and the
``history_sync`` command asking the phone again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ryze.engines.simulated import Inbound
from ryze.engines.simulated.traffic import wa_now

from .fake_bridge import FakeBridge
from .harness import Ryze
from .test_link import CONTACT, LinkClient, link, linked_instance

OTHER = "5511977776666"


def _ago(sender: str, text: str, hours: float, **extra: Any) -> Inbound:
    return Inbound(sender=sender, text=text, timestamp=wa_now() - timedelta(hours=hours), **extra)


def _summary(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for e in events:
        env = e["event"]
        if env["event"] == "history.sync":
            out.append(("history.sync", env["data"]["phase"], env["data"]["syncType"]))
        else:
            message = env["data"]["message"]
            flag = "history" if message.get("history") else "live"
            out.append(
                (flag, message["chat"]["jid"].split("@")[0], message.get("content", {}).get("text", ""))
            )
    return out


async def test_a_history_chunk_is_framed_by_markers_and_offered_per_chat_oldest_first(
    ryze: Ryze, fake_bridge: FakeBridge
) -> None:
    session = await linked_instance(ryze, "hist-link")
    [live_id] = await session.deliver([Inbound(sender=CONTACT, text="live")])
    await session.deliver_history(
        [
            _ago(CONTACT, "newer", 1),
            _ago(OTHER, "other chat", 2),
            _ago(CONTACT, "older", 5),
            Inbound(sender=CONTACT, text="live", id=live_id, timestamp=wa_now()),  # stored already
        ]
    )
    async with link(ryze, "hist-link", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        events = await client.events(ready["pending"])
    summary = _summary([e for e in events if e["event"]["event"] != "instance.state"])
    assert summary[0] == ("live", CONTACT, "live")
    assert summary[1] == ("history.sync", "started", "recent")
    assert summary[-1] == ("history.sync", "finished", "recent")
    inner = summary[2:-1]
    assert [s for s in inner if s[1] == CONTACT] == [
        ("history", CONTACT, "older"), ("history", CONTACT, "newer"), ("history", CONTACT, "live"),
    ]  # fmt: skip
    assert [s for s in inner if s[1] == OTHER] == [("history", OTHER, "other chat")]
    started = next(e for e in events if e["event"]["event"] == "history.sync")["event"]["data"]
    assert (started["chats"], started["messages"], started["final"]) == (2, 4, True)
    stamps = {
        (bool(m.get("history")), m["content"]["text"]): m["timestamp"]
        for m in (e["event"]["data"]["message"] for e in events if e["event"]["event"] == "message.exchange")
    }
    assert stamps[(True, "older")] < stamps[(True, "newer")] < stamps[(False, "live")]  # original times


async def test_the_history_sync_command_asks_the_phone_and_its_answer_follows(
    ryze: Ryze, fake_bridge: FakeBridge
) -> None:
    session = await linked_instance(ryze, "hist-cmd")
    await session.deliver_history([_ago(CONTACT, "last week", 24 * 6), _ago(CONTACT, "last month", 24 * 30)])
    async with link(ryze, "hist-cmd", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        before = await client.events(ready["pending"])
        for e in before:
            await client.send({"type": "ack", "seq": e["seq"]})
        await client.send(
            {
                "type": "command",
                "id": "cwhistory-1",
                "action": "history_sync",
                "params": {"days": 7, "count": 10},
            }
        )
        frames = []
        while len(frames) < 4:  # the result and the on-demand chunk: started, 1 message, finished
            frame = await client.recv()
            frames.append(frame)
        result = next(f for f in frames if f["type"] == "result")
        assert result == {"type": "result", "id": "cwhistory-1", "ok": True, "retryable": False}
        answer = _summary([f for f in frames if f["type"] == "event"])
        assert answer == [
            ("history.sync", "started", "on_demand"), ("history", CONTACT, "last week"),
            ("history.sync", "finished", "on_demand"),
        ]  # fmt: skip
        await session.disconnect()
        await client.send({"type": "command", "id": "cwhistory-2", "action": "history_sync", "params": {}})
        while True:
            frame = await client.recv()
            if frame["type"] == "result":
                break
        assert frame["ok"] is False and frame["retryable"] is True
        assert frame["error"] == "Instance is not connected to WhatsApp"
