"""The integration flags and group/own-message behaviour, against the emulator."""

from __future__ import annotations

from ryze.emulator import RunningEmulator

from .conftest import ACCOUNT, RunningBridge, eventually
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import contents, conversations, inbox_messages

CHAT = "5511999990002@s.whatsapp.net"
GROUP = "120363000000000001@g.us"


async def _setup(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge, **flags: object) -> int:
    status, view = await bridge.activate(fake, emulator.url, **flags)
    assert status == 201, view
    await eventually(lambda: fake.connected("shop"))
    return int(view["inbox_id"])


async def _send(fake: FakeRyzeAPI, data: dict[str, object]) -> None:
    await fake.emit("shop", "message.exchange", data)
    await eventually(lambda: not fake.unacked("shop"))


async def test_sign_messages_prefixes_agent_name(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    inbox_id = await _setup(emulator, fake, bridge, sign_messages=True)
    await _send(fake, text_message("S1", CHAT, "hi"))
    [conv] = conversations(emulator, inbox_id)
    await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "How can I help?")
    await eventually(lambda: fake.phone)
    assert fake.phone[0][2]["text"] == "*Acme Admin*:\nHow can I help?"


async def test_without_sign_messages_text_is_unsigned(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    inbox_id = await _setup(emulator, fake, bridge)
    await _send(fake, text_message("S1", CHAT, "hi"))
    [conv] = conversations(emulator, inbox_id)
    await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "How can I help?")
    await eventually(lambda: fake.phone)
    assert fake.phone[0][2]["text"] == "How can I help?"


async def test_start_as_pending(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge) -> None:
    inbox_id = await _setup(emulator, fake, bridge, start_as_pending=True)
    await _send(fake, text_message("P1", CHAT, "hi"))
    [conv] = conversations(emulator, inbox_id)
    assert conv.status == "pending"


async def test_new_conversation_is_open_by_default(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    inbox_id = await _setup(emulator, fake, bridge)
    await _send(fake, text_message("P1", CHAT, "hi"))
    [conv] = conversations(emulator, inbox_id)
    assert conv.status == "open"


async def test_resolved_conversation_gets_a_new_one_without_reopen(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    inbox_id = await _setup(emulator, fake, bridge)
    await _send(fake, text_message("R1", CHAT, "first"))
    [conv] = conversations(emulator, inbox_id)
    await emulator.emulator.agent_toggle_status(ACCOUNT, conv.display_id, "resolved")
    await emulator.emulator.incoming_dispatch_idle()
    await _send(fake, text_message("R2", CHAT, "second"))
    convs = conversations(emulator, inbox_id)
    assert len(convs) == 2 and convs[0].status == "resolved" and convs[1].status == "open"
    assert [m.content for m in emulator.emulator.state.messages_of(convs[1])] == ["second"]


async def test_reopen_resolved_reuses_the_last_conversation(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    inbox_id = await _setup(emulator, fake, bridge, reopen_resolved=True)
    await _send(fake, text_message("R1", CHAT, "first"))
    [conv] = conversations(emulator, inbox_id)
    await emulator.emulator.agent_toggle_status(ACCOUNT, conv.display_id, "resolved")
    await emulator.emulator.incoming_dispatch_idle()
    await _send(fake, text_message("R2", CHAT, "second"))
    [again] = conversations(emulator, inbox_id)
    assert again.id == conv.id and again.status == "open"
    assert contents(emulator, inbox_id) == ["first", "second"]


async def test_ignore_groups(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge) -> None:
    inbox_id = await _setup(emulator, fake, bridge, ignore_groups=True)
    await _send(
        fake,
        text_message("G1", GROUP, "group hi", name="Team", chat_type="group", sender=CHAT, sender_name="Bob"),
    )
    await _send(fake, text_message("D1", CHAT, "direct hi"))
    assert contents(emulator, inbox_id) == ["direct hi"]


async def test_group_is_one_conversation_named_after_subject_with_participant_prefix(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    inbox_id = await _setup(emulator, fake, bridge)
    await _send(
        fake,
        text_message(
            "G1", GROUP, "hello all", name="Team", chat_type="group", sender=CHAT, sender_name="Bob"
        ),
    )
    await _send(
        fake,
        text_message(
            "G2",
            GROUP,
            "hi Bob",
            name="Team",
            chat_type="group",
            sender="5511888880000@s.whatsapp.net",
            sender_name="Eve",
        ),
    )
    [conv] = conversations(emulator, inbox_id)
    contact = emulator.emulator.state.contacts[conv.contact_id]
    assert contact.name == "Team" and contact.identifier == GROUP and contact.phone_number is None
    assert contents(emulator, inbox_id) == ["**Bob:**\nhello all", "**Eve:**\nhi Bob"]


async def test_own_messages_mirrored_outgoing_and_chatwoot_origin_skipped(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    inbox_id = await _setup(emulator, fake, bridge)
    await _send(fake, text_message("IN1", CHAT, "question"))
    await _send(fake, text_message("OWN1", CHAT, "typed on the phone", from_me=True))
    await _send(fake, text_message("API1", CHAT, "sent by the API", from_me=True, source="api"))
    await _send(
        fake,
        text_message("CW1", CHAT, "agent echo", from_me=True, source="chatwoot", command_id="cw-x-999-0"),
    )
    msgs = inbox_messages(emulator, inbox_id)
    assert [(m.content, m.message_type, m.source_id) for m in msgs] == [
        ("question", 0, "WAID:IN1"),
        ("typed on the phone", 1, "WAID:OWN1"),
        ("sent by the API", 1, "WAID:API1"),
    ]
    # the bridge's own outgoing mirrors come back as webhooks and are not sent to WhatsApp
    await emulator.emulator.incoming_dispatch_idle()
    assert fake.phone == []
    # the echo was acked without a database write (the outbound worker maps agent messages)
    await eventually(lambda: not fake.unacked("shop"))
    integration_id = next(iter(bridge.services.manager.runtimes))
    assert await bridge.services.repos.messages.find_wa_any(integration_id, "CW1") is None
    assert await bridge.services.repos.messages.find_wa_any(integration_id, "API1") is not None


async def test_reply_and_quote_mapping(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    inbox_id = await _setup(emulator, fake, bridge)
    await _send(fake, text_message("Q1", CHAT, "original"))
    await _send(fake, text_message("Q2", CHAT, "answer", reply_to="Q1"))
    first, second = inbox_messages(emulator, inbox_id)
    assert second.content_attributes.get("in_reply_to") == first.id
