"""Small pure pieces: markdown both ways, signatures, filters, command ids, converters, watermark."""

from __future__ import annotations

from typing import Any

from ryze.bridge.relay.inbound.converters import convert
from ryze.bridge.relay.inbound.effects import CreateMessage, MediaRef, React
from ryze.bridge.relay.inbound.lanes import LaneKeys
from ryze.bridge.relay.inbound.resolver import phone_of
from ryze.bridge.relay.markdown import chatwoot_to_whatsapp, whatsapp_to_chatwoot
from ryze.bridge.relay.outbound.converters import command_id
from ryze.bridge.relay.outbound.filters import StatusChange, classify, conversation_status
from ryze.bridge.relay.outbound.format import agent_name, sign
from ryze.bridge.relay.outbound.webhook import target_chat
from ryze.protocol import ChatRef, WAMessage

from .fake_ryzeapi import envelope, text_message


def test_markdown_both_ways() -> None:
    assert whatsapp_to_chatwoot("*bold* _it_ ~gone~ plain") == "**bold** *it* ~~gone~~ plain"
    assert whatsapp_to_chatwoot("2*3*4 snake_case_name") == "2*3*4 snake_case_name"
    assert chatwoot_to_whatsapp("**bold** *it* ~~gone~~ plain") == "*bold* _it_ ~gone~ plain"
    assert chatwoot_to_whatsapp("a * b * c") == "a * b * c"


def test_markdown_marker_is_no_character_a_contact_typed() -> None:
    """Inbound used U+0000 as its italic marker: a contact's NUL came out as `*`."""
    assert whatsapp_to_chatwoot("a\u0000b _c_") == "a\u0000b *c*"
    assert whatsapp_to_chatwoot("\ue000 _c_ *d*") == "\ue000 *c* **d**"


def test_signature() -> None:
    assert sign("hi", "Ana") == "*Ana*:\nhi"
    assert sign("hi", None) == "hi"
    assert agent_name({"sender": {"type": "user", "name": "Ana", "available_name": "Ana B"}}) == "Ana B"
    assert agent_name({"sender": None}) is None
    assert agent_name({"sender": {"name": "Customer"}}) is None  # contacts carry no type


def _event(**extra: Any) -> dict[str, Any]:
    base = {
        "event": "message_created",
        "id": 5,
        "message_type": "outgoing",
        "private": False,
        "source_id": None,
        "conversation": {"id": 3},
    }
    base.update(extra)
    return base


def test_filters() -> None:
    assert classify(_event()) is not None
    assert classify(_event(message_type="template")) is not None
    assert classify(_event(message_type="incoming")) is None
    assert classify(_event(private=True)) is None
    assert classify(_event(source_id="WAID:abc")) is None
    assert classify(_event(event="message_updated")) is None
    deleted = classify(_event(event="message_updated", content_attributes={"deleted": True}))
    assert deleted is not None and deleted.kind == "revoke"
    assert classify({"event": "conversation_created", "id": 3}) is None
    assert conversation_status({"event": "conversation_status_changed", "id": 3, "status": "resolved"}) == (
        StatusChange(3, "resolved")
    )
    stamped = {"event": "conversation_updated", "id": 3, "status": "open", "updated_at": 1781699696.123}
    assert conversation_status(stamped) == StatusChange(3, "open", 1781699696.123)
    assert conversation_status({**stamped, "updated_at": True}) == StatusChange(3, "open")  # not 1.0
    assert conversation_status({**stamped, "id": True}) is None  # not conversation 1


def test_command_ids_are_stable_across_retries_and_distinct_per_part_and_kind() -> None:
    integration = "ab" * 16
    assert command_id(integration, 1234, 2) == command_id(integration, 1234, 2)  # a retry reuses it
    ids = {
        command_id(integration, 1234, 0),
        command_id(integration, 1234, 1),
        command_id(integration, 1234, 0, kind="revoke"),
        command_id(integration, 1235, 0),
        command_id("cd" * 16, 1234, 0),
    }
    assert len(ids) == 5


def test_target_chat_prefers_contact_inbox_source() -> None:
    assert (
        target_chat({"conversation": {"contact_inbox": {"source_id": "1@s.whatsapp.net"}}})
        == "1@s.whatsapp.net"
    )
    meta = {"conversation": {"meta": {"sender": {"identifier": None, "phone_number": "+5511"}}}}
    assert target_chat(meta) == "5511@s.whatsapp.net"
    assert target_chat({"conversation": {}}) is None


def test_readers_take_a_field_of_another_type_for_absent_never_for_something_else() -> None:
    """What a stored job (or a typing event) may still hold: no AttributeError, no misread."""
    for odd in (5, "x", [], None, True):
        assert target_chat({"conversation": odd}) is None
        assert target_chat({"conversation": {"contact_inbox": odd, "meta": odd}}) is None
        assert target_chat({"conversation": {"meta": {"sender": odd}}}) is None
    assert agent_name({"sender": {"type": "user", "available_name": 5, "name": "Ana"}}) == "Ana"
    assert agent_name({"sender": {"type": "user", "name": {"first": "Ana"}}}) is None
    assert classify(_event(id=True)) is None  # not message 1
    assert classify(_event(event="message_updated", content_attributes={"deleted": "no"})) is None
    assert chatwoot_to_whatsapp("a\u0000b **c**") == "a\u0000b *c*"  # NUL is no bold marker


def test_identity_helpers() -> None:
    assert phone_of(ChatRef(jid="5511999@s.whatsapp.net")) == "+5511999"
    assert phone_of(ChatRef(jid="1@lid", pn="5511888:3@s.whatsapp.net")) == "+5511888"
    assert phone_of(ChatRef(jid="1@lid")) is None
    assert phone_of(ChatRef(jid="123@g.us", type="group")) is None


def test_a_persons_pn_and_lid_forms_share_one_lane_whichever_comes_first() -> None:
    keys = LaneKeys()
    lid_only = keys.key(ChatRef(jid="1@lid"))
    assert keys.key(ChatRef(jid="1@lid", pn="5511@s.whatsapp.net")) == lid_only
    assert keys.key(ChatRef(jid="5511@s.whatsapp.net")) == lid_only
    other = LaneKeys()
    pn_first = other.key(ChatRef(jid="5511@s.whatsapp.net"))
    assert other.key(ChatRef(jid="1@lid", pn="5511@s.whatsapp.net")) == pn_first
    assert other.key(ChatRef(jid="1@lid")) == pn_first
    assert other.key(ChatRef(jid="2@lid")) != pn_first


def test_converters_per_type() -> None:
    text = WAMessage.model_validate(text_message("1", "5@s.whatsapp.net", "hey")["message"])
    assert convert(text) == CreateMessage(content="hey")
    image = WAMessage.model_validate(
        {
            **text.model_dump(),
            "type": "image",
            "media": {"type": "image", "mimetype": "image/jpeg", "fileName": "a.jpg", "url": "http://r/m/1"},
        }
    )
    effect = convert(image)
    assert isinstance(effect, CreateMessage) and effect.content == "hey"
    assert effect.media == MediaRef(
        url="http://r/m/1", mimetype="image/jpeg", label="image", file_name="a.jpg"
    )
    removed = WAMessage.model_validate(
        {**text.model_dump(), "type": "reaction", "reaction": {"messageId": "x", "emoji": ""}}
    )
    assert convert(removed) == React(target="x", emoji="")


async def test_batcher_coalesces_and_never_strands_a_caller() -> None:
    import asyncio

    from ryze.bridge.store.db import Batcher

    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0)
        return [i * 2 for i in items]

    for concurrency in (1, 3):
        batches.clear()
        batcher = Batcher(run, concurrency=concurrency)
        assert await asyncio.gather(*(batcher(i) for i in range(50))) == [i * 2 for i in range(50)]
        assert len(batches) <= 3 * concurrency
        for i in range(20):  # one at a time, right after the previous drain finished
            assert await batcher(i) == i * 2

    async def boom(items: list[int]) -> list[int]:
        raise RuntimeError("db down")

    failing = Batcher(boom)
    results = await asyncio.gather(failing(1), failing(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_seq_done_above_the_watermark_is_reacked_not_relayed_again() -> None:
    """Seq 2 finishes while seq 1 is still in flight (watermark stays 0); a new connection offers 2
    again (its ack was lost): the link re-acks it without handing it to the relay a second time."""
    from ryze.bridge.link.client import LinkClient
    from ryze.protocol import EventFrame

    offered: list[tuple[int, bool]] = []

    async def on_state(connected: bool, error: str, refused: bool) -> None:
        return None

    async def save(mark: int) -> None:
        return None

    link = LinkClient(
        integration_id="i",
        url="ws://127.0.0.1:1",
        token="t",
        watermark=0,
        on_event=lambda seq, envelope, replay: offered.append((seq, replay)),
        on_state=on_state,
        save_watermark=save,
    )

    def frame(seq: int) -> EventFrame:
        data = text_message(f"W{seq}", "1@s.whatsapp.net", "x")
        return EventFrame.model_validate({"seq": seq, "event": envelope("message.exchange", data, "shop")})

    for seq in (1, 2, 3):
        await link._accept_event(frame(seq))
    link.done(2)
    assert link.watermark == 0
    await link._accept_event(frame(2))  # replayed on a new connection: done already
    link.done(1)
    assert link.watermark == 2
    link.done(3)
    assert link.watermark == 3
    await link._accept_event(frame(3))
    assert offered == [(1, False), (2, False), (3, False)]
    await link.stop()


async def test_done_seqs_above_a_stuck_watermark_are_bounded_and_fall_back_to_the_database(
    monkeypatch: Any,
) -> None:
    """Seq 1 is stuck while 2..6 finish; with room for 3 the lowest done seqs are forgotten, and
    their redelivery is handed to the relay flagged as possibly relayed (database check)."""
    from ryze.bridge.link import client as link_module
    from ryze.protocol import EventFrame, ReadyFrame

    monkeypatch.setattr(link_module, "DONE_ABOVE_LIMIT", 3)
    offered: list[tuple[int, bool]] = []

    async def on_state(connected: bool, error: str, refused: bool) -> None:
        return None

    async def save(mark: int) -> None:
        return None

    link = link_module.LinkClient(
        integration_id="i",
        url="ws://127.0.0.1:1",
        token="t",
        watermark=0,
        on_event=lambda seq, envelope, replay: offered.append((seq, replay)),
        on_state=on_state,
        save_watermark=save,
    )

    def frame(seq: int) -> EventFrame:
        data = text_message(f"B{seq}", "1@s.whatsapp.net", "x")
        return EventFrame.model_validate({"seq": seq, "event": envelope("message.exchange", data, "shop")})

    for seq in range(1, 7):
        await link._accept_event(frame(seq))
    for seq in range(2, 7):
        link.done(seq)
    assert link.watermark == 0
    offered.clear()
    link._note_ready(ReadyFrame(instance="shop", last_seq=6, pending=5))  # a new connection ...
    for seq in range(2, 7):  # ... offers them again
        await link._accept_event(frame(seq))
    # 4, 5, 6 are remembered (re-acked); 2 and 3 were forgotten and go to the relay with replay=True
    assert offered == [(2, True), (3, True)]
    await link.stop()
