"""The history import in the inbound relay: window, original time, dedupe against the live relay,
progress posts into the connection conversation, and the ``resync`` callable."""

# ruff: noqa: F811  (the tests take the imported ``harness`` fixture as a parameter)
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.fake_ryzeapi import envelope, text_message
from bridge.test_relay_ports import CHAT, Harness, _until, harness  # noqa: F401 (the fixture)
from ryze.bridge.link.client import LinkUnavailable
from ryze.bridge.relay.history.progress import HistoryProgress
from ryze.bridge.relay.history.resync import history_resync
from ryze.bridge.relay.inbound.consumer import InboundRelay
from ryze.bridge.relay.inbound.lanes import LaneRouter
from ryze.bridge.relay.inbound.resolver import ConversationPolicy, ConversationResolver
from ryze.protocol import CommandFrame, EventEnvelope, ResultFrame

OTHER = "5511999990002@s.whatsapp.net"


class FakeRoom:
    """The connection conversation as the import sees it (``ControlRoom``)."""

    def __init__(self) -> None:
        self.posts: list[str] = []

    async def post(self, text: str, *, private: bool = False) -> int:
        self.posts.append(text)
        return len(self.posts)

    async def conversation_id(self) -> int:
        return 1


def _relay(
    h: Harness, room: FakeRoom | None
) -> tuple[InboundRelay, list[int], HistoryProgress, list[dict[str, Any]]]:
    done: list[int] = []
    saved: list[dict[str, Any]] = []

    async def save(**values: Any) -> None:
        saved.append(values)

    progress = HistoryProgress(h.record, save=save, room=room)
    resolver = ConversationResolver(
        integration_id=h.record.id,
        inbox_id=7,
        chats=h.repos.chats,
        client=lambda: h.chatwoot,
        policy=lambda: ConversationPolicy(False, False),
    )
    relay = InboundRelay(
        h.context, lanes=LaneRouter(max_concurrent=4, name="t"), resolver=resolver, done=done.append,
        history=progress,
    )  # fmt: skip
    return relay, done, progress, saved


def _old(wa_id: str, chat: str, text: str, *, days_ago: float, from_me: bool = False) -> EventEnvelope:
    message = text_message(wa_id, chat, text, from_me=from_me)["message"]
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    message["timestamp"] = when.isoformat().replace("+00:00", "Z")
    message["history"] = True
    return EventEnvelope.model_validate(
        envelope("message.exchange", {"id": wa_id, "message": message}, "shop")
    )


def _live(wa_id: str, chat: str, text: str) -> EventEnvelope:
    message = text_message(wa_id, chat, text)["message"]
    return EventEnvelope.model_validate(
        envelope("message.exchange", {"id": wa_id, "message": message}, "shop")
    )


def _marker(phase: str, *, messages: int, chats: int, final: bool = True) -> EventEnvelope:
    data = {
        "phase": phase,
        "syncType": "initial_bootstrap",
        "final": final,
        "messages": messages,
        "chats": chats,
    }
    return EventEnvelope.model_validate(envelope("history.sync", data, "shop"))


async def test_history_messages_are_imported_in_their_window_with_their_time_and_counted(
    harness: Harness,
) -> None:
    room = FakeRoom()
    relay, done, _progress, saved = _relay(harness, room)
    relay.on_event(1, _live("LIVE-1", CHAT, "live"), False)
    await _until(lambda: done == [1])
    relay.on_event(2, _marker("started", messages=4, chats=2), False)
    relay.on_event(3, _old("H-1", CHAT, "three days ago", days_ago=3), False)
    relay.on_event(4, _old("LIVE-1", CHAT, "live", days_ago=0.01), False)  # relayed live, new seq
    relay.on_event(5, _old("H-2", CHAT, "*mine*", days_ago=1, from_me=True), False)
    relay.on_event(6, _old("H-3", OTHER, "a month ago", days_ago=30), False)
    relay.on_event(7, _marker("finished", messages=4, chats=2), False)
    await _until(lambda: sorted(done) == [1, 2, 3, 4, 5, 6, 7])

    contents = [(m.content, m.message_type) for m in harness.chatwoot.public_messages()]
    assert contents[0] == ("live", "incoming")
    first, second = contents[1:]
    assert first[0].startswith("🕓 ") and first[0].endswith("· from WhatsApp history\nthree days ago")
    assert second[0].endswith("\n**mine**") and second[1] == "outgoing"  # markdown translated as live
    assert len(contents) == 3  # LIVE-1 once; the month-old message is outside the 7-day window
    view = relay.history.view() if relay.history else None
    assert view is not None
    assert (view.state, view.received, view.imported, view.duplicates, view.skipped) == ("done", 4, 2, 1, 1)
    assert room.posts[0].startswith("📥 Importing WhatsApp history: 4 messages in 2 chats")
    assert room.posts[1] == (
        "✅ WhatsApp history imported: 2 messages added, 1 already here, 1 older than 7 days "
        "or not shown in Chatwoot."
    )
    assert saved[-1]["history_state"] == "done" and saved[-1]["history_imported"] == 2


async def test_history_days_zero_imports_nothing_and_posts_nothing(harness: Harness) -> None:
    harness.record.history_days = 0
    room = FakeRoom()
    relay, done, _progress, _saved = _relay(harness, room)
    relay.on_event(1, _marker("started", messages=1, chats=1), False)
    relay.on_event(2, _old("H-9", CHAT, "yesterday", days_ago=1), False)
    relay.on_event(3, _marker("finished", messages=1, chats=1), False)
    await _until(lambda: sorted(done) == [1, 2, 3])
    assert harness.chatwoot.public_messages() == []
    assert room.posts == []
    assert harness.record.history_skipped == 1


async def test_a_replayed_started_marker_of_a_running_import_posts_once(harness: Harness) -> None:
    room = FakeRoom()
    relay, done, _progress, _saved = _relay(harness, room)
    relay.on_event(1, _marker("started", messages=1, chats=1, final=False), False)
    relay.on_event(2, _marker("finished", messages=1, chats=1, final=False), False)
    relay.on_event(3, _marker("started", messages=1, chats=1), False)  # the next chunk
    relay.on_event(4, _old("H-5", CHAT, "hi", days_ago=1), False)
    relay.on_event(5, _marker("finished", messages=1, chats=1), False)
    await _until(lambda: sorted(done) == [1, 2, 3, 4, 5])
    assert [p.split()[0] for p in room.posts] == ["📥", "✅"]


class FakeLink:
    def __init__(self, result: ResultFrame | Exception) -> None:
        self.result = result
        self.frames: list[CommandFrame] = []
        self.connected = True

    async def command(self, frame: CommandFrame, *, budget: float) -> ResultFrame:
        self.frames.append(frame)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result.model_copy(update={"id": frame.id})


async def test_resync_asks_for_the_integrations_window_with_a_fresh_id_each_time(harness: Harness) -> None:
    link = FakeLink(ResultFrame(id="", ok=True))
    resync = history_resync(link, harness.record)
    assert "last 7 days" in await resync()
    harness.record.history_days = 3
    assert "last 3 days" in await resync()
    first, second = link.frames
    assert first.action == "history_sync" and first.params["days"] == 7 and second.params["days"] == 3
    assert first.id != second.id


@pytest.mark.parametrize(
    ("result", "said"),
    [
        (ResultFrame(id="", ok=False, error="Instance is not connected to WhatsApp", retryable=True),
         "could not be requested: Instance is not connected to WhatsApp"),
        (LinkUnavailable("link to RyzeAPI is down"), "could not be requested: link to RyzeAPI is down"),
    ],
)  # fmt: skip
async def test_resync_says_why_it_could_not_ask(
    harness: Harness,
    result: ResultFrame | Exception,
    said: str,
) -> None:
    assert said in await history_resync(FakeLink(result), harness.record)()


async def test_resync_with_the_import_off_sends_nothing(harness: Harness) -> None:
    harness.record.history_days = 0
    link = FakeLink(ResultFrame(id="", ok=True))
    assert "off" in await history_resync(link, harness.record)()
    assert link.frames == []
