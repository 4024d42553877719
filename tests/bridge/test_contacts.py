"""Contacts in the relay (names, avatars, PN/LID merge) against the in-memory Chatwoot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.chatwoot_fake import InMemoryChatwoot
from bridge.fake_ryzeapi import text_message
from bridge.test_relay_ports import Harness, _event, _record, _until
from ryze.bridge.health import IntegrationHealth
from ryze.bridge.metrics import BridgeMetrics
from ryze.bridge.relay.context import RelayContext
from ryze.bridge.relay.inbound.avatars import AvatarLimits, AvatarRefresher, Picture, PictureUnavailable
from ryze.bridge.relay.inbound.consumer import InboundRelay
from ryze.bridge.relay.inbound.lanes import LaneRouter
from ryze.bridge.relay.inbound.names import whatsapp_name
from ryze.bridge.relay.inbound.resolver import ConversationPolicy, ConversationResolver
from ryze.bridge.retry import RetryPolicy
from ryze.bridge.store.db import BridgeDB
from ryze.bridge.store.repositories import Repositories
from ryze.chatwoot import ChatwootServerError
from ryze.protocol import ChatRef, ChatType

PN = "5511999990007@s.whatsapp.net"
LID = "99887766554433@lid"
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 32


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """The relay's collaborators as the runtime builds them (test_relay_ports.py's harness)."""
    db = BridgeDB(f"sqlite:///{tmp_path / 'bridge.db'}")
    await db.migrate()
    repos = Repositories.create(db)
    record = _record()
    await repos.integrations.insert(record)
    chatwoot = InMemoryChatwoot(inbox_id=7)

    async def changed() -> None:
        return None

    health = IntegrationHealth(
        inbox_id=7,
        chatwoot=lambda: chatwoot,
        operator_paused=lambda: False,
        link_connected=lambda: True,
        on_change=changed,
    )
    metrics = BridgeMetrics()
    context = RelayContext(
        integration_id=record.id,
        record=record,
        messages=repos.messages,
        jobs=repos.outbound,
        chatwoot=lambda: chatwoot,
        health=health,
        metrics=metrics,
        retry=RetryPolicy(base_seconds=0.001, max_seconds=0.002, max_attempts=3),
    )
    try:
        yield Harness(repos, chatwoot, record, health, metrics, context)
    finally:
        await db.close()


class Pictures:
    """RyzeAPI's picture route as the refresher sees it: scripted answers, calls recorded."""

    def __init__(self, *answers: Picture | Exception | None) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, str | None]] = []
        self.gate: asyncio.Event | None = None

    async def fetch(self, jid: str, known_id: str | None) -> Picture | None:
        self.asked.append((jid, known_id))
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def build(
    harness: Harness, pictures: Pictures | None = None, clock: Clock | None = None
) -> tuple[InboundRelay, list[int], LaneRouter, AvatarRefresher | None]:
    done: list[int] = []
    lanes = LaneRouter(max_concurrent=4, name="test")
    resolver = ConversationResolver(
        integration_id=harness.record.id,
        inbox_id=7,
        chats=harness.repos.chats,
        client=lambda: harness.chatwoot,
        policy=lambda: ConversationPolicy(False, False),
    )
    avatars = (
        AvatarRefresher(
            integration_id=harness.record.id,
            chats=harness.repos.chats,
            client=lambda: harness.chatwoot,
            pictures=pictures,
            limits=AvatarLimits(interval=86_400, concurrency=1, backlog=2),
            clock=clock or Clock(),
        )
        if pictures is not None
        else None
    )
    relay = InboundRelay(harness.context, lanes=lanes, resolver=resolver, done=done.append, avatars=avatars)
    return relay, done, lanes, avatars


def message(wa_id: str, chat: str = PN, *, name: str | None = "Ana", **chat_fields: Any) -> Any:
    body = text_message(wa_id, chat, "hi", name=name)
    body["message"]["chat"].update(chat_fields)
    return _event(body)


# ------------------------------------------------------------------------------------ names


def test_name_precedence_saved_then_push_then_business() -> None:
    both = ChatRef(jid=PN, name="Push", savedName="Saved", businessName="Biz")
    assert whatsapp_name(both) == "Saved"
    assert whatsapp_name(both.model_copy(update={"savedName": None})) == "Push"
    assert whatsapp_name(ChatRef(jid=PN, businessName="  Biz ")) == "Biz"
    assert whatsapp_name(ChatRef(jid=PN, name="  ")) is None
    group = ChatRef(jid="1203@g.us", name="Team", savedName="ignored", type=ChatType.GROUP)
    assert whatsapp_name(group) == "Team"


async def test_a_contact_without_a_name_is_named_by_number_then_renamed_when_whatsapp_gives_one(
    harness: Harness,
) -> None:
    relay, done, lanes, _ = build(harness)
    relay.on_event(1, message("wa-1", name=None), False)
    await _until(lambda: done == [1])
    [contact] = harness.chatwoot.contacts.values()
    assert contact.name == "+5511999990007"
    relay.on_event(2, message("wa-2", name="Ana", businessName="Ana Ltd"), False)
    await _until(lambda: done == [1, 2])
    assert harness.chatwoot.contacts[contact.id].name == "Ana"
    await lanes.close()


async def test_an_agents_name_survives_whatsapp_renames_and_a_restart(harness: Harness) -> None:
    relay, done, lanes, _ = build(harness)
    relay.on_event(1, message("wa-1", name="Ana"), False)
    await _until(lambda: done == [1])
    [contact] = harness.chatwoot.contacts.values()
    await harness.chatwoot.update_contact(contact.id, name="Ana (VIP)")  # the agent's edit
    relay.on_event(2, message("wa-2", name="Ana Paula"), False)
    relay.on_event(3, message("wa-3", name="Ana Paula"), False)
    await _until(lambda: done == [1, 2, 3])
    assert harness.chatwoot.contacts[contact.id].name == "Ana (VIP)"
    assert harness.chatwoot.calls.count("show_contact") == 1  # the same name is not checked twice
    await lanes.close()
    # a new process (nothing in memory) still knows the bridge's own name from the table
    relay, done, lanes, _ = build(harness)
    relay.on_event(4, message("wa-4", savedName="Ana Saved"), False)
    await _until(lambda: done == [4])
    assert harness.chatwoot.contacts[contact.id].name == "Ana (VIP)"
    await lanes.close()


async def test_a_found_contact_with_a_name_of_its_own_keeps_it(harness: Harness) -> None:
    """A contact the bridge did not create (an agent's, found by phone number) is not renamed;
    one whose name is just the number it would have given is."""
    own = await harness.chatwoot.create_contact(name="Dr. Ana", phone_number="+5511999990007")
    plain = await harness.chatwoot.create_contact(name="+5511999990008", phone_number="+5511999990008")
    relay, done, lanes, _ = build(harness)
    relay.on_event(1, message("wa-1", name="Ana"), False)
    relay.on_event(2, message("wa-2", "5511999990008@s.whatsapp.net", name="Bia"), False)
    await _until(lambda: sorted(done) == [1, 2])
    assert harness.chatwoot.contacts[own.id].name == "Dr. Ana"
    assert harness.chatwoot.contacts[plain.id].name == "Bia"
    await lanes.close()


async def test_a_rename_chatwoot_refuses_does_not_hold_the_message(harness: Harness) -> None:
    relay, done, lanes, _ = build(harness)
    relay.on_event(1, message("wa-1", name=None), False)
    await _until(lambda: done == [1])
    harness.chatwoot.fail("update_contact", ChatwootServerError(500, "boom", endpoint="PATCH /contacts/:id"))
    relay.on_event(2, message("wa-2", name="Ana"), False)
    await _until(lambda: done == [1, 2])
    [contact] = harness.chatwoot.contacts.values()
    assert contact.name == "+5511999990007"
    assert [m.content for m in harness.chatwoot.public_messages()] == ["hi", "hi"]
    relay.on_event(3, message("wa-3", name="Ana"), False)  # tried again with the next message
    await _until(lambda: done == [1, 2, 3])
    assert harness.chatwoot.contacts[contact.id].name == "Ana"
    await lanes.close()


# ------------------------------------------------------------------------------------ avatars


async def test_the_picture_is_uploaded_once_and_asked_again_only_after_a_day(harness: Harness) -> None:
    clock = Clock()
    pictures = Pictures(
        Picture("p1", "image/png", PNG), Picture("p1", "", b""), Picture("p2", "image/jpeg", b"jpg")
    )
    relay, done, lanes, avatars = build(harness, pictures, clock)
    assert avatars is not None
    relay.on_event(1, message("wa-1"), False)
    await _until(lambda: done == [1])
    await avatars.drain()
    [contact] = harness.chatwoot.contacts.values()
    assert harness.chatwoot.avatars[contact.id].data == PNG
    assert harness.chatwoot.avatars[contact.id].content_type == "image/png"
    relay.on_event(2, message("wa-2"), False)
    await _until(lambda: done == [1, 2])
    await avatars.drain()
    assert pictures.asked == [(PN, None)]  # not due yet

    clock.now += 86_400  # a day later: asked with the id it has; unchanged means no upload
    relay.on_event(3, message("wa-3"), False)
    await _until(lambda: done == [1, 2, 3])
    await avatars.drain()
    assert pictures.asked[-1] == (PN, "p1")
    assert harness.chatwoot.calls.count("set_contact_avatar") == 1

    clock.now += 86_400  # changed on WhatsApp: the new picture replaces the avatar
    relay.on_event(4, message("wa-4"), False)
    await _until(lambda: done == [1, 2, 3, 4])
    await avatars.drain()
    assert harness.chatwoot.avatars[contact.id].data == b"jpg"
    await lanes.close()


async def test_a_failed_picture_is_logged_and_tried_again_the_next_day(harness: Harness) -> None:
    clock = Clock()
    pictures = Pictures(PictureUnavailable("RyzeAPI answered HTTP 503"), Picture("p1", "image/png", PNG))
    relay, done, lanes, avatars = build(harness, pictures, clock)
    assert avatars is not None
    relay.on_event(1, message("wa-1"), False)
    await _until(lambda: done == [1])
    await avatars.drain()
    relay.on_event(2, message("wa-2"), False)
    await _until(lambda: done == [1, 2])
    await avatars.drain()
    assert len(pictures.asked) == 1 and not harness.chatwoot.avatars
    clock.now += 86_400
    relay.on_event(3, message("wa-3"), False)
    await _until(lambda: done == [1, 2, 3])
    await avatars.drain()
    assert [a.data for a in harness.chatwoot.avatars.values()] == [PNG]
    await lanes.close()


async def test_a_picture_chatwoot_cannot_keep_is_not_uploaded(harness: Harness) -> None:
    pictures = Pictures(Picture("p1", "image/bmp", b"BM"))
    relay, done, lanes, avatars = build(harness, pictures)
    assert avatars is not None
    relay.on_event(1, message("wa-1"), False)
    await _until(lambda: done == [1])
    await avatars.drain()
    assert "set_contact_avatar" not in harness.chatwoot.calls
    await lanes.close()


async def test_messages_never_wait_for_pictures_and_lookups_are_bounded(harness: Harness) -> None:
    pictures = Pictures(*[Picture(f"p{i}", "image/png", PNG) for i in range(5)])
    pictures.gate = asyncio.Event()  # RyzeAPI does not answer (yet)
    relay, done, lanes, avatars = build(harness, pictures)
    assert avatars is not None
    chats = [f"55119999900{i:02d}@s.whatsapp.net" for i in range(5)]
    for seq, chat in enumerate(chats, start=1):
        relay.on_event(seq, message(f"wa-{seq}", chat), False)
    await _until(lambda: sorted(done) == [1, 2, 3, 4, 5])  # every message relayed and acked
    assert len(pictures.asked) == 1  # concurrency 1: one lookup at a time
    pictures.gate.set()
    await avatars.drain()
    assert len(harness.chatwoot.avatars) == 2  # backlog 2: the others wait for their next message
    await lanes.close()


# ------------------------------------------------------------------------------------ PN/LID merge


async def test_pn_and_lid_contacts_are_merged_once_both_are_known(harness: Harness) -> None:
    relay, done, lanes, _ = build(harness)
    relay.on_event(1, message("wa-1", LID, name="Lia"), False)
    relay.on_event(2, message("wa-2", PN, name="Lia"), False)
    await _until(lambda: sorted(done) == [1, 2])
    by_lid = harness.chatwoot.contact_inboxes[(7, LID)]
    by_pn = harness.chatwoot.contact_inboxes[(7, PN)]
    assert by_lid != by_pn and len(harness.chatwoot.conversations) == 2
    relay.on_event(3, message("wa-3", LID, name="Lia", pn=PN), False)
    await _until(lambda: sorted(done) == [1, 2, 3])
    assert set(harness.chatwoot.contacts) == {by_pn}  # the phone-number contact survives
    assert set(harness.chatwoot.conversation_contact.values()) == {by_pn}
    assert len(harness.chatwoot.conversations) == 2
    relay.on_event(4, message("wa-4", LID, name="Lia", pn=PN), False)
    await _until(lambda: sorted(done) == [1, 2, 3, 4])
    assert harness.chatwoot.calls.count("merge_contacts") == 1
    await lanes.close()


async def test_a_merge_chatwoot_refuses_is_tried_again_without_holding_messages(harness: Harness) -> None:
    relay, done, lanes, _ = build(harness)
    relay.on_event(1, message("wa-1", LID, name="Lia"), False)
    relay.on_event(2, message("wa-2", PN, name="Lia"), False)
    await _until(lambda: sorted(done) == [1, 2])
    harness.chatwoot.fail(
        "merge_contacts", ChatwootServerError(500, "boom", endpoint="POST /actions/contact_merge")
    )
    relay.on_event(3, message("wa-3", LID, name="Lia", pn=PN), False)
    await _until(lambda: sorted(done) == [1, 2, 3])
    assert len(harness.chatwoot.contacts) == 2 and len(harness.chatwoot.public_messages()) == 3
    relay.on_event(4, message("wa-4", LID, name="Lia", pn=PN), False)  # the next message merges
    await _until(lambda: sorted(done) == [1, 2, 3, 4])
    assert len(harness.chatwoot.contacts) == 1
    relay.on_event(5, message("wa-5", LID, name="Lia", pn=PN), False)
    await _until(lambda: sorted(done) == [1, 2, 3, 4, 5])
    assert harness.chatwoot.calls.count("merge_contacts") == 2  # once refused, once done; no more
    await lanes.close()


async def test_a_refused_merge_is_also_tried_after_a_restart(harness: Harness) -> None:
    relay, done, lanes, _ = build(harness)
    relay.on_event(1, message("wa-1", LID, name="Lia"), False)
    relay.on_event(2, message("wa-2", PN, name="Lia"), False)
    await _until(lambda: sorted(done) == [1, 2])
    harness.chatwoot.fail(
        "merge_contacts", ChatwootServerError(500, "boom", endpoint="POST /actions/contact_merge")
    )
    relay.on_event(3, message("wa-3", LID, name="Lia", pn=PN), False)
    await _until(lambda: sorted(done) == [1, 2, 3])
    await lanes.close()
    relay, done, lanes, _ = build(harness)  # a new process: nothing in memory
    relay.on_event(4, message("wa-4", LID, name="Lia", pn=PN), False)
    await _until(lambda: done == [4])
    assert len(harness.chatwoot.contacts) == 1
    await lanes.close()


async def test_after_a_merge_the_lid_chats_push_name_may_still_name_the_survivor(harness: Harness) -> None:
    """The number's contact had no name but its number; the LID chat's push name is WhatsApp's
    best name for the person, and the merged contact takes it (it is not an agent's edit)."""
    relay, done, lanes, _ = build(harness)
    relay.on_event(1, message("wa-1", LID, name="Lia"), False)
    relay.on_event(2, message("wa-2", PN, name=None), False)
    await _until(lambda: sorted(done) == [1, 2])
    by_pn = harness.chatwoot.contact_inboxes[(7, PN)]
    assert harness.chatwoot.contacts[by_pn].name == "+5511999990007"
    relay.on_event(3, message("wa-3", LID, name="Lia", pn=PN), False)
    await _until(lambda: sorted(done) == [1, 2, 3])
    assert set(harness.chatwoot.contacts) == {by_pn}
    assert harness.chatwoot.contacts[by_pn].name == "Lia"
    await lanes.close()
