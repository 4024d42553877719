"""Names and profile pictures through the neonize session: the saved name from whatsmeow's contact
store (cached), a business's verified name from the message, pictures with GetProfilePictureInfo."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize_fakes import FakeClient, FakeFactory, Recorder, make_engine, stored_login
from parity import ALICE, ME, from_alice, message_event, source

from ryze.engines.base import MessageEvent, NotConnectedError
from ryze.engines.neonize import NeonizeEngine
from ryze.engines.neonize import session as session_module
from ryze.engines.neonize.session import NeonizeSession
from ryze.engines.neonize.translate import translate_message


async def connected(data_dir: Path) -> tuple[NeonizeEngine, Recorder, NeonizeSession, FakeClient]:
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    await session.connect(timeout=5)
    return engine, sink, session, factory.last


async def emit(session: NeonizeSession, client: FakeClient, event: object) -> None:
    await asyncio.to_thread(client.emit, 17, event)
    await session.drain()


def test_a_business_senders_verified_name_is_carried() -> None:
    event = from_alice("B1", wa.Message(conversation="hi"))
    event.Info.VerifiedName.Details.verifiedName = "Alice Ltd"
    message = translate_message(event)
    assert message is not None
    assert message.sender.business_name == "Alice Ltd" and message.chat.business_name == "Alice Ltd"
    plain = translate_message(from_alice("B2", wa.Message(conversation="hi")))
    assert plain is not None and plain.sender.business_name is None


async def test_incoming_private_messages_carry_the_saved_name_read_once(data_dir: Path) -> None:
    engine, sink, session, client = await connected(data_dir)
    client.contact.saved[ALICE] = "Alice (book)"
    await emit(session, client, from_alice("S1", wa.Message(conversation="1")))
    await emit(session, client, from_alice("S2", wa.Message(conversation="2")))
    messages = [e.message for e in sink.of(MessageEvent)]
    assert [(m.chat.saved_name, m.sender.saved_name, m.chat.name) for m in messages] == [
        ("Alice (book)", "Alice (book)", "Alice"),
        ("Alice (book)", "Alice (book)", "Alice"),
    ]
    assert len(client.called("get_contact")) == 1  # cached for SAVED_NAME_TTL_SECONDS
    await engine.aclose()


async def test_a_person_not_in_the_phone_book_has_no_saved_name(data_dir: Path) -> None:
    engine, sink, session, client = await connected(data_dir)
    await emit(session, client, from_alice("S1", wa.Message(conversation="1")))
    [event] = sink.of(MessageEvent)
    assert event.message.chat.saved_name is None and event.message.chat.name == "Alice"
    await engine.aclose()


async def test_own_messages_do_not_read_the_contact_store(data_dir: Path) -> None:
    engine, _sink, session, client = await connected(data_dir)
    mine = message_event("M1", source(ALICE, ME, from_me=True), wa.Message(conversation="x"))
    await emit(session, client, mine)
    assert client.called("get_contact") == []
    await engine.aclose()


async def test_profile_pictures(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _sink, session, client = await connected(data_dir)
    downloads: list[str] = []

    async def download(url: str) -> bytes:
        downloads.append(url)
        return b"\xff\xd8jpeg"

    monkeypatch.setattr(session_module, "_download_picture", download)
    client.pictures[ALICE] = ("1700000000", "https://pps.whatsapp.net/v/t61/alice.jpg")
    picture = await session.profile_picture(ALICE)
    assert picture is not None
    assert (picture.id, picture.mimetype, picture.data) == ("1700000000", "image/jpeg", b"\xff\xd8jpeg")
    unchanged = await session.profile_picture(ALICE, known_id="1700000000")
    assert unchanged is not None and (unchanged.id, unchanged.data) == ("1700000000", b"")
    assert downloads == ["https://pps.whatsapp.net/v/t61/alice.jpg"]  # nothing downloaded again
    assert await session.profile_picture("5511900000000@s.whatsapp.net") is None  # hidden from us
    assert client.called("get_profile_picture")[0] == ((ALICE, ""), {})
    await session.disconnect()
    with pytest.raises(NotConnectedError):
        await session.profile_picture(ALICE)
    await engine.aclose()


def test_contact_info_fields_used_exist() -> None:
    # the fields the session reads from neonize's ContactInfo and GetProfilePictureParams
    assert {"Found", "FullName", "FirstName", "BusinessName"} <= {
        f.name for f in pb.ContactInfo.DESCRIPTOR.fields
    }
    assert {"ExistingID", "Preview"} <= {f.name for f in pb.GetProfilePictureParams.DESCRIPTOR.fields}
