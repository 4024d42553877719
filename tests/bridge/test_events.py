"""Other events: PN/LID identity, receipts on agent messages, WhatsApp connection state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ryze.emulator import RunningEmulator

from .conftest import ACCOUNT, RunningBridge, eventually
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import contents, conversations

PN = "5511999990006@s.whatsapp.net"
LID = "123456789012345@lid"


async def _setup(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge) -> dict[str, Any]:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201
    await eventually(lambda: fake.connected("shop"))
    return dict(view)


async def test_pn_and_lid_forms_of_one_chat_share_contact_and_conversation(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("L1", PN, "by phone number", lid=LID))
    await fake.emit("shop", "message.exchange", text_message("L2", LID, "by lid", pn=PN))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])
    assert contents(emulator, view["inbox_id"]) == ["by phone number", "by lid"]
    assert len(emulator.emulator.state.contacts) == 1
    assert emulator.emulator.state.contacts[conv.contact_id].phone_number == "+5511999990006"


async def test_lid_only_chat_has_no_phone(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("X1", LID, "hidden number", name=None))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])
    contact = emulator.emulator.state.contacts[conv.contact_id]
    assert contact.identifier == LID and contact.phone_number is None and contact.name == "123456789012345"


async def test_read_receipt_marks_agent_message_read(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("R1", PN, "hi"))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])
    reply = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "hello")
    await eventually(lambda: fake.phone)
    await eventually(lambda: not fake.unacked("shop"))
    receipt = {
        "messageIds": ["WA-OUT-1"],
        "status": "read",
        "chat": {"jid": PN},
        "timestamp": datetime.now(UTC).isoformat(),
    }
    await fake.emit("shop", "message.status", receipt)
    await eventually(lambda: not fake.unacked("shop"))
    await eventually(lambda: emulator.emulator.state.messages[reply["id"]].status == "read")


async def test_whatsapp_disconnected_shows_paused(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)

    async def shown() -> dict[str, Any]:
        _, body = await bridge.call("GET", f"/v1/integrations/{view['id']}")
        return dict(body)

    await fake.emit("shop", "instance.state", {"state": "disconnected", "reason": "phone offline"})
    await eventually(lambda: not fake.unacked("shop"))
    body = await shown()
    assert body["status"] == "paused" and "disconnected" in body["last_error"]
    await fake.emit("shop", "instance.state", {"state": "connected"})
    await eventually(lambda: not fake.unacked("shop"))
    assert (await shown())["status"] == "active"


async def test_malformed_event_is_acked_and_recorded(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", {"id": "broken"})
    await fake.emit("shop", "message.exchange", text_message("OK1", PN, "fine"))
    await eventually(lambda: not fake.unacked("shop"))
    assert contents(emulator, view["inbox_id"]) == ["fine"]
    failures = await bridge.services.repos.messages.failures(view["id"])
    assert len(failures) == 1 and "malformed" in failures[0]["error"]


async def test_lid_chat_learns_its_phone_number_later(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view = await _setup(emulator, fake, bridge)
    await fake.emit("shop", "message.exchange", text_message("Y1", LID, "lid only", name="Ana"))
    await fake.emit("shop", "message.exchange", text_message("Y2", LID, "now mapped", name="Ana", pn=PN))
    await fake.emit("shop", "message.exchange", text_message("Y3", PN, "by phone, no lid", name="Ana"))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])
    assert contents(emulator, view["inbox_id"]) == ["lid only", "now mapped", "by phone, no lid"]
    contact = emulator.emulator.state.contacts[conv.contact_id]
    assert contact.identifier == LID and contact.phone_number == "+5511999990006"
    assert len(emulator.emulator.state.contacts) == 1
    assert emulator.emulator.recorder.conformance_errors() == []
