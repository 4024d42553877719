"""Chatwoot → WhatsApp conversion as the phone sees it: ordered parts, quotes, revokes, read marks.

Real bridge process pieces against the Chatwoot emulator and a fake RyzeAPI (tests/bridge/conftest.py);
the commands the fake receives are what WhatsApp would be asked to do.
"""

from __future__ import annotations

import pytest

from ryze.bridge.relay.outbound.converters import mark_read_commands, send_commands
from ryze.bridge.relay.outbound.filters import MarkReadIntent, SendIntent, classify
from ryze.bridge.relay.outbound.webhook import parse_message
from ryze.emulator import RunningEmulator

from .conftest import ACCOUNT, RunningBridge, eventually
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import conversations
from .test_webhook import CHAT, _ready

JPEG = b"\xff\xd8\xff" + b"1" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"2" * 64
OGG = b"OggS" + b"3" * 64
PDF = b"%PDF-1.4 " + b"4" * 64


async def test_several_attachments_and_text_go_in_order_each_once(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view, _inbox, display_id = await _ready(emulator, fake, bridge)
    reply = await emulator.emulator.agent_reply(
        ACCOUNT,
        display_id,
        "the **papers**",
        attachments=[
            ("a.jpg", JPEG, "image/jpeg"),
            ("b.png", PNG, "image/png"),
            ("c.pdf", PDF, "application/pdf"),
        ],
    )
    await eventually(lambda: len(fake.phone) >= 3)
    await emulator.emulator.incoming_dispatch_idle()
    sends = [(a, p) for _, a, p in fake.phone if a in ("send_text", "send_media")]
    assert [(a, p.get("mediaType"), p.get("fileName"), p.get("caption")) for a, p in sends] == [
        ("send_media", "image", "a.jpg", "the *papers*"),  # the text once, as the first caption
        ("send_media", "image", "b.png", None),
        ("send_media", "document", "c.pdf", None),
    ]
    # one command id per part, stable: RyzeAPI sends each at most once
    ids = [i for i in fake.commands_seen if i.startswith("cw-")]
    assert ids == [f"cw-{view['id']}-{reply['id']}-{part}" for part in range(3)]


async def test_audio_first_sends_the_text_before_it_and_ogg_as_a_voice_note(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, _inbox, display_id = await _ready(emulator, fake, bridge)
    await emulator.emulator.agent_reply(
        ACCOUNT,
        display_id,
        "listen",
        attachments=[("v.ogg", OGG, "audio/ogg"), ("p.jpg", JPEG, "image/jpeg")],
    )
    await eventually(lambda: len(fake.phone) >= 3)
    sends = [(a, p) for _, a, p in fake.phone]
    assert [a for a, _ in sends] == ["send_text", "send_media", "send_media"]
    assert sends[0][1]["text"] == "listen"
    assert sends[1][1]["mediaType"] == "audio" and sends[1][1]["isVoice"] is True
    assert "caption" not in sends[1][1] and "caption" not in sends[2][1]  # the text went once, first


async def test_a_quoted_chatwoot_message_becomes_the_whatsapp_quote(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, _inbox, display_id = await _ready(emulator, fake, bridge)
    first = await emulator.emulator.agent_reply(ACCOUNT, display_id, "first")
    await eventually(lambda: fake.phone)
    await eventually(lambda: not fake.unacked("shop"))
    # in_reply_to = a Chatwoot id: the agent quoted the bridge's own earlier message (WA-OUT-1)
    await emulator.emulator.agent_reply(
        ACCOUNT, display_id, "about that", content_attributes={"in_reply_to": first["id"]}
    )
    await eventually(lambda: len(fake.phone) == 2)
    assert fake.phone[1][2]["replyTo"] == "WA-OUT-1"


@pytest.mark.parametrize("on_send", [True, False], ids=["on-the-send", "older-ryzeapi-command"])
async def test_a_reply_marks_the_customers_earlier_messages_read_once(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge, on_send: bool
) -> None:
    fake.mark_read_on_send = on_send  # False: a RyzeAPI that only knows mark_read commands
    _, _inbox, display_id = await _ready(emulator, fake, bridge)  # the customer wrote H1
    await fake.emit("shop", "message.exchange", text_message("H2", CHAT, "are you there?"))
    await eventually(lambda: not fake.unacked("shop"))
    await emulator.emulator.agent_reply(ACCOUNT, display_id, "yes")
    await eventually(lambda: fake.read_marks)
    assert fake.read_marks == [("shop", {"chat": CHAT, "messageIds": ["H1", "H2"]})]
    await emulator.emulator.agent_reply(ACCOUNT, display_id, "anything else?")  # nothing new to mark
    await eventually(lambda: len(fake.phone) == 2)
    await fake.emit("shop", "message.exchange", text_message("H3", CHAT, "no, thanks"))
    await eventually(lambda: not fake.unacked("shop"))
    await emulator.emulator.agent_reply(ACCOUNT, display_id, "bye")
    await eventually(lambda: len(fake.read_marks) == 2)
    assert fake.read_marks[1] == ("shop", {"chat": CHAT, "messageIds": ["H3"]})
    if on_send:  # the marks rode on the replies: one command per reply, none of their own
        assert [p.get("markRead") for _, _, p in fake.phone] == [["H1", "H2"], None, ["H3"]]
        assert not [c for c in fake.commands_seen if c.startswith("cwread-")]
    else:
        assert all("markRead" not in p for _, _, p in fake.phone)
        assert len([c for c in fake.commands_seen if c.startswith("cwread-")]) == 2
    assert fake.violations == []


async def test_a_reply_in_a_group_marks_each_senders_messages_read(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view, _inbox, display_id = await _ready(emulator, fake, bridge)
    group = "120363000000000009@g.us"
    bob, carol = "5511900000002@s.whatsapp.net", "5511900000003@s.whatsapp.net"
    for wa_id, sender in (("G1", bob), ("G2", carol), ("G3", bob)):
        data = text_message(wa_id, group, "hello", name="Team", chat_type="group", sender=sender)
        await fake.emit("shop", "message.exchange", data)
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = [c for c in conversations(emulator, view["inbox_id"]) if c.display_id != display_id]
    reply = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "hi all")
    await eventually(lambda: len(fake.read_marks) == 2)
    # whatsmeow marks one author's messages per receipt: one command per sender, each naming it
    assert fake.read_marks == [
        ("shop", {"chat": group, "messageIds": ["G1", "G3"], "sender": bob}),
        ("shop", {"chat": group, "messageIds": ["G2"], "sender": carol}),
    ]
    reads = [i for i in fake.commands_seen if i.startswith("cwread-")]
    assert reads == [f"cwread-{view['id']}-{reply['id']}-{part}" for part in range(2)]  # replayable


def test_a_private_read_mark_is_one_command_without_sender() -> None:
    intent = MarkReadIntent(CHAT, 3, 9, ("A", "B"), (CHAT, CHAT))
    [frame] = mark_read_commands(intent, integration_id="i")
    assert frame.params == {"chat": CHAT, "messageIds": ["A", "B"]}
    group = MarkReadIntent("1@g.us", 3, 9, ("A", "B"), ("", "x@s.whatsapp.net"))
    [only] = mark_read_commands(group, integration_id="i")  # a row without its author is skipped
    assert only.params == {"chat": "1@g.us", "messageIds": ["B"], "sender": "x@s.whatsapp.net"}


def test_converter_of_a_send_intent_is_pure_and_typed() -> None:
    payload = {
        "event": "message_created",
        "id": 7,
        "message_type": "outgoing",
        "private": False,
        "content": "hi",
        "conversation": {"id": 3, "contact_inbox": {"source_id": CHAT}},
        "attachments": [{"file_type": "file", "data_url": "http://cw/rails/x/report%20Q1.pdf"}],
    }
    intent = classify(payload)
    assert isinstance(intent, SendIntent) and intent.message == parse_message(payload)
    [frame] = send_commands(intent, integration_id="i", sign_messages=False, reply_to="Q")
    params = frame.typed_params()
    assert params.model_dump(exclude_none=True) == {
        "to": CHAT,
        "mediaType": "document",
        "url": "http://cw/rails/x/report%20Q1.pdf",
        "fileName": "report Q1.pdf",
        "caption": "hi",
        "isVoice": False,
        "replyTo": "Q",
    }
