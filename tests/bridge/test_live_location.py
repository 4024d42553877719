"""A live location's later positions: shown without flooding the conversation, its end always.

Real bridge against the Chatwoot emulator and a fake RyzeAPI. Chatwoot cannot change a message's
content, so the share's first position is a message of its own and the later ones are replies to
it, at most one per ``live_location_interval``; the last one (the share stopped) always shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ryze.emulator import RunningEmulator
from ryze.emulator.state import Message

from .conftest import RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI, wa_message
from .helpers import inbox_messages

CHAT = "5511999990077@s.whatsapp.net"


async def _activate(bridge: RunningBridge, fake: FakeRyzeAPI, emulator: RunningEmulator) -> int:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201, view
    await eventually(lambda: fake.connected("shop"))
    return int(view["inbox_id"])


def _live(wa_id: str, lat: float, sequence: int, *, ended: bool = False) -> dict[str, Any]:
    location: dict[str, Any] = {"latitude": lat, "longitude": -46.6, "live": True, "sequence": sequence}
    if ended:
        location["ended"] = True
    return wa_message(wa_id, CHAT, "location", location=location)


async def _relay(fake: FakeRyzeAPI, *events: dict[str, Any]) -> None:
    for event in events:
        await fake.emit("shop", "message.exchange", event)
    await eventually(lambda: not fake.unacked("shop"))


def _lines(emulator: RunningEmulator, inbox_id: int) -> list[Message]:
    return [m for m in inbox_messages(emulator, inbox_id) if (m.content or "").startswith("📍")]


async def test_updates_are_throttled_and_the_end_is_shown_as_a_reply_to_the_share(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path, database_url, live_location_interval=3600.0) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        await _relay(fake, _live("L0", -23.50, 1), _live("L1", -23.51, 2), _live("L2", -23.52, 3))
        [start] = _lines(emulator, inbox_id)  # within the interval: the updates are not shown
        assert start.content is not None and start.content.startswith("📍 Live location (started sharing)")
        assert "-23.500000, -46.600000" in start.content
        await _relay(fake, _live("L3", -23.53, 4, ended=True))
        await _relay(fake, _live("L2", -23.52, 3))  # a replay of a skipped update: still nothing
        start_again, end = _lines(emulator, inbox_id)
        assert start_again.id == start.id
        assert end.content is not None and end.content.startswith("📍 Live location ended · last position")
        assert "-23.530000, -46.600000" in end.content
        assert end.content_attributes["in_reply_to"] == start.id  # in the share's thread
        # a position after the end is a new share: a message of its own
        await _relay(fake, _live("M0", -22.90, 1))
        *_, new = _lines(emulator, inbox_id)
        assert new.content is not None and new.content.startswith("📍 Live location (started sharing)")
        assert "in_reply_to" not in new.content_attributes


async def test_each_update_past_the_interval_is_a_reply_with_the_new_position(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path, database_url, live_location_interval=0.0) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        await _relay(fake, _live("N0", -23.50, 1), _live("N1", -23.61, 2), _live("N2", -23.72, 3))
        start, first, second = _lines(emulator, inbox_id)
        assert [m.content_attributes.get("in_reply_to") for m in (first, second)] == [start.id, start.id]
        assert first.content is not None and "-23.610000" in first.content
        assert second.content is not None and second.content.startswith("📍 Live location · now at")
        assert "-23.720000" in second.content
