"""Group subjects and ``group.flow`` through the neonize session: the subject is looked up once per
group (``GetGroupInfo``) and cached, kept current by whatsmeow's GroupInfo / JoinedGroup events,
and a failed lookup never holds a message back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize_fakes import FakeClient, FakeFactory, Recorder, make_engine, stored_login
from parity import BOB, GROUP, SCENARIOS, TS_MS, jid, message_event, source

from ryze.engines.base import GroupEvent, GroupSettings, MessageEvent, Party
from ryze.engines.neonize import NeonizeEngine
from ryze.engines.neonize import session as session_module
from ryze.engines.neonize.session import NeonizeSession
from ryze.engines.neonize.translate import translate_group_info, translate_joined_group

GROUP2 = "120363000000000002@g.us"


def group_text(msg_id: str, group: str = GROUP) -> pb.Message:
    return message_event(
        msg_id, source(group, BOB, group=True), wa.Message(conversation=msg_id), push_name="Bob"
    )


async def connected(
    data_dir: Path, groups: dict[str, str]
) -> tuple[NeonizeEngine, Recorder, NeonizeSession, FakeClient]:
    """A connected session whose WhatsApp answers GetGroupInfo with ``groups`` (JID -> subject)."""
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    await session.connect(timeout=5)
    client = factory.last
    client.groups.update(groups)
    return engine, sink, session, client


async def emit(session: NeonizeSession, client: FakeClient, code: int, event: object) -> None:
    await asyncio.to_thread(client.emit, code, event)
    await session.drain()


def names(sink: Recorder) -> list[str | None]:
    return [e.message.chat.name for e in sink.of(MessageEvent)]


async def test_group_messages_carry_the_subject_looked_up_once(data_dir: Path) -> None:
    engine, sink, session, client = await connected(data_dir, {GROUP: "Família"})
    await emit(session, client, 17, group_text("G1"))
    await emit(session, client, 17, group_text("G2"))
    assert names(sink) == ["Família", "Família"]
    assert client.called("get_group_info") == [((GROUP,), {})]
    await engine.aclose()


async def test_a_failed_lookup_sends_the_message_without_a_name_and_is_not_repeated_at_once(
    data_dir: Path,
) -> None:
    engine, sink, session, client = await connected(data_dir, {})
    await emit(session, client, 17, group_text("G1", GROUP2))
    await emit(session, client, 17, group_text("G2", GROUP2))
    assert names(sink) == [None, None]
    assert len(client.called("get_group_info")) == 1
    await engine.aclose()


async def test_a_failed_lookup_is_tried_again_after_the_retry_interval(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "SUBJECT_RETRY_SECONDS", 0.0)
    engine, sink, session, client = await connected(data_dir, {})
    await emit(session, client, 17, group_text("G1", GROUP2))
    client.groups[GROUP2] = "Trabalho"
    await emit(session, client, 17, group_text("G2", GROUP2))
    assert names(sink) == [None, "Trabalho"]
    await engine.aclose()


async def test_a_rename_reaches_the_sink_and_renames_later_messages(data_dir: Path) -> None:
    engine, sink, session, client = await connected(data_dir, {GROUP: "Família"})
    await emit(session, client, 17, group_text("G1"))
    rename = pb.GroupInfoEvent(
        JID=jid(GROUP), Sender=jid(BOB), Timestamp=TS_MS, Name=pb.GroupName(Name="Novo")
    )
    await emit(session, client, 22, rename)
    await emit(session, client, 17, group_text("G2"))
    assert names(sink) == ["Família", "Novo"]
    [change] = sink.of(GroupEvent)
    assert (change.action, change.subject, change.chat.name) == ("subject", "Novo", "Novo")
    assert len(client.called("get_group_info")) == 1
    await engine.aclose()


async def test_a_membership_change_of_an_unknown_group_names_it_by_lookup(data_dir: Path) -> None:
    engine, sink, session, client = await connected(data_dir, {GROUP: "Família"})
    await emit(session, client, 22, pb.GroupInfoEvent(JID=jid(GROUP), Timestamp=TS_MS, Join=[jid(BOB)]))
    [change] = sink.of(GroupEvent)
    assert (change.action, change.chat.name, change.subject) == ("add", "Família", "Família")
    await engine.aclose()


async def test_joining_a_group_announces_it_and_caches_its_subject(data_dir: Path) -> None:
    joined = next(s for s in SCENARIOS if s.name == "joined_group")
    engine, sink, session, client = await connected(data_dir, {})
    await emit(session, client, 21, joined.build())
    await emit(session, client, 17, group_text("G1"))
    assert tuple(sink.of(GroupEvent)) == joined.expected
    assert names(sink) == ["Família"]
    assert client.called("get_group_info") == []
    await engine.aclose()


async def test_own_group_sends_carry_the_cached_subject_without_a_lookup(data_dir: Path) -> None:
    engine, sink, session, client = await connected(data_dir, {})
    rename = pb.GroupInfoEvent(JID=jid(GROUP), Timestamp=TS_MS, Name=pb.GroupName(Name="Família"))
    await emit(session, client, 22, rename)
    await session.send_text(GROUP, "oi")
    await session.drain()
    [sent] = sink.of(MessageEvent)
    assert (sent.message.from_me, sent.message.chat.name) == (True, "Família")
    assert client.called("get_group_info") == []
    await engine.aclose()


def test_the_client_subscribes_to_group_events() -> None:
    from ryze.engines.neonize._neonize import INT_TO_EVENT, SUBSCRIBED_CODES

    assert INT_TO_EVENT[session_module.JOINED_GROUP_CODE] is pb.JoinedGroup
    assert INT_TO_EVENT[session_module.GROUP_INFO_CODE] is pb.GroupInfoEvent
    assert {session_module.JOINED_GROUP_CODE, session_module.GROUP_INFO_CODE} <= set(SUBSCRIBED_CODES)


# --- translate/groups.py edge cases ---------------------------------------------------------------


def test_group_notifications_without_a_group_or_a_known_change_produce_nothing() -> None:
    assert translate_group_info(pb.GroupInfoEvent(Timestamp=TS_MS), known_subject=None) == []
    assert translate_group_info(pb.GroupInfoEvent(JID=jid(GROUP), Timestamp=TS_MS), known_subject="x") == []
    assert translate_joined_group(pb.JoinedGroup(GroupInfo=pb.GroupInfo())) is None


def test_a_deleted_topic_a_lock_and_a_demotion() -> None:
    event = pb.GroupInfoEvent(
        JID=jid(GROUP),
        Timestamp=TS_MS,
        Topic=pb.GroupTopic(Topic="old", TopicDeleted=True),
        Demote=[jid(BOB)],
        Locked=pb.GroupLocked(isLocked=False),
        Ephemeral=pb.GroupEphemeral(IsEphemeral=False, DisappearingTimer=604800),
    )
    topic, demote, settings = translate_group_info(event, known_subject="Família")
    assert (topic.action, topic.topic, topic.actor) == ("topic", "", None)
    assert (demote.action, demote.participants) == ("demote", (Party(jid=BOB),))
    assert settings.settings == GroupSettings(locked=False, ephemeral_seconds=0)  # timer off
    assert {e.chat.name for e in (topic, demote, settings)} == {"Família"}
