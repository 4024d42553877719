"""WhatsApp → Chatwoot for every message type, through the bridge, the fake RyzeAPI (its link and
media route) and the Chatwoot emulator: real files as attachments (bytes equal by checksum),
readable texts for what Chatwoot cannot render, replies, reactions, edits and revokes acting on
their target, groups named after their subject, receipts forward only, media limits."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ryze.emulator import RunningEmulator
from ryze.emulator.state import Message

from .conftest import ACCOUNT, RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI, text_message, wa_message
from .helpers import conversations, inbox_messages

CHAT = "5511999990001@s.whatsapp.net"
GROUP = "120363000000000001@g.us"
FAST_MEDIA = {"media_retry_base_seconds": 0.01}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(size: int, seed: str) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


async def _activate(bridge: RunningBridge, fake: FakeRyzeAPI, emulator: RunningEmulator) -> int:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201, view
    await eventually(lambda: fake.connected("shop"))
    return int(view["inbox_id"])


async def _relay(fake: FakeRyzeAPI, *events: dict[str, Any]) -> None:
    for event in events:
        await fake.emit("shop", "message.exchange", event)
    await eventually(lambda: not fake.unacked("shop"))


def _by_source(emulator: RunningEmulator, inbox_id: int) -> dict[str, Message]:
    return {m.source_id: m for m in inbox_messages(emulator, inbox_id) if m.source_id}


def _media(
    fake: FakeRyzeAPI, wa_id: str, kind: str, data: bytes, mimetype: str, **extra: Any
) -> dict[str, Any]:
    url = fake.add_media("shop", wa_id, data, mimetype)
    return {"type": kind, "mimetype": mimetype, "size": len(data), "url": url, **extra}


async def test_every_media_type_arrives_as_its_real_file(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    files = {
        "IMG": ("image", "image", "image/jpeg", payload(100 * 1024, "img"), {}),
        "VID": ("video", "video", "video/mp4", payload(300 * 1024, "vid"), {}),
        "PTT": ("audio", "ptt", "audio/ogg; codecs=opus", payload(20 * 1024, "ptt"), {"seconds": 4}),
        "AUD": ("audio", "audio", "audio/mpeg", payload(50 * 1024, "aud"), {}),
        "DOC": (
            "document",
            "document",
            "application/pdf",
            payload(70 * 1024, "doc"),
            {"fileName": "Fatura nº 7 São.pdf"},
        ),
        "STK": ("sticker", "sticker", "image/webp", payload(9 * 1024, "stk"), {}),
        "GIF": ("video", "video", "video/mp4", payload(40 * 1024, "gif"), {"gif": True}),
        "ONCE": ("image", "image", "image/jpeg", payload(30 * 1024, "once"), {}),
    }
    async with run_bridge(tmp_path, database_url, **FAST_MEDIA) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        events = []
        for wa_id, (kind, media_type, mimetype, data, extra) in files.items():
            fields: dict[str, Any] = {"media": _media(fake, wa_id, media_type, data, mimetype, **extra)}
            if wa_id == "ONCE":
                fields["isViewOnce"] = True
            caption = "Look *here*" if wa_id == "IMG" else None
            events.append(wa_message(wa_id, CHAT, kind, text=caption, **fields))
        await _relay(fake, *events)
        found = _by_source(emulator, inbox_id)
        for wa_id, (_kind, _media_type, _mimetype, data, _extra) in files.items():
            msg = found[f"WAID:{wa_id}"]
            [attachment] = msg.attachments
            assert sha(attachment.data) == sha(data), wa_id
            assert fake.media[f"shop/{wa_id}"].requests == 1  # downloaded once
        assert found["WAID:IMG"].content == "Look **here**"  # the caption, markdown translated
        assert found["WAID:IMG"].attachments[0].file_type == "image"
        assert found["WAID:DOC"].attachments[0].filename == "Fatura nº 7 São.pdf"
        assert found["WAID:DOC"].attachments[0].file_type == "file"
        ptt = found["WAID:PTT"].attachments[0]
        assert ptt.file_type == "audio" and ptt.meta.get("is_voice_message") is True
        assert ptt.filename.endswith(".ogg")
        assert "is_voice_message" not in found["WAID:AUD"].attachments[0].meta
        assert found["WAID:STK"].attachments[0].file_type == "image"
        assert found["WAID:GIF"].attachments[0].file_type == "video"
        assert found["WAID:ONCE"].content is not None and "View once" in found["WAID:ONCE"].content
        assert len(conversations(emulator, inbox_id)) == 1
        assert emulator.emulator.recorder.conformance_errors() == []


async def test_types_chatwoot_cannot_render_become_readable_text(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    vcard = "\n".join(
        [
            "BEGIN:VCARD",
            "VERSION:3.0",
            "FN:Bia",
            "TEL;type=CELL;waid=5511988887777:+55 11 98888-7777",
            "TEL:+1 555 0100",
            "END:VCARD",
        ]
    )
    async with run_bridge(tmp_path, database_url) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        await _relay(
            fake,
            wa_message(
                "LOC", CHAT, "location", location={"latitude": -23.5, "longitude": -46.6, "name": "Shop"}
            ),
            wa_message("LIVE", CHAT, "location", location={"latitude": 1.25, "longitude": 2.5, "live": True}),
            wa_message("VC", CHAT, "contact", contacts=[{"displayName": "Bia", "vcard": vcard}]),
            wa_message("POLL", CHAT, "poll", poll={"name": "Which day?", "options": ["Mon", "Tue"]}),
            wa_message("ODD", CHAT, "unsupported"),
        )
        found = _by_source(emulator, inbox_id)
        loc = found["WAID:LOC"].content or ""
        assert "Shop" in loc and "-23.5" in loc and "google.com/maps" in loc
        assert "Live location" in (found["WAID:LIVE"].content or "")
        card = found["WAID:VC"].content or ""
        assert "Bia" in card and "+55 11 98888-7777" in card and "+1 555 0100" in card
        poll = found["WAID:POLL"].content or ""
        assert "Which day?" in poll and "Mon" in poll and "Tue" in poll
        assert "cannot show" in (found["WAID:ODD"].content or "")


async def test_replies_reactions_edits_and_revokes_act_on_their_target(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path, database_url) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        await _relay(fake, text_message("T1", CHAT, "first"), text_message("T2", CHAT, "second"))
        target = _by_source(emulator, inbox_id)["WAID:T1"]

        # a reply to a relayed message points at it; to one never relayed, its text is quoted
        await _relay(
            fake,
            text_message("R1", CHAT, "answer", reply_to="T1"),
            wa_message("R2", CHAT, "text", text="about that", replyTo="GONE", quotedText="old news"),
        )
        found = _by_source(emulator, inbox_id)
        assert found["WAID:R1"].content_attributes["in_reply_to"] == target.id
        assert found["WAID:R2"].content == "> old news\n\nabout that"

        # a reaction is a reply to its target; a changed one replaces it; a removed one removes it
        react = {"messageId": "T1", "emoji": "👍"}
        await _relay(fake, wa_message("RE1", CHAT, "reaction", reaction=react))
        first = _by_source(emulator, inbox_id)["WAID:RE1"]
        assert first.content == "👍" and first.content_attributes["in_reply_to"] == target.id
        await _relay(fake, wa_message("RE2", CHAT, "reaction", reaction={**react, "emoji": "❤️"}))
        found = _by_source(emulator, inbox_id)
        assert found["WAID:RE1"].content_attributes.get("deleted") is True
        assert (
            found["WAID:RE2"].content == "❤️"
            and found["WAID:RE2"].content_attributes["in_reply_to"] == target.id
        )
        await _relay(fake, wa_message("RE3", CHAT, "reaction", reaction={**react, "emoji": ""}))
        found = _by_source(emulator, inbox_id)
        assert found["WAID:RE2"].content_attributes.get("deleted") is True
        assert "WAID:RE3" not in found  # no empty message
        assert not [m for m in inbox_messages(emulator, inbox_id) if not m.content and not m.attachments]

        # an edit is a reply to the edited message, marked as an edit
        await _relay(
            fake, wa_message("ED", CHAT, "message_edit", edit={"messageId": "T2", "text": "second *fixed*"})
        )
        found = _by_source(emulator, inbox_id)
        assert found["WAID:ED"].content == "✏️ Edited: second **fixed**"
        assert found["WAID:ED"].content_attributes["in_reply_to"] == found["WAID:T2"].id

        # a revoke deletes its target in Chatwoot and adds nothing
        before = len(inbox_messages(emulator, inbox_id))
        await _relay(fake, wa_message("RV", CHAT, "message_revoke", revoke={"messageId": "T2"}))
        found = _by_source(emulator, inbox_id)
        assert found["WAID:T2"].content_attributes.get("deleted") is True
        assert found["WAID:T2"].content != "second"
        assert len(inbox_messages(emulator, inbox_id)) == before
        mapped = await bridge.services.repos.messages.find_wa(bridge_id(bridge), "RV")
        assert mapped is not None and (mapped.kind, mapped.target_wa_id) == ("revoke", "T2")


def bridge_id(bridge: RunningBridge) -> str:
    [integration_id] = bridge.services.manager.runtimes
    return integration_id


async def test_a_group_is_one_conversation_named_after_its_subject(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    group = {"chat_type": "group", "name": "Team Rocket"}
    async with run_bridge(tmp_path, database_url) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        await _relay(
            fake,
            text_message(
                "G1", GROUP, "hi all", sender="551100001@s.whatsapp.net", sender_name="Ana", **group
            ),
            text_message("G2", GROUP, "hello", sender="551100002@s.whatsapp.net", sender_name="Bob", **group),
        )
        [conv] = conversations(emulator, inbox_id)
        contact = emulator.emulator.state.contacts[conv.contact_id]
        assert contact.name == "Team Rocket"
        assert [m.content for m in inbox_messages(emulator, inbox_id)] == [
            "**Ana:**\nhi all",
            "**Bob:**\nhello",
        ]
        # each participant has a contact of their own, found by JID (messages stay in the group's)
        by_identifier = {c.identifier: c for c in emulator.emulator.state.contacts.values()}
        ana = by_identifier["551100001@s.whatsapp.net"]
        assert (ana.name, ana.phone_number) == ("Ana", "+551100001")
        assert by_identifier["551100002@s.whatsapp.net"].name == "Bob"

        flow = {
            "chat": {"jid": GROUP, "type": "group", "name": "Team Rocket 2"},
            "action": "subject",
            "subject": "Team Rocket 2",
            "timestamp": "2026-12-04T19:00:00Z",
        }
        await fake.emit("shop", "group.flow", flow)
        await eventually(lambda: not fake.unacked("shop"))
        await eventually(lambda: emulator.emulator.state.contacts[conv.contact_id].name == "Team Rocket 2")
        await _relay(
            fake,
            text_message(
                "G3",
                GROUP,
                "new name",
                sender="551100001@s.whatsapp.net",
                sender_name="Ana",
                chat_type="group",
                name="Team Rocket 2",
            ),
        )
        assert len(conversations(emulator, inbox_id)) == 1
        # Ana writing privately later is the same contact, now with a conversation of her own
        await _relay(fake, text_message("P1", "551100001@s.whatsapp.net", "just us", name="Ana"))
        private = [c for c in conversations(emulator, inbox_id) if c.id != conv.id]
        assert [c.contact_id for c in private] == [ana.id]
        assert len([c for c in emulator.emulator.state.contacts.values() if c.name == "Ana"]) == 1


async def test_media_retried_while_ryzeapi_answers_404_then_delivered_once(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    data = payload(64 * 1024, "late")
    async with run_bridge(tmp_path, database_url, **FAST_MEDIA) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        media = _media(fake, "LATE", "image", data, "image/png")
        fake.media["shop/LATE"].fails = 3
        await _relay(fake, wa_message("LATE", CHAT, "image", media=media))
        [msg] = inbox_messages(emulator, inbox_id)
        assert [sha(a.data) for a in msg.attachments] == [sha(data)]
        assert fake.media["shop/LATE"].requests == 4


async def test_media_that_never_downloads_or_is_too_large_becomes_an_explaining_text(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    async with run_bridge(
        tmp_path, database_url, media_max_bytes=100_000, media_attempts=3, **FAST_MEDIA
    ) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        big = _media(fake, "BIG", "video", payload(150_000, "big"), "video/mp4")
        never = _media(fake, "NEVER", "document", b"x" * 10, "application/pdf", fileName="a.pdf")
        fake.media["shop/NEVER"].fails = 1000
        lying = _media(fake, "LIE", "image", payload(120_000, "lie"), "image/jpeg")
        lying["size"] = 10  # announced small, served large: the streamed limit still holds
        await _relay(
            fake,
            wa_message("BIG", CHAT, "video", text="the party", media=big),
            wa_message("NEVER", CHAT, "document", media=never),
            wa_message("LIE", CHAT, "image", media=lying),
        )
        found = _by_source(emulator, inbox_id)
        text = found["WAID:BIG"].content or ""
        assert "video/mp4" in text and "146.5 KB" in text and "upload limit" in text and "the party" in text
        assert found["WAID:BIG"].attachments == []
        assert fake.media["shop/BIG"].requests == 0  # its announced size was enough to know
        assert "a.pdf" in (found["WAID:NEVER"].content or "") and "could not" in (
            found["WAID:NEVER"].content or ""
        )
        assert fake.media["shop/NEVER"].requests == 3  # bounded: not a retry loop
        assert "upload limit" in (found["WAID:LIE"].content or "")
        assert len(inbox_messages(emulator, inbox_id)) == 3  # nothing lost, nothing twice


async def test_receipts_move_an_agent_message_forward_only(
    emulator: RunningEmulator, fake: FakeRyzeAPI, database_url: str, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path, database_url) as bridge:
        inbox_id = await _activate(bridge, fake, emulator)
        await _relay(fake, text_message("IN", CHAT, "hello"))
        [conv] = conversations(emulator, inbox_id)
        reply = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "hi")
        await eventually(lambda: fake.phone)
        mapped = await eventually(
            lambda: bridge.services.repos.messages.find_chatwoot(bridge_id(bridge), int(reply["id"]))
        )
        wa_id = mapped[0].wa_message_id
        chat = {"jid": CHAT, "type": "private"}
        for status in ("read", "delivered"):
            await fake.emit(
                "shop",
                "message.status",
                {"messageIds": [wa_id], "status": status, "chat": chat, "timestamp": "2026-12-04T19:00:00Z"},
            )
            await eventually(lambda: not fake.unacked("shop"))
        assert emulator.emulator.state.messages[int(reply["id"])].status == "read"
        patches = [
            r.body.get("status")
            for r in emulator.emulator.recorder.find("PATCH", f"/messages/{reply['id']}")
            if isinstance(r.body, dict)
        ]
        assert patches == ["read"]  # the late "delivered" is not even sent
