"""The connection conversation with the three real processes (RyzeAPI on the simulated engine,
the bridge, the Chatwoot emulator): pairing from Chatwoot, every command, logout confirmation,
QR rotation and the passkey case, as an agent sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ryze.devstack import LocalSystem, start_system

from .helpers import inbox_conversations, sent_messages

pytestmark = pytest.mark.e2e

NAME = "e2e-control"
NUMBER = "5511977770000"


@pytest.fixture(scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSystem]:
    workdir: Path = tmp_path_factory.mktemp("control-system")
    # No automatic scan: the phone scans when the test says (the simulator's /scan route).
    running = await start_system(workdir, control_room=True, api_env={"SIMULATOR_AUTO_CONNECT_SECONDS": "-1"})
    try:
        yield running
    finally:
        await running.aclose()


class Room:
    """The connection conversation as the agent sees it in the emulator."""

    def __init__(self, system: LocalSystem, conversation_id: int) -> None:
        self.system = system
        self.id = conversation_id

    async def messages(self) -> list[dict[str, Any]]:
        return [m for m in await self.system.messages(self.id) if not m.get("private")]

    async def texts(self) -> list[str]:
        return [m["content"] or "" for m in await self.messages() if m["message_type"] == 0]

    async def say(self, text: str) -> None:
        await self.system.agent_reply(self.id, text)

    async def wait_text(self, start: str, *, after: int = 0) -> str:
        async def found() -> str:
            texts = await self.texts()
            return next((t for t in texts[after:] if t.startswith(start)), "")

        return await self.system.wait_for(found, what=f"a post starting {start!r}")

    async def wait_containing(self, part: str, *, after: int = 0) -> str:
        async def found() -> str:
            return next((t for t in (await self.texts())[after:] if part in t), "")

        return await self.system.wait_for(found, what=f"a post with {part!r}")

    async def live_images(self) -> list[dict[str, Any]]:
        return [m for m in await self.messages() if m.get("attachments")]


async def _room(system: LocalSystem, inbox_id: int) -> Room:
    async def found() -> int:
        for conversation in await inbox_conversations(system, inbox_id):
            if conversation["meta"]["sender"]["identifier"] == f"ryze-control:{NAME}":
                return int(conversation["id"])
        return 0

    return Room(system, await system.wait_for(found, what="the connection conversation"))


async def _png(system: LocalSystem, message: dict[str, Any]) -> bytes:
    [attachment] = message["attachments"]
    assert attachment["file_type"] == "image" and attachment["content_type"] == "image/png"
    async with system.http.get(attachment["data_url"]) as resp:
        assert resp.status == 200
        return await resp.read()


async def test_pairing_and_every_command_from_the_connection_conversation(system: LocalSystem) -> None:
    # created with the Chatwoot integration, not connected: the operator pairs from Chatwoot
    body = {"name": NAME, **system.chatwoot_block()}
    created = await system.api("POST", "/api/instance/new", json=body, expect=201)
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    room = await _room(system, inbox_id)
    [sender] = [c for c in await inbox_conversations(system, inbox_id) if c["id"] == room.id]
    assert sender["meta"]["sender"]["name"] == f"Ryze · {NAME}"
    assert not sender["meta"]["sender"].get("phone_number")
    greeting = await room.wait_text("👋 This is the connection conversation")
    assert "WhatsApp is disconnected: type `qr` to link the phone." in greeting

    # pairing: `qr` posts the QR code as an image; WhatsApp rotates it; the phone scans
    await room.say("QR")

    async def one_image() -> list[dict[str, Any]]:
        # a new code is posted before the one it replaces is deleted: two may show for a moment
        live = await room.live_images()
        return live if len(live) == 1 else []

    [first] = await system.wait_for(one_image, what="the QR code image")
    assert (await _png(system, first)).startswith(b"\x89PNG")
    await system.api("POST", f"/_simulator/{NAME}/qr/rotate", expect=200)

    async def rotated() -> list[dict[str, Any]]:
        live = await room.live_images()
        return live if [m["id"] for m in live] != [first["id"]] and len(live) == 1 else []

    [second] = await system.wait_for(rotated, what="the rotated QR code replacing the first")
    assert second["id"] != first["id"]
    await system.api(
        "POST", f"/_simulator/{NAME}/scan", json={"number": NUMBER, "pushName": "Loja"}, expect=200
    )
    await room.wait_text(f"✅ Connected to WhatsApp as +{NUMBER} (Loja).")
    await system.wait_for(lambda: _deleted(room, [first["id"], second["id"]]), what="the QR codes removed")

    # status
    await room.say("status")
    status = await room.wait_text("WhatsApp: connected as")
    assert status.startswith(f"WhatsApp: connected as +{NUMBER} (Loja).\nInbox relay: active.")

    # help, an unknown word, the commands other parts provide
    count = len(await room.texts())
    await room.say("Help")
    await room.wait_text("Commands (type them here", after=count)
    await room.say("please connect")
    unknown = await room.wait_text("I do not know", after=count)
    assert "Commands (type them here" in unknown
    # the history import's resync (relay/history) and the self-check (control/selfcheck.py)
    await room.say("resync")
    await room.wait_text("Asked the phone for the last 7 days of WhatsApp history", after=count)
    await room.say("selfcheck")
    report = await room.wait_containing("Self-check:", after=count)
    # the round trip worked: its private note's webhook came back to the bridge
    assert any(line.startswith("✅ Round trip:") for line in report.splitlines()), report
    # a private note is not a command
    await system.agent_reply(room.id, "status", private=True)

    # reconnect
    count = len(await room.texts())
    await room.say("reconnect")
    await room.wait_text("Reconnect requested", after=count)
    await room.wait_text("✅ Connected to WhatsApp as", after=count)
    assert await system.is_connected(NAME)

    # logout asks first, then logs out on `logout confirm`
    count = len(await room.texts())
    await room.say("logout")
    await room.wait_text("This unlinks WhatsApp from this inbox", after=count)
    assert await system.is_connected(NAME)
    await room.say("LOGOUT confirm")
    await room.wait_text("🚪 Logged out of WhatsApp", after=count)
    assert not await system.is_connected(NAME)

    # linking again meets a passkey request: the room says what to do, and a pairing code works
    count = len(await room.texts())
    await room.say("qr")
    [third] = await system.wait_for(room.live_images, what="a new QR code")
    await system.api("POST", f"/_simulator/{NAME}/passkey", expect=200)
    passkey = await room.wait_text("⚠️ WhatsApp asked for a passkey", after=count)
    assert "`pair <number>`" in passkey
    await system.wait_for(lambda: _deleted(room, [third["id"]]), what="the QR code withdrawn")
    await room.say(f"pair +{NUMBER}")
    code = await room.wait_text(f"🔢 Pairing code for +{NUMBER}:", after=count)
    assert "Link with phone number instead" in code
    await system.api("POST", f"/_simulator/{NAME}/scan", json={"pushName": "Loja"}, expect=200)
    await room.wait_text(f"✅ Connected to WhatsApp as +{NUMBER} (Loja).", after=count)

    # nothing typed in the connection conversation went to WhatsApp
    assert await sent_messages(system, NAME) == []
    # and a customer's chat is an ordinary conversation of its own
    await system.inject(NAME, [{"from": "5511988880009", "text": "hello"}])

    async def chats() -> list[dict[str, Any]]:
        return [c for c in await inbox_conversations(system, inbox_id) if c["id"] != room.id]

    [chat] = await system.wait_for(chats, what="the customer's conversation")
    assert chat["meta"]["sender"]["identifier"] == "5511988880009@s.whatsapp.net"
    assert "hello" not in await room.texts()


async def _deleted(room: Room, ids: list[int]) -> bool:
    """Chatwoot keeps a deleted message as "This message was deleted", its file purged."""
    by_id = {m["id"]: m for m in await room.system.messages(room.id)}
    return all(by_id[i]["content_attributes"].get("deleted") is True for i in ids)
