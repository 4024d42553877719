"""whatsmeow's history sync (neonize ``HistorySyncEv``) translated into ``HistorySyncEvent``s, from
protobufs built in the test the way the phone sends them (waHistorySync.proto)."""

from __future__ import annotations

from datetime import UTC, datetime

from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize.proto.waHistorySync import WAWebProtobufsHistorySync_pb2 as hs
from neonize.proto.waWeb import WAWebProtobufsWeb_pb2 as web
from parity import ALICE, ALICE_LID, BOB, GROUP, ME

from ryze.engines.base import Party
from ryze.engines.neonize.translate.history import translate_history

ME_PARTY = Party(jid=ME, name="Me")
T0 = 1764072000  # 2025-11-25 12:00:00 UTC; WebMessageInfo.messageTimestamp is in seconds


def _web(
    chat: str, msg_id: str, text: str, *, at: int, from_me: bool = False, participant: str = "",
    push_name: str = "", message: wa.Message | None = None,
) -> hs.HistorySyncMsg:  # fmt: skip
    info = web.WebMessageInfo(
        key=MessageKey(remoteJID=chat, fromMe=from_me, ID=msg_id),
        message=message if message is not None else wa.Message(conversation=text),
        messageTimestamp=at,
        pushName=push_name,
    )
    if participant:
        info.participant = participant
    return hs.HistorySyncMsg(message=info, msgOrderID=at)


def _sync(
    kind: int, *conversations: hs.Conversation, progress: int | None = None, **extra: object
) -> pb.HistorySync:
    data = hs.HistorySync(syncType=kind, conversations=list(conversations), chunkOrder=1, **extra)  # type: ignore[arg-type]
    if progress is not None:
        data.progress = progress
    return pb.HistorySync(Data=data)


def test_a_bootstrap_becomes_per_chat_messages_oldest_first_with_their_original_times() -> None:
    alice = hs.Conversation(
        ID=ALICE,
        messages=[  # the phone lists newest first
            _web(ALICE, "A3", "see you", at=T0 + 120, from_me=True),
            _web(ALICE, "A2", "how are you?", at=T0 + 60, push_name="Alice"),
            _web(ALICE, "A1", "hello", at=T0, push_name="Alice"),
        ],
    )
    group = hs.Conversation(
        ID=GROUP, name="Team", messages=[_web(GROUP, "G1", "morning", at=T0 + 30, participant=BOB)]
    )
    event = translate_history(_sync(hs.HistorySync.INITIAL_BOOTSTRAP, alice, group, progress=40), me=ME_PARTY)
    assert event is not None
    assert (event.kind, event.chunk, event.progress, event.final) == ("initial_bootstrap", 1, 40, False)
    first, second = event.chats
    assert first.chat.jid == ALICE
    assert [m.id for m in first.messages] == ["A1", "A2", "A3"]
    assert [m.text for m in first.messages] == ["hello", "how are you?", "see you"]
    assert first.messages[0].timestamp == datetime(2025, 11, 25, 12, 0, tzinfo=UTC)
    assert first.messages[0].sender.jid == ALICE and first.messages[0].sender.name == "Alice"
    own = first.messages[2]
    assert own.from_me and own.sender.jid == ME and own.chat.jid == ALICE
    [g1] = second.messages
    assert g1.is_group and g1.chat.jid == GROUP and g1.chat.name == "Team" and g1.sender.jid == BOB


def test_an_on_demand_answer_is_final_and_media_keeps_its_download_handle() -> None:
    image = wa.Message(
        imageMessage=wa.ImageMessage(
            mimetype="image/jpeg", caption="the receipt", fileLength=1234, URL="https://mmg.example/x",
            mediaKey=b"k" * 32, fileSHA256=b"s" * 32, fileEncSHA256=b"e" * 32, directPath="/v/x",
        )
    )  # fmt: skip
    conversation = hs.Conversation(ID=ALICE, messages=[_web(ALICE, "IMG1", "", at=T0, message=image)])
    event = translate_history(_sync(hs.HistorySync.ON_DEMAND, conversation), me=ME_PARTY)
    assert event is not None and event.kind == "on_demand" and event.final
    [message] = event.chats[0].messages
    assert message.kind == "image" and message.text == "the receipt"
    assert message.media is not None and message.media.mimetype == "image/jpeg" and message.media.handle


def test_a_lid_chat_gets_its_phone_number_from_the_syncs_mappings() -> None:
    conversation = hs.Conversation(ID=ALICE_LID, messages=[_web(ALICE_LID, "L1", "hi", at=T0)])
    mappings = [hs.PhoneNumberToLIDMapping(pnJID=ALICE, lidJID=ALICE_LID)]
    event = translate_history(
        _sync(hs.HistorySync.RECENT, conversation, phoneNumberToLidMappings=mappings), me=ME_PARTY
    )
    assert event is not None
    [message] = event.chats[0].messages
    assert message.chat.jid == ALICE_LID and message.chat.alt == ALICE


def test_syncs_without_chat_history_and_unparseable_messages_are_left_out() -> None:
    assert translate_history(_sync(hs.HistorySync.PUSH_NAME), me=ME_PARTY) is None
    no_sender = hs.Conversation(ID=GROUP, messages=[_web(GROUP, "G9", "who?", at=T0)])  # no participant
    own_logged_out = hs.Conversation(ID=ALICE, messages=[_web(ALICE, "A9", "mine", at=T0, from_me=True)])
    event = translate_history(_sync(hs.HistorySync.RECENT, no_sender, own_logged_out), me=None)
    assert event is not None and event.chats == ()  # whatsmeow's ParseWebMessage refuses both
