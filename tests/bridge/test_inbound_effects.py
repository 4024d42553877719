"""The inbound pipeline's parts on their own: converters are pure (a message in, an effect out),
the executor applies effects against the in-memory Chatwoot, and the media client never hands
the bridge token to another host."""

from __future__ import annotations

from typing import Any

import pytest

from bridge import test_relay_ports
from bridge.fake_ryzeapi import envelope, text_message, wa_message
from bridge.test_relay_ports import CHAT, ENDPOINT, Harness, _until
from ryze.bridge.relay.inbound.converters import convert
from ryze.bridge.relay.inbound.effects import CreateMessage, DeleteTarget, MediaRef, React, Skip
from ryze.bridge.relay.inbound.media import MediaFile, MediaUnavailable, RyzeMedia
from ryze.bridge.relay.inbound.vcard import phones_of
from ryze.chatwoot import ChatwootServerError, ChatwootValidationError
from ryze.protocol import EventEnvelope, WAMessage

harness = test_relay_ports.harness  # the in-memory Chatwoot harness fixture


def _msg(kind: str, **fields: Any) -> WAMessage:
    return WAMessage.model_validate(wa_message("W", CHAT, kind, **fields)["message"])


def _event(data: dict[str, Any]) -> EventEnvelope:
    return EventEnvelope.model_validate(envelope("message.exchange", data, "shop"))


# ------------------------------------------------------------------------------------ converters


def test_each_type_converts_to_its_effect() -> None:
    assert convert(_msg("text", text="")) == Skip("empty text")
    voice = convert(_msg("audio", media={"type": "ptt", "mimetype": "audio/ogg; codecs=opus", "url": "u"}))
    assert voice == CreateMessage(
        content="",
        media=MediaRef(
            url="u",
            mimetype="audio/ogg; codecs=opus",
            label="voice message",
            file_name="voice-W.ogg",
            voice=True,
        ),
    )
    gif = convert(_msg("video", media={"type": "video", "mimetype": "video/mp4", "gif": True}))
    assert isinstance(gif, CreateMessage) and gif.media is not None and gif.media.label == "GIF"
    assert gif.media.file_name == "video-W.mp4"
    assert convert(_msg("reaction", reaction={"messageId": "T", "emoji": "🔥"})) == React("T", "🔥")
    assert convert(_msg("message_revoke", revoke={"messageId": "T"})) == DeleteTarget("T")
    edit = convert(_msg("message_edit", edit={"messageId": "T", "text": "*now*"}))
    assert edit == CreateMessage(content="✏️ Edited: **now**", reply_to="T", kind="edit", target="T")
    quoted = convert(_msg("text", text="yes", replyTo="Q", quotedText="are you there?"))
    assert quoted == CreateMessage(content="yes", reply_to="Q", quote="are you there?")
    multi = convert(_msg("poll", poll={"name": "Pick", "options": ["a", "b", "c"], "selectableCount": 2}))
    assert isinstance(multi, CreateMessage) and "choose up to 2" in multi.content
    # a type this bridge has never heard of still shows up
    odd = convert(_msg("unsupported", text="?"))
    assert isinstance(odd, CreateMessage) and "cannot show" in odd.content


def test_vcard_phones_every_number_folded_lines_and_waid_only() -> None:
    lines = ["BEGIN:VCARD", "FN:A", "item1.TEL;waid=5511:+55 1", " 1", "TEL;TYPE=work:+1 2", "TEL;waid=4477:"]
    card = "\r\n".join([*lines, "END:VCARD"])
    assert phones_of(card) == ["+55 11", "+1 2", "+4477"]
    assert phones_of("") == []


# ------------------------------------------------------------------------------------ media client


async def test_the_bridge_token_only_goes_to_the_integrations_ryzeapi() -> None:
    media = RyzeMedia("http://127.0.0.1:1", "secret-token")
    for url in ("http://other.example/internal/media/shop/1", "https://127.0.0.1:1/x", "/internal/media/a"):
        with pytest.raises(MediaUnavailable, match="not this integration's RyzeAPI"):
            await media.fetch(url)
    await media.close()


# ------------------------------------------------------------------------------------ executor


class _Media:
    max_bytes = 1_000_000

    def __init__(self) -> None:
        self.fetched: list[str] = []

    async def fetch(self, url: str) -> MediaFile:
        self.fetched.append(url)
        return MediaFile(b"bytes of " + url.encode(), "image/jpeg")


async def test_an_ambiguous_create_with_a_file_is_adopted_not_uploaded_twice(harness: Harness) -> None:
    relay, done, lanes = harness.inbound()
    relay.media = _Media()
    harness.chatwoot.fail("create_message", ChatwootServerError(500, "boom", endpoint=ENDPOINT), after=True)
    media = {"type": "image", "mimetype": "image/jpeg", "url": "http://127.0.0.1:1/m/W"}
    relay.on_event(1, _event(wa_message("W", CHAT, "image", media=media)), False)
    await _until(lambda: done == [1])
    [created] = harness.chatwoot.public_messages()
    assert [a.data for a in created.attachments] == [b"bytes of http://127.0.0.1:1/m/W"]
    assert harness.chatwoot.calls.count("create_message") == 1
    await lanes.close()


async def test_a_revoke_chatwoot_refuses_to_delete_is_marked_in_its_thread(harness: Harness) -> None:
    relay, done, lanes = harness.inbound()
    relay.on_event(1, _event(text_message("T", CHAT, "oops")), False)
    await _until(lambda: done == [1])
    harness.chatwoot.fail("delete_message", ChatwootValidationError(422, '{"error":"no"}', endpoint=ENDPOINT))
    relay.on_event(2, _event(wa_message("RV", CHAT, "message_revoke", revoke={"messageId": "T"})), False)
    await _until(lambda: done == [1, 2])
    original, mark = harness.chatwoot.public_messages()
    assert original.content == "oops" and not original.deleted
    assert mark.content is not None and "deleted on WhatsApp" in mark.content
    assert mark.content_attributes["in_reply_to"] == original.id
    await lanes.close()


async def test_a_revoke_of_a_message_never_relayed_changes_nothing(harness: Harness) -> None:
    relay, done, lanes = harness.inbound()
    relay.on_event(1, _event(text_message("T", CHAT, "kept")), False)
    relay.on_event(2, _event(wa_message("RV", CHAT, "message_revoke", revoke={"messageId": "NEVER"})), False)
    await _until(lambda: done == [1, 2])
    assert [m.content for m in harness.chatwoot.public_messages()] == ["kept"]
    assert "delete_message" not in harness.chatwoot.calls
    mapped = await harness.repos.messages.find_wa(harness.record.id, "RV")
    assert mapped is not None and mapped.state == "skipped" and mapped.target_wa_id == "NEVER"
    await lanes.close()


async def test_reactions_of_two_people_on_one_message_are_kept_apart(harness: Harness) -> None:
    group = "1203630001@g.us"
    relay, done, lanes = harness.inbound()

    def reaction(wa_id: str, sender: str, emoji: str) -> dict[str, Any]:
        data = wa_message(
            wa_id, group, "reaction", chat_type="group", reaction={"messageId": "T", "emoji": emoji}
        )
        data["message"]["sender"] = {"jid": sender, "name": sender[:3]}
        return data

    relay.on_event(
        1, _event(text_message("T", group, "vote", chat_type="group", sender="111@s.whatsapp.net")), False
    )
    relay.on_event(2, _event(reaction("A1", "222@s.whatsapp.net", "👍")), False)
    relay.on_event(3, _event(reaction("B1", "333@s.whatsapp.net", "👎")), False)
    relay.on_event(4, _event(reaction("A2", "222@s.whatsapp.net", "")), False)  # 222 takes theirs back
    await _until(lambda: done == [1, 2, 3, 4])
    live = [m.content for m in harness.chatwoot.public_messages() if not m.deleted]
    assert live == ["**Ana:**\nvote", "**333:**\n👎"]
    await lanes.close()


async def test_a_reaction_to_a_message_never_relayed_says_so(harness: Harness) -> None:
    relay, done, lanes = harness.inbound()
    relay.on_event(
        1, _event(wa_message("RE", CHAT, "reaction", reaction={"messageId": "OLD", "emoji": "😂"})), False
    )
    await _until(lambda: done == [1])
    [shown] = harness.chatwoot.public_messages()
    assert shown.content == "😂 (a reaction to a message that is not in this conversation)"
    assert shown.content_attributes == {"in_reply_to_external_id": "WAID:OLD"}
    await lanes.close()


async def test_a_group_rename_chatwoot_fails_never_holds_the_message_back(harness: Harness) -> None:
    group = "1203630002@g.us"
    relay, done, lanes = harness.inbound()
    harness.chatwoot.fail("update_contact", ChatwootServerError(503, "busy", endpoint="PUT /contacts/:id"))
    ana = {"chat_type": "group", "sender": "111@s.whatsapp.net", "sender_name": "Ana"}
    first = text_message("G1", group, "hi", name="Old name", **ana)
    relay.on_event(1, _event(first), False)
    await _until(lambda: done == [1])
    assert [m.content for m in harness.chatwoot.public_messages()] == ["**Ana:**\nhi"]
    # the contact was created with the subject: the first rename is the new subject's, and fails
    renamed = text_message("G2", group, "yo", name="New name", **ana)
    relay.on_event(2, _event(renamed), False)
    await _until(lambda: done == [1, 2])
    [contact] = [c for c in harness.chatwoot.contacts.values() if c.identifier == group]
    assert contact.name == "Old name"
    assert len(harness.chatwoot.public_messages()) == 2  # the message went on without it
    relay.on_event(3, _event(text_message("G3", group, "again", name="New name", **ana)), False)
    await _until(lambda: done == [1, 2, 3])
    [contact] = [c for c in harness.chatwoot.contacts.values() if c.identifier == group]
    assert contact.name == "New name"  # the next message's subject was applied
    await lanes.close()
