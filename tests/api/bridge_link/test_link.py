"""The bridge link over a real WebSocket (uvicorn + the ``websockets`` client), simulated engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ryze.api.bridge_link.link import LinkSettings
from ryze.common.crypto import generate_key
from ryze.engines.simulated import GroupMember, Inbound, InboundMedia

from .fake_bridge import FakeBridge
from .harness import Ryze, start_ryze
from .test_routes import SET_BODY, activate

CONTACT = "5511988887777"


class LinkClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self) -> dict[str, Any]:
        while True:
            frame: dict[str, Any] = json.loads(await self.ws.recv())
            if frame["type"] == "ping":  # server keep-alive: answer and keep reading
                await self.send({"type": "pong", "ts": frame["ts"]})
                continue
            return frame

    async def resume(self, after: int) -> dict[str, Any]:
        await self.send({"type": "resume", "after": after})
        ready = await self.recv()
        assert ready["type"] == "ready", ready
        return ready

    async def events(self, count: int) -> list[dict[str, Any]]:
        out = []
        while len(out) < count:
            frame = await self.recv()
            assert frame["type"] == "event", frame
            out.append(frame)
        return out

    async def until_pong(self) -> list[dict[str, Any]]:
        """Everything the server sends before answering a ping of ours."""
        await self.send({"type": "ping", "ts": 1.5})
        seen = []
        while True:
            frame = await self.recv()
            if frame["type"] == "pong":
                assert frame["ts"] == 1.5
                return seen
            seen.append(frame)


def link(ryze: Ryze, instance: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return connect(f"{ryze.ws_base}/ws/chatwoot/{instance}", additional_headers=headers, compression=None)


async def linked_instance(ryze: Ryze, name: str) -> Any:
    await ryze.new_instance(name)
    assert (await activate(ryze, name)).status_code == 201
    return await ryze.connect_phone(name)


async def deliver_texts(session: Any, texts: list[str]) -> list[str]:
    ids: list[str] = await session.deliver([Inbound(sender=CONTACT, text=t) for t in texts])
    return ids


def texts_of(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["event"]["data"]["message"].get("content", {}).get("text", "")
        for e in events
        if e["event"]["event"] == "message.exchange"
    ]


async def test_link_refuses_bad_tokens_before_upgrade(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    await ryze_lite.new_instance("noint")
    await linked_instance(ryze_lite, "guarded")
    # A wrong secret is a failed authentication: 401, like a missing one (the words differ).
    cases = [
        ("guarded", None, 401, "Missing token"),
        ("guarded", "wrong-token", 401, "Invalid token"),
        ("guarded", ryze_lite.account_token, 401, "Invalid token"),  # not the bridge token
        ("missing", fake_bridge.token, 404, "instance not found"),
        ("noint", fake_bridge.token, 404, "no chatwoot integration for this instance"),
    ]
    for instance, token, status, words in cases:
        with pytest.raises(InvalidStatus) as caught:
            async with link(ryze_lite, instance, token):
                pass
        response = caught.value.response
        assert response.status_code == status, (instance, token)
        assert json.loads(response.body or b"{}")["error"]["message"] == words, (instance, token)
    async with link(ryze_lite, "guarded", fake_bridge.token) as ws:
        ready = await LinkClient(ws).resume(0)
        assert ready["instance"] == "guarded"


async def test_replay_after_reconnect_delivers_unacked_events_once_in_order(
    ryze: Ryze, fake_bridge: FakeBridge
) -> None:
    session = await linked_instance(ryze, "replay")
    # Nothing is connected: the log keeps every event.
    await deliver_texts(session, [f"m{i}" for i in range(20)])
    async with link(ryze, "replay", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        first = await client.events(ready["pending"])
        seqs = [e["seq"] for e in first]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert ready["last_seq"] == seqs[-1]
        assert texts_of(first) == [f"m{i}" for i in range(20)]
        assert all("token" not in e["event"]["instanceData"] for e in first)
        # Commit the first five and one further ahead, out of order.
        for seq in [seqs[4], seqs[2], seqs[0], seqs[1], seqs[3], seqs[9]]:
            await client.send({"type": "ack", "seq": seq})
        assert await client.until_pong() == []  # nothing is sent twice on one connection
    watermark = seqs[4]
    expected = [s for s in seqs if s > watermark and s != seqs[9]]
    async with link(ryze, "replay", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(watermark)
        assert ready["pending"] == len(expected)
        again = await client.events(len(expected))
        assert [e["seq"] for e in again] == expected
        assert [e["event"] for e in again] == [e["event"] for e in first if e["seq"] in expected]
        # Live events follow the replay, with the next seq, exactly once.
        await deliver_texts(session, ["live"])
        [live] = await client.events(1)
        assert live["seq"] == seqs[-1] + 1 and texts_of([live]) == ["live"]
        for e in [*again, live]:
            await client.send({"type": "ack", "seq": e["seq"]})
        assert await client.until_pong() == []
    async with link(ryze, "replay", fake_bridge.token) as ws:
        ready = await LinkClient(ws).resume(watermark)
        assert ready["pending"] == 0


async def test_replayed_command_sends_one_whatsapp_message(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    session = await linked_instance(ryze, "cmd")
    command = {
        "type": "command",
        "id": "cw-msg-1",
        "action": "send_text",
        "params": {"to": CONTACT, "text": "hi!"},
    }
    async with link(ryze, "cmd", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        await client.events(ready["pending"])
        await client.send(command)
        result = await client.recv()  # the result only: its message is not echoed as an event
        assert result["type"] == "result" and result["ok"] is True and result["id"] == "cw-msg-1"
        await client.send(command)  # the bridge did not see the result: it retries
        assert await client.recv() == result
        assert await client.until_pong() == []
    async with link(ryze, "cmd", fake_bridge.token) as ws:  # a retry on a new link
        client = LinkClient(ws)
        # Nothing was logged after the first link's ready: the sent message waits nowhere.
        assert (await client.resume(ready["last_seq"]))["pending"] == 0
        await client.send(command)
        assert await client.recv() == result
    sent = [m for m in session.outbox_after(0) if m.get("action") == "message" and m.get("text") == "hi!"]
    assert len(sent) == 1


async def test_a_send_that_cannot_be_stored_is_answered_sent_and_never_sent_twice(
    ryze: Ryze, fake_bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await linked_instance(ryze, "unstored")
    pipeline = ryze.services.messaging._pipeline

    async def database_down(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("database is unreachable")

    command = {
        "type": "command",
        "id": "cw-unstored-1",
        "action": "send_text",
        "params": {"to": CONTACT, "text": "out, not stored"},
    }
    async with link(ryze, "unstored", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        await client.events(ready["pending"])
        monkeypatch.setattr(pipeline, "store_message", database_down)
        await client.send(command)
        result = await client.recv()
        sent = [m for m in session.outbox_after(0) if m.get("text") == "out, not stored"]
        assert len(sent) == 1
        # Retrying a "failed" send would put a second copy on WhatsApp: it is answered as sent.
        assert (result["ok"], result["wa_message_id"]) == (True, sent[0]["id"])
        monkeypatch.undo()
        await client.send(command)  # the bridge retries anyway (it missed the result)
        assert await client.recv() == result
    assert len([m for m in session.outbox_after(0) if m.get("text") == "out, not stored"]) == 1


async def test_command_while_phone_disconnected_is_retryable(
    ryze_lite: Ryze, fake_bridge: FakeBridge
) -> None:
    await ryze_lite.new_instance("offline")
    assert (await activate(ryze_lite, "offline")).status_code == 201
    async with link(ryze_lite, "offline", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        await client.events(ready["pending"])
        await client.send(
            {"type": "command", "id": "c-off", "action": "send_text", "params": {"to": CONTACT, "text": "x"}}
        )
        result = await client.recv()
        assert (result["ok"], result["retryable"]) == (False, True)
        await client.send({"type": "bogus"})
        assert (await client.recv())["type"] == "error"  # malformed frames do not kill the link


async def test_second_connection_replaces_the_first(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    await linked_instance(ryze, "twice")
    async with link(ryze, "twice", fake_bridge.token) as ws1:
        first = LinkClient(ws1)
        await first.resume(0)
        async with link(ryze, "twice", fake_bridge.token) as ws2:
            await LinkClient(ws2).resume(0)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await first.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
            assert ryze.module.hub.connected("twice")


async def test_window_bounds_unacked_events(ryze: Ryze, fake_bridge: FakeBridge) -> None:
    ryze.module.hub.settings = LinkSettings(window=4)
    session = await linked_instance(ryze, "slow")
    await deliver_texts(session, [f"w{i}" for i in range(10)])
    async with link(ryze, "slow", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        total = ready["pending"]
        assert total >= 10
        got = await client.events(4)
        assert await client.until_pong() == []  # the window is full: nothing more until an ack
        server_link = ryze.module.hub._links["slow"]
        assert len(server_link.in_flight) == 4
        while len(got) < total:
            await client.send({"type": "ack", "seq": got[len(got) - 4]["seq"]})
            got += await client.events(1)
            assert len(server_link.in_flight) <= 4
        assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)
        assert texts_of(got) == [f"w{i}" for i in range(10)]


async def test_media_route_for_the_bridge(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    session = await linked_instance(ryze_lite, "media")
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    [media_id] = await session.deliver(
        [
            Inbound(
                sender=CONTACT, kind="image", media=InboundMedia(kind="image", data=png, mimetype="image/png")
            )
        ]
    )
    async with link(ryze_lite, "media", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        events = await client.events(ready["pending"])
    [image] = [e for e in events if e["event"]["data"].get("id") == media_id]
    url = image["event"]["data"]["message"]["media"]["url"]
    assert url == f"http://ryzeapi.internal:8080/internal/media/media/{media_id}"
    path = url.removeprefix("http://ryzeapi.internal:8080")
    async with ryze_lite.client(token="") as c:
        ok = await c.get(path, headers={"Authorization": f"Bearer {fake_bridge.token}"})
        assert ok.status_code == 200 and ok.content == png and ok.headers["content-type"] == "image/png"
        assert (await c.get(path)).status_code == 401
        assert (await c.get(path)).json()["error"]["message"] == "Missing token"
        wrong = await c.get(path, headers={"Authorization": "Bearer nope"})
        assert (wrong.status_code, wrong.json()["error"]["message"]) == (401, "Invalid token")
        missing = await c.get(
            "/internal/media/media/nope", headers={"Authorization": f"Bearer {fake_bridge.token}"}
        )
        assert missing.status_code == 404


async def test_group_flow_is_logged_and_offered_on_the_link(ryze_lite: Ryze, fake_bridge: FakeBridge) -> None:
    """A group change reaches the bridge through the durable log, in order with the group's
    messages, which then carry the subject in ``chat.name``."""
    session = await linked_instance(ryze_lite, "groups")
    group = "120363000000000009@g.us"
    await session.create_group(group, "Família", (GroupMember(CONTACT),), actor=CONTACT)
    await session.deliver([Inbound(sender=CONTACT, group=group, text="oi")])
    await session.rename_group(group, "Família 2026", actor=CONTACT)
    async with link(ryze_lite, "groups", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        events = [e["event"] for e in await client.events(ready["pending"])]
    relevant = [e for e in events if e["event"] in ("group.flow", "message.exchange")]
    assert [e["event"] for e in relevant] == ["group.flow", "message.exchange", "group.flow"]
    create, message, rename = relevant
    assert create["data"]["action"] == "create" and create["data"]["chat"]["name"] == "Família"
    assert create["data"]["participants"] == [{"jid": f"{CONTACT}@s.whatsapp.net"}]
    assert message["data"]["message"]["chat"] == {"jid": group, "name": "Família", "type": "group"}
    assert rename["data"]["action"] == "subject" and rename["data"]["subject"] == "Família 2026"
    assert all("token" not in e["instanceData"] for e in relevant)


async def test_the_bridge_may_link_while_activation_is_in_flight(
    ryze_lite: Ryze, fake_bridge: FakeBridge
) -> None:
    fake_bridge.dial_link_from = ryze_lite.ws_base
    await ryze_lite.new_instance("early")
    assert (await activate(ryze_lite, "early")).status_code == 201
    assert [f["type"] for f in fake_bridge.dialed] == ["ready"]
    body = await ryze_lite.new_instance("early-inline", chatwootEnabled=True, **SET_BODY)
    assert body["chatwoot"]["status"] == "active"
    assert len(fake_bridge.dialed) == 2


async def test_untracked_instances_are_not_logged_and_delete_closes_the_link(
    ryze_lite: Ryze, fake_bridge: FakeBridge
) -> None:
    plain = await ryze_lite.new_instance("plain")
    assert "chatwoot" not in plain
    session = await ryze_lite.connect_phone("plain")
    await deliver_texts(session, ["not for the bridge"])
    async with ryze_lite.services.db.engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM chatwoot_event_log WHERE instance_name = 'plain'")
        )
    assert count == 0

    await linked_instance(ryze_lite, "closing")
    async with link(ryze_lite, "closing", fake_bridge.token) as ws:
        client = LinkClient(ws)
        await client.resume(0)
        async with ryze_lite.client() as c:
            assert (await c.delete("/api/chatwoot/delete/closing")).status_code == 200
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await client.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4004
    with pytest.raises(InvalidStatus) as caught:
        async with link(ryze_lite, "closing", fake_bridge.token):
            pass
    assert caught.value.response.status_code == 404


async def test_unacked_events_survive_a_restart(
    database_url: str, tmp_path: Path, fake_bridge: FakeBridge
) -> None:
    key = generate_key()
    first = await start_ryze(
        database_url,
        tmp_path / "d",
        bridge_url=fake_bridge.url,
        bridge_token=fake_bridge.token,
        encryption_key=key,
    )
    try:
        session = await linked_instance(first, "durable")
        await deliver_texts(session, ["before-restart-1", "before-restart-2"])
        async with link(first, "durable", fake_bridge.token) as ws:
            client = LinkClient(ws)
            ready = await client.resume(0)
            events = await client.events(ready["pending"])
            await client.send({"type": "ack", "seq": events[0]["seq"]})
            assert await client.until_pong() == []
    finally:
        await first.stop()
    second = await start_ryze(
        database_url,
        tmp_path / "d",
        bridge_url=fake_bridge.url,
        bridge_token=fake_bridge.token,
        encryption_key=key,
    )
    try:
        async with link(second, "durable", fake_bridge.token) as ws:
            client = LinkClient(ws)
            ready = await client.resume(0)
            replay = await client.events(ready["pending"])
        # Every unacked event comes back, in order (plus the state events of the restart itself).
        assert [e["seq"] for e in replay][: len(events) - 1] == [e["seq"] for e in events[1:]]
        assert texts_of(replay) == ["before-restart-1", "before-restart-2"]
        # New events continue the seq: never reused after a restart.
        await second.connect_phone("durable")
        async with link(second, "durable", fake_bridge.token) as ws:
            client = LinkClient(ws)
            ready = await client.resume(events[-1]["seq"])
            assert ready["last_seq"] > events[-1]["seq"]
    finally:
        await second.stop()


async def test_resume_beyond_the_last_seq_is_refused_and_the_log_kept(
    ryze: Ryze, fake_bridge: FakeBridge
) -> None:
    """A bridge whose watermark is ahead of the log (RyzeAPI's database restored from a backup)
    used to have every waiting event pruned by its resume, unseen."""
    session = await linked_instance(ryze, "ahead")
    await deliver_texts(session, ["one", "two"])
    async with link(ryze, "ahead", fake_bridge.token) as ws:
        client = LinkClient(ws)
        await client.send({"type": "resume", "after": 10_000})
        error = await client.recv()
        assert error["type"] == "error" and "beyond the last seq" in error["message"]
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
    async with link(ryze, "ahead", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        assert texts_of(await client.events(ready["pending"]))[-2:] == ["one", "two"]


async def test_u0000_is_stored_on_both_databases_and_reaches_the_link(
    ryze: Ryze, fake_bridge: FakeBridge
) -> None:
    """PostgreSQL cannot store U+0000: an API send with it answered 500 "sent but could not be
    stored", and an incoming message with it was lost from the store and the link. It is stored
    (and relayed) with U+FFFD in its place, on both databases."""
    session = await linked_instance(ryze, "nul")
    pdf = InboundMedia(kind="document", data=b"%PDF-1.4 x", mimetype="application/pdf", file_name="a\x00.pdf")
    await session.deliver([
        Inbound(sender=CONTACT, text="in\x00bound", push_name="Ma\x00ria"),
        Inbound(sender=CONTACT, kind="document", text="cap\x00tion", media=pdf),
    ])  # fmt: skip
    async with ryze.client() as c:
        sent = await c.post("/api/message/text/nul", json={"number": CONTACT, "message": "out\x00going"})
        assert sent.status_code == 200, sent.text
        stored = await c.get(
            "/api/chat/getMessage/nul", params={"messageId": sent.json()["data"]["messageId"]}
        )
        assert stored.status_code == 200, stored.text
        assert stored.json()["data"]["content"]["text"] == "out\ufffdgoing"
    async with link(ryze, "nul", fake_bridge.token) as ws:
        client = LinkClient(ws)
        ready = await client.resume(0)
        events = await client.events(ready["pending"])
    assert texts_of(events)[-3:] == ["in\ufffdbound", "cap\ufffdtion", "out\ufffdgoing"]
    contact_message = events[-3]["event"]["data"]
    assert "\x00" not in json.dumps(events)
    assert "Ma\ufffdria" in json.dumps(contact_message, ensure_ascii=False)
    document = events[-2]["event"]["data"]["message"]
    assert "a\ufffd.pdf" in json.dumps(document, ensure_ascii=False)
