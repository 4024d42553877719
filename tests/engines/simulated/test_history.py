"""The simulated phone's history sync: sent on pairing, on request, and from the control API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ryze.engines.base import ConnectionEvent, DomainEvent, HistorySyncEvent, NotConnectedError
from ryze.engines.simulated import Inbound, InboundMedia, SimulatedEngine
from ryze.engines.simulated.traffic import wa_now

ANA, BIA = "5511977000001", "5511977000002"


class Sink:
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    async def __call__(self, event: DomainEvent) -> None:
        self.events.append(event)

    def syncs(self) -> list[HistorySyncEvent]:
        return [e for e in self.events if isinstance(e, HistorySyncEvent)]


def _ago(**delta: float) -> Inbound:
    return Inbound(sender=ANA, text=f"{delta}", timestamp=wa_now() - timedelta(**delta))


async def test_pairing_sends_the_phones_default_history_per_chat_oldest_first() -> None:
    photo = InboundMedia("image", b"\xff\xd8photo", "image/jpeg")
    engine = SimulatedEngine(
        auto_connect_seconds=None,
        default_history=[
            _ago(hours=1),
            Inbound(
                sender=BIA, kind="image", text="pic", media=photo, timestamp=wa_now() - timedelta(hours=2)
            ),
            _ago(days=2),
        ],
    )
    sink = Sink()
    session = await engine.open_session("orion", sink)
    await session.connect()
    await session.scan("5511900000001")
    [sync] = sink.syncs()
    assert isinstance(sink.events[sink.events.index(sync) - 1], ConnectionEvent)  # after "connected"
    assert sync.kind == "initial_bootstrap" and sync.final and sync.message_count == 3
    by_chat = {c.chat.jid: c for c in sync.chats}
    ana = by_chat[f"{ANA}@s.whatsapp.net"].messages
    assert [m.text for m in ana] == ["{'days': 2}", "{'hours': 1}"]
    [image] = by_chat[f"{BIA}@s.whatsapp.net"].messages
    assert image.media is not None and await session.download_media(image.media) == b"\xff\xd8photo"


async def test_a_request_answers_with_the_last_days_and_count_per_chat_including_live_messages() -> None:
    engine = SimulatedEngine(
        auto_connect_seconds=None, default_history=[_ago(days=9), _ago(days=3), _ago(days=2)]
    )
    sink = Sink()
    session = await engine.open_session("orion", sink)
    with pytest.raises(NotConnectedError):
        await session.request_history(days=7, count=10)
    await session.connect()
    await session.scan("5511900000001")
    [live] = await session.deliver([Inbound(sender=ANA, text="live")])
    await session.request_history(days=7, count=2)
    on_demand = sink.syncs()[-1]
    assert on_demand.kind == "on_demand"
    [chat] = on_demand.chats
    assert [m.text for m in chat.messages] == ["{'days': 2}", "live"]  # 7 days, the last 2
    assert chat.messages[-1].id == live
    assert session.outbox_after()[-1]["action"] == "history_request"


async def test_a_delivered_history_waits_while_offline_and_is_remembered() -> None:
    engine = SimulatedEngine(auto_connect_seconds=None)
    sink = Sink()
    session = await engine.open_session("orion", sink)
    event = await session.deliver_history([_ago(days=1)], kind="recent")
    assert sink.syncs() == []  # offline: queued
    await session.connect()
    await session.scan("5511900000001")
    first, bootstrap = sink.syncs()  # the queued one, then the pairing's bootstrap (remembered)
    assert first == event
    assert bootstrap.kind == "initial_bootstrap"
    assert [m.id for c in bootstrap.chats for m in c.messages] == [
        m.id for c in event.chats for m in c.messages
    ]
