"""Translation of whatsmeow events (neonize protobufs built in the test) into domain events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from parity import (
    ALICE,
    BOB,
    BOB_LID,
    GROUP,
    ME,
    SCENARIOS,
    Scenario,
    comparable,
    from_alice,
    jid,
    media_fields,
    message_event,
    receipt_event,
    source,
    translate,
)

from ryze.engines.base import ConnectionState, EngineError, Party
from ryze.engines.neonize.translate import translate_connection, translate_message, translate_receipt
from ryze.engines.neonize.translate.jids import jid_str, parse_jid, source_parties, timestamp
from ryze.engines.neonize.translate.messages import vcard_phones


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_parity_scenario(scenario: Scenario) -> None:
    assert comparable(translate(scenario)) == comparable(scenario.expected)


def test_parity_scenarios_cover_every_family_and_kind() -> None:
    kinds = {
        s.expected.message.kind
        for s in SCENARIOS
        if s.family == "message" and s.expected is not None  # type: ignore[union-attr]
    }
    assert kinds >= {"text", "image", "video", "audio", "document", "sticker", "location", "contact"}
    assert kinds >= {"reaction", "edit", "revoke", "poll", "unsupported"}
    media = {
        s.expected.message.media.kind
        for s in SCENARIOS
        if s.family == "message" and s.expected is not None and s.expected.message.media is not None
    }  # type: ignore[union-attr]
    assert media >= {"image", "video", "audio", "ptt", "document", "sticker", "ptv"}
    actions = {e.action for s in SCENARIOS if s.family == "group" for e in s.expected}  # type: ignore[union-attr]
    assert actions >= {"create", "subject", "topic", "add", "remove", "promote", "settings"}
    assert {s.family for s in SCENARIOS} == {"message", "receipt", "connection", "group"}
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


# --- jids ---------------------------------------------------------------------------------------


def test_jid_str_drops_device_and_handles_empty() -> None:
    assert jid_str(jid(ALICE, device=12)) == ALICE
    assert jid_str(pb.JID()) is None
    assert jid_str(pb.JID(Server="broadcast")) == "broadcast"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5511999999999", ALICE),
        ("+55 (11) 99999-9999", ALICE),
        (ALICE, ALICE),
        ("5511999999999:3@s.whatsapp.net", ALICE),
        ("5511999999999@c.us", ALICE),
        (GROUP, GROUP),
        (BOB_LID, BOB_LID),
    ],
)
def test_parse_jid(text: str, expected: str) -> None:
    assert jid_str(parse_jid(text)) == expected


@pytest.mark.parametrize("text", ["", "hello", "a@b", "55119@evil.com", "12"])
def test_parse_jid_rejects_garbage(text: str) -> None:
    with pytest.raises(EngineError, match="Invalid WhatsApp id"):
        parse_jid(text)


def test_timestamp_accepts_milliseconds_and_seconds() -> None:
    expected = datetime(2025, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)
    assert timestamp(1764072000123) == expected
    assert timestamp(1764072000) == expected.replace(microsecond=0)


def test_source_parties_alt_equal_to_primary_is_dropped() -> None:
    chat, sender = source_parties(source(ALICE, ALICE, sender_alt=ALICE), "Alice")
    assert chat == sender == Party(jid=ALICE, name="Alice")


# --- messages -----------------------------------------------------------------------------------


def test_media_handle_is_the_media_submessage_without_the_quote() -> None:
    image = wa.ImageMessage(
        caption="c",
        contextInfo=wa.ContextInfo(stanzaID="Q1", quotedMessage=wa.Message(conversation="big quote")),
        **media_fields("image/png"),
    )
    message = translate_message(from_alice("ID1", wa.Message(imageMessage=image)))
    assert message is not None and message.media is not None
    assert message.reply_to == "Q1"
    stored = wa.Message.FromString(message.media.handle)
    assert [f.name for f, _ in stored.ListFields()] == ["imageMessage"]
    assert stored.imageMessage.directPath == "/v/t62/abc"
    assert stored.imageMessage.mediaKey == b"k" * 32
    assert not stored.imageMessage.HasField("contextInfo")


def test_ptv_is_a_video_stored_as_video_message() -> None:
    event = from_alice("ID2", wa.Message(ptvMessage=wa.VideoMessage(seconds=3, **media_fields("video/mp4"))))
    message = translate_message(event)
    assert message is not None and message.media is not None
    assert (message.kind, message.media.kind) == ("video", "ptv")
    assert wa.Message.FromString(message.media.handle).HasField("videoMessage")


def test_missing_mimetype_gets_a_default() -> None:
    fields = media_fields("")
    message = translate_message(
        from_alice("ID3", wa.Message(audioMessage=wa.AudioMessage(PTT=True, **fields)))
    )
    assert message is not None and message.media is not None
    assert message.media.mimetype == "audio/ogg; codecs=opus"


def test_edit_of_a_media_caption_carries_the_new_caption() -> None:
    event = from_alice(
        "ID4",
        wa.Message(
            protocolMessage=wa.ProtocolMessage(
                type=wa.ProtocolMessage.MESSAGE_EDIT,
                key={"ID": "IMG1", "remoteJID": ALICE},
                editedMessage=wa.Message(imageMessage=wa.ImageMessage(caption="new caption")),
            )
        ),
    )
    message = translate_message(event)
    assert message is not None
    assert (message.kind, message.target_id, message.text) == ("edit", "IMG1", "new caption")


def test_group_reply_to_participant_message() -> None:
    event = message_event(
        "ID5",
        source(GROUP, BOB, group=True),
        wa.Message(
            extendedTextMessage=wa.ExtendedTextMessage(
                text="ok", contextInfo=wa.ContextInfo(stanzaID="ORIG", participant=ALICE)
            )
        ),
        push_name="Bob",
    )
    message = translate_message(event)
    assert message is not None
    assert message.is_group and message.chat == Party(jid=GROUP)
    assert message.sender == Party(jid=BOB, name="Bob")
    assert message.reply_to == "ORIG"


def test_sender_key_distribution_alone_is_not_a_message() -> None:
    event = from_alice(
        "ID6",
        wa.Message(senderKeyDistributionMessage=wa.SenderKeyDistributionMessage(groupID=GROUP)),
    )
    assert translate_message(event) is None


def test_a_poll_vote_is_not_a_message() -> None:
    vote = wa.PollUpdateMessage(
        pollCreationMessageKey=MessageKey(remoteJID=ALICE, fromMe=True, ID="POLL1"),
        vote=wa.PollEncValue(encPayload=b"x" * 16, encIV=b"i" * 12),
    )
    assert translate_message(from_alice("VOTE1", wa.Message(pollUpdateMessage=vote))) is None


def test_empty_chat_is_ignored() -> None:
    event = pb.Message(Info=pb.MessageInfo(ID="X"), Message=wa.Message(conversation="hi"))
    assert translate_message(event) is None


def test_vcard_phones() -> None:
    vcard = (
        "BEGIN:VCARD\nTEL;waid=5511999999999:+55 11 99999-9999\n"
        "item2.TEL;type=HOME:+1 (555) 010-0000\nEND:VCARD"
    )
    assert vcard_phones(vcard) == ("5511999999999", "15550100000")
    assert vcard_phones("") == ()


# --- receipts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (pb.Receipt.SENDER, "sender"),
        (pb.Receipt.PLAYED_SELF, "played_self"),
        (pb.Receipt.RETRY, "retry"),
        (pb.Receipt.INACTIVE, "inactive"),
        # neonize's EncodeReceipts (goneonize/utils/encoder.go) writes SERVER_ERROR for played-self
        (pb.Receipt.SERVER_ERROR, "played_self"),
    ],
)
def test_receipt_kinds(kind: int, expected: str) -> None:
    receipt = translate_receipt(receipt_event(source(ALICE, ALICE), ("M1",), kind))
    assert receipt is not None and receipt.kind == expected


@pytest.mark.parametrize("kind", [pb.Receipt.PEER_MSG, pb.Receipt.HISTORY_SYNC])
def test_housekeeping_receipts_are_dropped(kind: int) -> None:
    assert translate_receipt(receipt_event(source(ALICE, ALICE), ("M1",), kind)) is None


def test_receipt_without_ids_is_dropped() -> None:
    assert translate_receipt(receipt_event(source(ALICE, ALICE), (), pb.Receipt.READ)) is None


def test_a_server_error_receipt_is_not_reported_as_delivered() -> None:
    """whatsmeow's "server-error" receipt has no case in neonize's EncodeReceipts
    (goneonize/utils/encoder.go): it arrives with no type. A delivery always carries DELIVERED."""
    event = pb.Receipt(MessageSource=source(ALICE, ALICE), MessageIDs=["M1"], Timestamp=1)
    receipt = translate_receipt(event)
    assert receipt is not None and receipt.kind == "server_error"
    delivered = translate_receipt(receipt_event(source(ALICE, ALICE), ("M1",), pb.Receipt.DELIVERED))
    assert delivered is not None and delivered.kind == "delivered"


# --- connection -----------------------------------------------------------------------------------


def test_connected_carries_our_party() -> None:
    me = Party(jid=ME, name="Me")
    change = translate_connection(pb.Connected(status=True), me=me)
    assert change is not None and change.state is ConnectionState.CONNECTED and change.me == me


@pytest.mark.parametrize(
    ("reason", "state"),
    [
        (pb.ConnectFailureReason.LOGGED_OUT, ConnectionState.LOGGED_OUT),
        (pb.ConnectFailureReason.MAIN_DEVICE_GONE, ConnectionState.LOGGED_OUT),
        (pb.ConnectFailureReason.TEMP_BANNED, ConnectionState.TEMP_BANNED),
        (pb.ConnectFailureReason.SERVICE_UNAVAILABLE, ConnectionState.DISCONNECTED),
        (pb.ConnectFailureReason.CLIENT_OUTDATED, ConnectionState.DISCONNECTED),
    ],
)
def test_connect_failure_states(reason: int, state: ConnectionState) -> None:
    change = translate_connection(pb.ConnectFailure(Reason=reason, Message="m"))
    assert change is not None and change.state is state
    assert change.reason is not None and change.reason.startswith("Connect failure: ")


def test_keepalive_and_other_events() -> None:
    timeout = translate_connection(pb.KeepAliveTimeout(ErrorCount=3))
    assert (
        timeout is not None
        and timeout.state is ConnectionState.CONNECTING
        and "3 failed" in (timeout.reason or "")
    )
    restored = translate_connection(pb.KeepAliveRestored())
    assert restored is not None and restored.state is ConnectionState.CONNECTED
    outdated = translate_connection(pb.ClientOutdated())
    assert outdated is not None and outdated.state is ConnectionState.DISCONNECTED
    logged_out = translate_connection(
        pb.LoggedOut(OnConnect=True, Reason=pb.ConnectFailureReason.UNKNOWN_LOGOUT)
    )
    assert logged_out is not None and logged_out.reason == "Logged out on connect (unknown_logout)"
    assert translate_connection(pb.PairStatus()) is None
