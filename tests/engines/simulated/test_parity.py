"""Parity with the neonize engine: the same traffic, played on the simulated phone network, yields
the domain events of the neonize engine's parity fixtures (``tests/engines/neonize/parity.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ryze.engines.base import Contact, DomainEvent, GroupSettings, Location, MessageEvent, Party, Poll
from ryze.engines.simulated import (
    GroupChange,
    GroupMember,
    Inbound,
    InboundMedia,
    SimulatedEngine,
    SimulatedSession,
)

PARITY_FILE = Path(__file__).resolve().parents[1] / "neonize" / "parity.py"


def _load_parity() -> ModuleType:
    pytest.importorskip("neonize")
    spec = importlib.util.spec_from_file_location("ryze_parity_fixtures", PARITY_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


parity = _load_parity()
ALICE, ALICE_LID, BOB, BOB_LID, GROUP = (
    parity.ALICE,
    parity.ALICE_LID,
    parity.BOB,
    parity.BOB_LID,
    parity.GROUP,
)
ME, ME_LID, TS = parity.ME, parity.ME_LID, parity.TS


def alice(msg_id: str, **fields: Any) -> Inbound:
    return Inbound(sender=ALICE, push_name="Alice", id=msg_id, timestamp=TS, **fields)


def media(kind: Any, mimetype: str, size: int, **fields: Any) -> InboundMedia:
    return InboundMedia(kind=kind, data=b"\0" * size, mimetype=mimetype, **fields)


CARD_ALICE = Contact("Alice", parity.VCARD_ALICE, ("5511999999999",))
CARD_BOB = Contact("Bob", parity.VCARD_BOB, ("5511988888888",))

# The same traffic, as the control API's callers describe it.
MESSAGES: dict[str, Inbound | None] = {
    "text": alice("3EB0TEXT01", text="Olá!"),
    "extended_text": alice("3EB0TEXT02", text="see https://example.com"),
    "text_lid_with_pn_alt": Inbound(
        sender=ALICE_LID, sender_alt=ALICE, push_name="Alice", id="3EB0LID01", timestamp=TS, text="oi"
    ),
    "group_image_caption_lid_participant": Inbound(
        sender=BOB_LID,
        sender_alt=BOB,
        push_name="Bob",
        group=GROUP,
        id="3EB0GRPIMG1",
        timestamp=TS,
        kind="image",
        text="vejam",
        media=media("image", "image/jpeg", 2048),
    ),
    "group_text_pn_participant": Inbound(
        sender=BOB,
        sender_alt=BOB_LID,
        push_name="Bob",
        group=GROUP,
        id="3EB0GRPTXT1",
        timestamp=TS,
        text="bom dia",
    ),
    "reply": alice("3EB0REPLY1", text="sim", reply_to="3EB0OURS01", quoted_text="tudo bem?"),
    "reaction": alice("3EB0REACT1", kind="reaction", target_id="3EB0OURS01", emoji="👍"),
    "reaction_removed": alice("3EB0REACT2", kind="reaction", target_id="3EB0OURS01", emoji=""),
    "edit": alice("3EB0EDIT01", kind="edit", target_id="3EB0TEXT01", text="Olá, tudo bem?"),
    "edit_wrapped": alice("3EB0EDIT02", kind="edit", target_id="3EB0TEXT01", text="Olá, tudo bem?"),
    "revoke": alice("3EB0REVOKE1", kind="revoke", target_id="3EB0TEXT01"),
    "own_message_from_phone": Inbound(
        sender=ALICE, to_alt=ALICE_LID, from_me=True, id="3EB0OWN01", timestamp=TS, text="já vou"
    ),
    "voice_note": alice(
        "3EB0PTT01", kind="audio", media=media("ptt", "audio/ogg; codecs=opus", 9000, seconds=7)
    ),
    "audio": alice("3EB0AUD01", kind="audio", media=media("audio", "audio/mpeg", 4096, seconds=180)),
    "video": alice(
        "3EB0VID01", kind="video", text="olha", media=media("video", "video/mp4", 8192, seconds=12)
    ),
    "document_with_caption": alice(
        "3EB0DOC01",
        kind="document",
        text="segue",
        media=media("document", "application/pdf", 2048, file_name="report.pdf"),
    ),
    "sticker": alice("3EB0STK01", kind="sticker", media=media("sticker", "image/webp", 512)),
    "location": alice(
        "3EB0LOC01", kind="location", location=Location(-23.55, -46.63, "Escritório", "Av. Paulista")
    ),
    "contact": alice("3EB0VCF01", kind="contact", contacts=(CARD_ALICE,)),
    "contacts_array": alice("3EB0VCF02", kind="contact", contacts=(CARD_ALICE, CARD_BOB)),
    "view_once_image": alice(
        "3EB0VO01", kind="image", view_once=True, media=media("image", "image/jpeg", 2048)
    ),
    "view_once_unwrapped_flag": alice(
        "3EB0VO02", kind="image", view_once=True, media=media("image", "image/jpeg", 2048)
    ),
    "ephemeral_text": alice("3EB0EPH01", text="some"),
    "forwarded": alice("3EB0FWD01", text="corrente", forwarded=True),
    "poll": alice("3EB0POLL01", kind="poll", poll=Poll("Almoço?", ("pizza", "sushi"), 0)),
    "poll_single_choice_v3": alice("3EB0POLL02", kind="poll", poll=Poll("Hoje?", ("sim", "não"), 1)),
    "gif": alice(
        "3EB0GIF01", kind="video", text="kkk", media=media("video", "video/mp4", 4096, seconds=3, gif=True)
    ),
    "video_note": alice("3EB0PTV01", kind="video", media=media("ptv", "video/mp4", 6000, seconds=5)),
    "live_location": alice(
        "3EB0LIVE01", kind="location", text="indo", location=Location(-22.9, -43.2, live=True, sequence=1)
    ),
    "live_location_update": alice(
        "3EB0LIVE02", kind="location", location=Location(-22.95, -43.18, live=True, sequence=7)
    ),
    "image_reply": alice(
        "3EB0IMGRE1",
        kind="image",
        text="essa?",
        reply_to="3EB0OURS01",
        quoted_text="qual?",
        media=media("image", "image/jpeg", 2048),
    ),
    "view_once_voice": alice(
        "3EB0VO03",
        kind="audio",
        view_once=True,
        media=media("ptt", "audio/ogg; codecs=opus", 3000, seconds=4),
    ),
    "unsupported_event": alice("3EB0EVT01", kind="unsupported"),
    "group_text_known_subject": Inbound(
        sender=BOB, push_name="Bob", group=GROUP, id="3EB0GRPTXT2", timestamp=TS, text="oi gente"
    ),
    "status_broadcast_ignored": Inbound(sender=ALICE, group="status@broadcast", text="story", timestamp=TS),
    "protocol_housekeeping_ignored": None,  # nothing a user does: the simulated phone never sends it
}

RECEIPTS: dict[str, dict[str, Any]] = {
    "receipt_delivered": {"chat": ALICE, "message_ids": ("3EB0OURS01", "3EB0OURS02"), "kind": "delivered"},
    "receipt_read": {"chat": ALICE, "message_ids": ("3EB0OURS01",), "kind": "read"},
    "receipt_played": {"chat": ALICE, "message_ids": ("3EB0OURS03",), "kind": "played"},
    "receipt_group_read_lid": {
        "chat": GROUP,
        "sender": BOB_LID,
        "sender_alt": BOB,
        "message_ids": ("3EB0OURS04",),
        "kind": "read",
    },
    "receipt_read_self": {"chat": ALICE, "sender": ME, "message_ids": ("3EB0TEXT01",), "kind": "read_self"},
}

GROUPS: dict[str, list[GroupChange]] = {
    "joined_group": [
        GroupChange(
            group=GROUP,
            action="create",
            subject="Família",
            topic="fotos",
            participants=(
                GroupMember(ALICE_LID, ALICE),
                GroupMember(BOB_LID, BOB, "Bob"),
                GroupMember(ME, ME_LID),
            ),
            actor=ALICE_LID,
            actor_alt=ALICE,
            timestamp=parity.GROUP_CREATED,
        )
    ],
    "group_renamed": [
        GroupChange(group=GROUP, action="subject", subject="Família 2026", actor=BOB, timestamp=TS)
    ],
    "group_topic_changed": [
        GroupChange(group=GROUP, action="topic", topic="só fotos", actor=BOB, timestamp=TS)
    ],
    "group_added_and_promoted": [
        GroupChange(group=GROUP, action="add", participants=(GroupMember(BOB),), actor=ALICE, timestamp=TS),
        GroupChange(
            group=GROUP, action="promote", participants=(GroupMember(BOB),), actor=ALICE, timestamp=TS
        ),
    ],
    "group_left": [
        GroupChange(group=GROUP, action="remove", participants=(GroupMember(BOB),), actor=BOB, timestamp=TS)
    ],
    "group_settings": [
        GroupChange(
            group=GROUP,
            action="settings",
            settings=GroupSettings(announce=True, ephemeral_seconds=86400),
            actor=ALICE,
            timestamp=TS,
        )
    ],
}

CONNECTION = {
    "logged_out_from_phone": SimulatedSession.unlink_from_phone,
    "temporary_ban": SimulatedSession.temporary_ban,
    "disconnected": SimulatedSession.drop_connection,
}


async def connected_session(group_subject: str | None = None) -> tuple[SimulatedSession, list[DomainEvent]]:
    events: list[DomainEvent] = []

    async def sink(event: DomainEvent) -> None:
        events.append(event)

    engine = SimulatedEngine(auto_connect_seconds=None)
    if group_subject is not None:  # the network already knows the group (the neonize session's cache)
        engine.group_subjects[GROUP] = group_subject
    session = await engine.open_session("orion", sink)
    await session.connect()
    await session.scan(ME, "Me", ME_LID)
    events.clear()
    return session, events


def scenario(name: str) -> Any:
    return next(s for s in parity.SCENARIOS if s.name == name)


def test_every_traffic_scenario_is_covered() -> None:
    covered = set(MESSAGES) | set(RECEIPTS) | set(CONNECTION) | set(GROUPS) | {"connected", "stream_replaced"}
    assert {s.name for s in parity.SCENARIOS} <= covered


@pytest.mark.parametrize("name", sorted(MESSAGES))
async def test_message_parity(name: str) -> None:
    session, events = await connected_session(scenario(name).group_subject)
    item = MESSAGES[name]
    if item is not None:
        await session.deliver([item])
    actual = events[-1] if events else None
    assert parity.comparable(actual) == parity.comparable(scenario(name).expected)


@pytest.mark.parametrize("name", sorted(RECEIPTS))
async def test_receipt_parity(name: str) -> None:
    session, events = await connected_session()
    args = dict(RECEIPTS[name])
    await session.deliver_receipt(
        args.pop("chat"), args.pop("message_ids"), args.pop("kind"), timestamp=TS, **args
    )
    assert events == [scenario(name).expected]


@pytest.mark.parametrize("name", sorted(GROUPS))
async def test_group_parity(name: str) -> None:
    session, events = await connected_session(scenario(name).group_subject)
    await session.deliver_group(GROUPS[name])
    assert tuple(events) == scenario(name).expected


@pytest.mark.parametrize("name", sorted(CONNECTION))
async def test_connection_parity(name: str) -> None:
    session, events = await connected_session()
    await CONNECTION[name](session)
    assert events == [scenario(name).expected]


# --- the simulated network on neonize's wire (SIMULATOR_WIRE=neonize) ---------------------------


async def wired_session(group_subject: str | None = None) -> tuple[SimulatedSession, list[DomainEvent]]:
    events: list[DomainEvent] = []

    async def sink(event: DomainEvent) -> None:
        events.append(event)

    engine = SimulatedEngine(auto_connect_seconds=None, wire="neonize")
    if group_subject is not None:
        engine.group_subjects[GROUP] = group_subject
    session = await engine.open_session("orion", sink)
    await session.connect()
    await session.scan(ME, "Me", ME_LID)
    events.clear()
    return session, events


@pytest.mark.parametrize(
    "name", sorted(n for n, item in MESSAGES.items() if item is not None and n != "status_broadcast_ignored")
)
async def test_the_neonize_wire_yields_the_parity_events(name: str) -> None:
    """Built as whatsmeow's protobufs and translated by the neonize engine's translators, every
    message type comes out as the parity fixture says: the builders cover every type."""
    session, events = await wired_session(scenario(name).group_subject)
    item = MESSAGES[name]
    assert item is not None
    await session.deliver([item])
    assert [parity.comparable(e) for e in events] == [parity.comparable(scenario(name).expected)]


@pytest.mark.parametrize("name", sorted(GROUPS))
async def test_the_neonize_wire_yields_the_group_parity_events(name: str) -> None:
    session, events = await wired_session(scenario(name).group_subject)
    await session.deliver_group(GROUPS[name])
    assert tuple(events) == scenario(name).expected


@pytest.mark.parametrize("name", sorted(RECEIPTS))
async def test_the_neonize_wire_yields_the_receipt_parity_events(name: str) -> None:
    session, events = await wired_session()
    args = dict(RECEIPTS[name])
    await session.deliver_receipt(
        args.pop("chat"), args.pop("message_ids"), args.pop("kind"), timestamp=TS, **args
    )
    assert events == [scenario(name).expected]


async def test_media_on_the_neonize_wire_downloads_with_the_neonize_handle() -> None:
    session, events = await wired_session()
    await session.deliver(
        [alice("3EB0IMG9", kind="image", media=InboundMedia("image", b"png-bytes", "image/png"))]
    )
    [event] = events
    assert isinstance(event, MessageEvent) and event.message.media is not None
    # the neonize engine's handle (the serialized media sub-message DownloadAny takes), not a blob key
    from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

    assert wa.Message.FromString(event.message.media.handle).HasField("imageMessage")
    assert await session.download_media(event.message.media) == b"png-bytes"


async def test_own_sends_on_the_neonize_wire() -> None:
    session, events = await wired_session("Família")
    await session.send_text(GROUP, "oi", origin="api")
    [event] = events
    assert isinstance(event, MessageEvent) and event.origin == "api"
    assert (event.message.from_me, event.message.chat.name, event.message.text) == (True, "Família", "oi")
    assert event.message.sender == Party(jid=ME, alt=ME_LID, name="Me")
