"""End to end: activation, a WhatsApp text into the right conversation, an agent reply to the phone."""

from __future__ import annotations

from pathlib import Path

from ryze.emulator import RunningEmulator

from .conftest import ACCOUNT, RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import contents, conversations, inbox_messages

CHAT = "5511999990001@s.whatsapp.net"


async def test_whatsapp_text_appears_once_and_agent_reply_reaches_phone(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path, database_url) as bridge:
        await _scenario(emulator, fake, bridge)


async def _scenario(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge) -> None:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201, view
    assert view["status"] == "active"
    inbox_id = view["inbox_id"]
    inbox = emulator.emulator.state.inboxes[inbox_id]
    assert inbox.webhook_url.startswith(bridge.url + f"/v1/chatwoot/webhook/{view['id']}/")
    assert inbox.additional_attributes.get("agent_reply_time_window") == 24
    await eventually(lambda: fake.connected("shop"))

    await fake.emit("shop", "message.exchange", text_message("WA1", CHAT, "Hello *there*"))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, inbox_id)
    [msg] = inbox_messages(emulator, inbox_id)
    assert msg.content == "Hello **there**"
    assert msg.message_type == 0 and msg.source_id == "WAID:WA1"
    contact = emulator.emulator.state.contacts[conv.contact_id]
    assert contact.identifier == CHAT and contact.phone_number == "+5511999990001"
    ci = emulator.emulator.state.contact_inboxes[conv.contact_inbox_id]
    assert ci.source_id == CHAT

    reply = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "Hi **Ana**")
    await eventually(lambda: fake.phone)
    [(instance, action, params)] = fake.phone
    assert (instance, action) == ("shop", "send_text")
    assert params["to"] == CHAT and params["text"] == "Hi *Ana*"
    # the echo of the agent's own message (source=chatwoot) is acked without a mirror
    await eventually(lambda: not fake.unacked("shop"))
    # The WhatsApp id is mapped by the outbound worker from the command's result, with its
    # conversation (the fake echoes before it answers, so an echo-written row would win the race).
    # The echo can be acked before the command's result reaches the worker: wait for the mapping.
    mapped = await eventually(
        lambda: bridge.services.repos.messages.find_chatwoot(view["id"], int(reply["id"]))
    )
    assert [(m.direction, m.conversation_id, m.chat_jid) for m in mapped] == [("out", conv.display_id, CHAT)]
    assert contents(emulator, inbox_id) == ["Hello **there**", "Hi **Ana**"]
    assert emulator.emulator.recorder.conformance_errors() == []
