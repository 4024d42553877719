"""The simulated engine against the seam: the domain events a whatsmeow session would produce."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from ryze.engines.base import (
    ConnectionEvent,
    ConnectionState,
    DomainEvent,
    EngineError,
    Media,
    MessageEvent,
    NotConnectedError,
    OutgoingMedia,
    Quote,
    ReceiptEvent,
)
from ryze.engines.simulated import Inbound, InboundMedia, SimulatedEngine, SimulatedSession


class Sink:
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: DomainEvent) -> None:
        self.events.append(event)
        self.changed.set()

    def states(self) -> list[ConnectionState]:
        return [e.state for e in self.events if isinstance(e, ConnectionEvent)]

    def messages(self) -> list[MessageEvent]:
        return [e for e in self.events if isinstance(e, MessageEvent)]


async def open_connected(
    engine: SimulatedEngine, sink: Sink, number: str = "5511900000001"
) -> SimulatedSession:
    session = await engine.open_session("orion", sink)
    await session.connect()
    await session.scan(number, "Orion")
    return session


async def test_qr_then_scan_connects() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await engine.open_session("orion", sink)
    assert session.state == ConnectionState.DISCONNECTED
    result = await session.connect()
    assert result.state == ConnectionState.QR_READY and result.qr and result.qr.startswith("2@")
    again = await session.connect()
    assert again.qr == result.qr  # the same QR until it is scanned
    me = await session.scan("5511900000001", "Orion")
    assert me.jid == "5511900000001@s.whatsapp.net" and me.alt and me.alt.endswith("@lid")
    assert sink.states() == [ConnectionState.CONNECTING, ConnectionState.QR_READY, ConnectionState.CONNECTED]
    first, second = sink.events[1:]
    assert isinstance(first, ConnectionEvent) and first.qr == result.qr
    assert isinstance(second, ConnectionEvent) and second.me == me


async def test_auto_scan_connects_without_the_control_api() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=0), Sink()
    session = await engine.open_session("orion", sink)
    await session.connect()
    while session.state != ConnectionState.CONNECTED:
        sink.changed.clear()
        await asyncio.wait_for(sink.changed.wait(), timeout=5)
    assert session.me is not None


async def test_pairing_code_and_scan_without_qr_fails() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await engine.open_session("orion", sink)
    with pytest.raises(EngineError):
        await session.scan()
    result = await session.connect(pair_number="5511912345678")
    assert result.pairing_code is not None and len(result.pairing_code) == 8
    me = await session.scan()
    assert me.jid == "5511912345678@s.whatsapp.net"


async def test_sending_needs_a_connection() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await engine.open_session("orion", sink)
    with pytest.raises(NotConnectedError):
        await session.send_text("5511988887777@s.whatsapp.net", "hi")
    with pytest.raises(NotConnectedError):
        await session.mark_read("5511988887777@s.whatsapp.net", ("X",))


async def test_sends_are_reported_with_their_origin() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await open_connected(engine, sink)
    quote = Quote(
        id="Q1", chat="5511988887777@s.whatsapp.net", sender="5511988887777@s.whatsapp.net", from_me=False
    )
    sent = await session.send_text("5511988887777@s.whatsapp.net", "hi", quote=quote, origin="chatwoot:c1")
    [event] = sink.messages()
    assert event.origin == "chatwoot:c1"
    msg = event.message
    assert (msg.id, msg.timestamp) == (sent.id, sent.timestamp)
    assert msg.from_me and msg.kind == "text" and msg.text == "hi" and msg.reply_to == "Q1"
    assert msg.chat.jid == "5511988887777@s.whatsapp.net" and msg.sender == session.me
    assert msg.id.startswith("3EB0")


async def test_media_reaction_edit_revoke_sends() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await open_connected(engine, sink)
    chat = "120363000@g.us"
    media = OutgoingMedia(kind="audio", data=b"OggS..", mimetype="audio/ogg", voice=True)
    sent = await session.send_media(chat, media)
    await session.send_reaction(chat, sent.id, "❤️", target_from_me=True)
    await session.edit(chat, sent.id, "new text")
    await session.revoke(chat, sent.id)
    audio, reaction, edit, revoke = (e.message for e in sink.messages())
    assert audio.kind == "audio" and audio.is_group and audio.media is not None
    assert audio.media.kind == "ptt" and audio.media.size == 6
    assert await session.download_media(audio.media) == b"OggS.."
    assert (reaction.kind, reaction.target_id, reaction.emoji) == ("reaction", sent.id, "❤️")
    assert (edit.kind, edit.target_id, edit.text) == ("edit", sent.id, "new text")
    assert (revoke.kind, revoke.target_id) == ("revoke", sent.id)
    assert [i["kind"] for i in session.outbox_after(0)] == ["audio", "reaction", "edit", "revoke"]
    with pytest.raises(EngineError):
        await session.download_media(Media(kind="image", mimetype="image/png", handle=b"missing"))


async def test_read_and_presence_go_to_the_outbox_only() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await open_connected(engine, sink)
    before = len(sink.events)
    await session.mark_read("5511988887777@s.whatsapp.net", ("A", "B"))
    await session.send_presence("5511988887777@s.whatsapp.net", "composing")
    assert len(sink.events) == before
    read, presence = session.outbox_after(0)
    assert read["action"] == "read" and read["messageIds"] == ["A", "B"]
    assert presence == {
        "seq": presence["seq"],
        "action": "presence",
        "chat": "5511988887777@s.whatsapp.net",
        "state": "composing",
    }


async def test_a_group_read_mark_names_its_sender_like_whatsmeow() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await open_connected(engine, sink)
    group, bob = "120363000000000001@g.us", "5511988888888@s.whatsapp.net"
    await session.mark_read(group, ("G1", "G2"), sender=bob)
    # the neonize engine refuses a group mark without its author (MarkRead's participant): so here
    with pytest.raises(EngineError, match="sender"):
        await session.mark_read(group, ("G3",))
    await session.mark_read(group, ())  # nothing to mark: no receipt at all
    [read] = session.outbox_after(0)
    assert (read["chat"], read["messageIds"], read["sender"]) == (group, ["G1", "G2"], bob)


async def test_incoming_shapes() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await open_connected(engine, sink)
    await session.deliver(
        [
            Inbound(sender="5511988887777", push_name="João", text="1:1"),
            Inbound(sender="42@lid", sender_alt="5511977776666", group="1203@g.us", text="group"),
            Inbound(sender="5511988887777", from_me=True, text="from my phone"),
            Inbound(sender="5511988887777", kind="image", media=InboundMedia("image", b"img", "image/png")),
        ]
    )
    direct, group, own, image = (e.message for e in sink.messages())
    assert direct.chat == direct.sender and direct.chat.name == "João" and not direct.from_me
    assert group.is_group and group.chat.jid == "1203@g.us" and group.chat.name is None
    assert group.sender.jid == "42@lid" and group.sender.alt == "5511977776666@s.whatsapp.net"
    assert own.from_me and own.sender == session.me and own.chat.jid == "5511988887777@s.whatsapp.net"
    assert all(e.origin is None for e in sink.messages())
    assert image.media is not None and await session.download_media(image.media) == b"img"


async def test_receipts_and_offline_queue() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await open_connected(engine, sink)
    await session.disconnect()
    await session.deliver([Inbound(sender="5511988887777", text="queued")])
    await session.deliver_receipt("5511988887777", ("M1",), "read")
    assert not sink.messages()
    await session.connect()  # stored login: straight to connected, then the queue drains in order
    assert sink.states()[-1] == ConnectionState.CONNECTED
    message, receipt = sink.events[-2:]
    assert isinstance(message, MessageEvent) and message.message.text == "queued"
    assert isinstance(receipt, ReceiptEvent) and receipt.kind == "read" and receipt.message_ids == ("M1",)
    assert receipt.sender.jid == receipt.chat.jid == "5511988887777@s.whatsapp.net"


async def test_a_sink_failure_keeps_the_offline_queue_for_the_next_connect() -> None:
    """Failure contract (engines/base.py): what the sink did not store is not delivered. A failure
    while the offline queue drains used to lose that event and every one queued after it."""
    engine = SimulatedEngine(auto_connect_seconds=None)
    stored: list[str] = []
    failing = {"second": 1}

    async def sink(event: DomainEvent) -> None:
        if isinstance(event, MessageEvent):
            if failing.get(event.message.text, 0):
                failing[event.message.text] -= 1
                raise RuntimeError("database is locked")
            stored.append(event.message.text)

    session = await engine.open_session("orion", sink)
    await session.connect()
    await session.scan("5511900000001", "Orion")
    await session.disconnect()
    await session.deliver([Inbound(sender="5511988887777", text=t) for t in ("first", "second", "third")])
    with pytest.raises(RuntimeError):
        await session.connect()
    assert stored == ["first"]
    await session.disconnect()
    await session.connect()
    assert stored == ["first", "second", "third"]


async def test_logout_forgets_the_login() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await open_connected(engine, sink)
    await session.logout()
    assert session.state == ConnectionState.LOGGED_OUT and session.me is None
    assert "orion" not in engine.logins
    result = await session.connect()
    assert result.state == ConnectionState.QR_READY
    await engine.delete_session("orion")
    assert engine.session("orion") is None


async def test_concurrent_connects_share_one_qr() -> None:
    engine, sink = SimulatedEngine(auto_connect_seconds=None), Sink()
    session = await engine.open_session("orion", sink)
    first, second = await asyncio.gather(session.connect(), session.connect())
    assert first.qr == second.qr
    assert sink.states() == [ConnectionState.CONNECTING, ConnectionState.QR_READY]


async def test_the_outbox_journal_keeps_what_was_sent_beyond_the_process(tmp_path: Path) -> None:
    journal = tmp_path / "phone-network.jsonl"
    engine, sink = SimulatedEngine(auto_connect_seconds=None, outbox_log=journal), Sink()
    session = await open_connected(engine, sink)
    sent = await session.send_text("5511988887777@s.whatsapp.net", "first")
    await session.send_text("5511988887777@s.whatsapp.net", "second")
    await session.mark_read("5511988887777@s.whatsapp.net", ("A",))
    lines = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    # What the in-memory outbox holds (gone with a RyzeAPI restart), plus who sent it and when.
    assert [(i["instance"], i["action"], i.get("text")) for i in lines] == [
        ("orion", "message", "first"),
        ("orion", "message", "second"),
        ("orion", "read", None),
    ]
    assert lines[0]["id"] == sent.id and isinstance(lines[0]["logged_at"], float)
    assert [i["seq"] for i in lines] == [i["seq"] for i in session.outbox_after(0)]
