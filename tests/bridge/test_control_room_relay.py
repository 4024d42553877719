"""The connection conversation through the real bridge: the Chatwoot emulator, a fake RyzeAPI
link, the bridge in-process. What an agent sees in the inbox, and that nothing of it reaches
WhatsApp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ryze.emulator import RunningEmulator
from ryze.emulator.state import Conversation
from ryze.protocol import CommandFrame, ResultFrame

from .conftest import ACCOUNT, RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import conversations, messages

CHAT = "5511999990001@s.whatsapp.net"
CONNECTED = {"state": "connected", "number": "5511999990000", "name": "Shop"}


@pytest.fixture
async def control_bridge(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    async with run_bridge(tmp_path, control_room=True) as running:
        yield running


def _control(frame: CommandFrame) -> ResultFrame | None:
    """RyzeAPI's answers to instance control (None: the fake's usual message handling)."""
    match frame.action.value:
        case "status":
            return ResultFrame(id=frame.id, ok=True, data=CONNECTED)
        case "connect":
            return ResultFrame(id=frame.id, ok=True, data={"state": "qr_ready", "qr": "2@fresh-code"})
        case "logout" | "reconnect":
            return ResultFrame(id=frame.id, ok=True)
    return None


def _room(emulator: RunningEmulator, inbox_id: int) -> Conversation | None:
    state = emulator.emulator.state
    for conversation in conversations(emulator, inbox_id):
        if state.contacts[conversation.contact_id].identifier == "ryze-control:shop":
            return conversation
    return None


def _texts(emulator: RunningEmulator, conversation: Conversation) -> list[str]:
    """The room's public posts, less the activation's self-check report (tests/bridge/test_selfcheck*)."""
    texts = [m.content or "" for m in messages(emulator, conversation, include_private=False)]
    return [t for t in texts if "Self-check" not in t.split("\n", 1)[0]]


async def test_the_connection_conversation_answers_commands_and_never_reaches_whatsapp(
    emulator: RunningEmulator, fake: FakeRyzeAPI, control_bridge: RunningBridge
) -> None:
    fake.result_hook = _control
    status, view = await control_bridge.activate(fake, emulator.url)
    assert status == 201, view
    inbox_id = view["inbox_id"]
    room = await eventually(lambda: _room(emulator, inbox_id))
    contact = emulator.emulator.state.contacts[room.contact_id]
    assert contact.name == "Ryze · shop" and contact.phone_number is None
    greeting = await eventually(lambda: _texts(emulator, room))
    assert "connection conversation of WhatsApp instance shop" in greeting[0]
    assert "connected as +5511999990000 (Shop)" in greeting[0]

    # a connection change, posted once although RyzeAPI says it twice
    lost = {"state": "disconnected", "reason": "Connection to WhatsApp lost; reconnecting"}
    await fake.emit("shop", "instance.state", lost)
    await fake.emit("shop", "instance.state", lost)
    await fake.emit("shop", "instance.state", {"state": "connected", **CONNECTED})
    await eventually(lambda: not fake.unacked("shop"))
    posts = _texts(emulator, room)
    assert [p.split(" (")[0] for p in posts[1:]] == [
        "🔌 Disconnected from WhatsApp",
        "✅ Connected to WhatsApp as +5511999990000",
    ]

    # an agent's command is answered in the same conversation
    await emulator.emulator.agent_reply(ACCOUNT, room.display_id, "Status")
    await eventually(lambda: any(t.startswith("WhatsApp: connected as") for t in _texts(emulator, room)))
    # a private note is not a command
    await emulator.emulator.agent_reply(ACCOUNT, room.display_id, "help", private=True)
    # `qr` posts the QR code as a PNG image
    await emulator.emulator.agent_reply(ACCOUNT, room.display_id, "qr")
    image = await eventually(lambda: next((m for m in messages(emulator, room) if m.attachments), None))
    assert image.attachments[0].content_type == "image/png"
    assert image.attachments[0].data.startswith(b"\x89PNG")
    await emulator.emulator.agent_reply(ACCOUNT, room.display_id, "what")
    await eventually(lambda: _texts(emulator, room)[-1].startswith("I do not know `what`."))
    assert not any(t.startswith("Commands (type them here") for t in _texts(emulator, room)[:-1])

    # none of it went to WhatsApp, and a customer's chat is a conversation of its own
    assert fake.phone == [] and fake.read_marks == []
    await fake.emit("shop", "message.exchange", text_message("WA1", CHAT, "hello"))
    await eventually(lambda: not fake.unacked("shop"))
    chats = [c for c in conversations(emulator, inbox_id) if c.id != room.id]
    assert len(chats) == 1
    assert "hello" not in _texts(emulator, room)
    reply = await emulator.emulator.agent_reply(ACCOUNT, chats[0].display_id, "status")
    await eventually(lambda: fake.phone)
    assert [(action, params["to"], params["text"]) for _, action, params in fake.phone] == [
        ("send_text", CHAT, "status")
    ]
    assert reply["content"] == "status"
    assert emulator.emulator.recorder.conformance_errors() == []


async def test_no_connection_conversation_when_turned_off(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201
    await eventually(lambda: fake.connected("shop"))
    await fake.emit("shop", "instance.state", {"state": "loggedout", "reason": "Logged out from the phone"})
    await eventually(lambda: not fake.unacked("shop"))
    assert conversations(emulator, view["inbox_id"]) == []
