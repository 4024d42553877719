"""Sending: the protobufs we build, and what the session hands to neonize (fake client)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from neonize.exc import SendMessageError
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize.utils.enum import ChatPresence, ChatPresenceMedia, MediaType, ReceiptType
from neonize_fakes import FakeClient, FakeFactory, Recorder, make_engine, stored_login
from parity import ALICE, BOB, GROUP, ME, ME_LID
from PIL import Image

from ryze.engines.base import (
    EngineError,
    Media,
    MessageEvent,
    OutgoingMedia,
    Party,
    Quote,
)
from ryze.engines.neonize import send
from ryze.engines.neonize.session import NeonizeSession

UPLOAD = pb.UploadResponse(
    url="https://mmg/u", DirectPath="/v/u", MediaKey=b"m" * 32, FileEncSHA256=b"e" * 32, FileSHA256=b"s" * 32,
    FileLength=10,
)  # fmt: skip


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


# --- pure builders --------------------------------------------------------------------------------


def test_plain_text_is_a_conversation() -> None:
    assert send.build_text("hi") == wa.Message(conversation="hi")


def test_text_with_quote_has_reply_context() -> None:
    quote = Quote(id="Q1", chat=ALICE, sender=ALICE, from_me=False, text="original")
    msg = send.build_text("answer", quote=quote)
    ctx = msg.extendedTextMessage.contextInfo
    assert msg.extendedTextMessage.text == "answer"
    assert (ctx.stanzaID, ctx.participant) == ("Q1", ALICE)
    assert ctx.quotedMessage.conversation == "original"


def test_quote_of_our_own_message_names_us() -> None:
    quote = Quote(id="Q2", chat=ALICE, sender="", from_me=True, text="mine")
    ctx = send.build_text("x", quote=quote, me=ME).extendedTextMessage.contextInfo
    assert ctx.participant == ME


def test_mentions() -> None:
    msg = send.build_text("@5511999999999 oi", mentions=("5511999999999",))
    assert list(msg.extendedTextMessage.contextInfo.mentionedJID) == [ALICE]


def test_image_message_from_upload() -> None:
    media = OutgoingMedia(kind="image", data=png_bytes(), mimetype="image/png", caption="look")
    info = send.image_info(media.data)
    assert info is not None and info.thumbnail.startswith(b"\xff\xd8")  # a JPEG
    image = send.build_media(media, UPLOAD, mimetype="image/png", image=info).imageMessage
    assert (image.URL, image.directPath, image.mediaKey) == ("https://mmg/u", "/v/u", b"m" * 32)
    assert (image.fileLength, image.caption, image.mimetype) == (10, "look", "image/png")
    assert (image.JPEGThumbnail, image.width, image.height) == (info.thumbnail, 300, 200)
    assert send.image_info(b"not an image") is None


def ogg_opus(seconds: float, pre_skip: int = 312) -> bytes:
    """A minimal Ogg/Opus byte string: OpusHead page + a last page with its granule position."""
    head = b"OpusHead" + bytes([1, 1]) + pre_skip.to_bytes(2, "little") + (48000).to_bytes(4, "little")
    first = b"OggS" + bytes([0, 2]) + (0).to_bytes(8, "little") + b"\x00" * 13 + head
    granule = int(seconds * 48000) + pre_skip
    last = b"OggS" + bytes([0, 4]) + granule.to_bytes(8, "little") + b"\x00" * 13 + b"audio"
    return first + b"\x00" * 100 + last


def test_voice_note_is_ptt_with_the_opus_mimetype_and_duration() -> None:
    media = OutgoingMedia(kind="audio", data=ogg_opus(7.2), mimetype="audio/ogg", voice=True)
    audio = send.build_media(media, UPLOAD, mimetype="audio/ogg").audioMessage
    assert audio.PTT and audio.mimetype == "audio/ogg; codecs=opus"
    assert audio.seconds == 7


def test_ogg_duration_is_only_read_from_ogg_opus() -> None:
    assert send.ogg_opus_seconds(ogg_opus(61.6)) == 62
    assert send.ogg_opus_seconds(b"ID3 mp3 data") is None
    assert send.ogg_opus_seconds(b"OggS") is None


def test_document_sticker_video_and_quote() -> None:
    quote = Quote(id="Q3", chat=GROUP, sender=BOB, from_me=False)
    doc = send.build_media(
        OutgoingMedia(
            kind="document", data=b"%PDF", mimetype="application/pdf", file_name="a.pdf", caption="c"
        ),
        UPLOAD,
        mimetype="application/pdf",
        quote=quote,
    ).documentMessage
    assert (doc.fileName, doc.caption, doc.contextInfo.stanzaID, doc.contextInfo.participant) == (
        "a.pdf", "c", "Q3", BOB,
    )  # fmt: skip
    sticker = send.build_media(
        OutgoingMedia(kind="sticker", data=b"R", mimetype="image/webp"), UPLOAD, mimetype="image/webp"
    )
    assert sticker.stickerMessage.mimetype == "image/webp"
    video = send.build_media(
        OutgoingMedia(kind="video", data=b"v", mimetype="video/mp4", caption="v"),
        UPLOAD,
        mimetype="video/mp4",
    )
    assert video.videoMessage.caption == "v"


def test_mime_detection_only_when_the_declared_type_is_generic() -> None:
    assert send.detect_mimetype(png_bytes(), "application/octet-stream") == "image/png"
    assert send.detect_mimetype(png_bytes(), "") == "image/png"
    assert send.detect_mimetype(b"whatever", "audio/mpeg") == "audio/mpeg"


def test_reaction_keys() -> None:
    own = send.build_reaction(ALICE, "T1", "❤️", target_from_me=True, target_sender=None).reactionMessage
    assert (own.key.remoteJID, own.key.fromMe, own.key.ID, own.key.participant, own.text) == (
        ALICE, True, "T1", "", "❤️",
    )  # fmt: skip
    group = send.build_reaction(GROUP, "T2", "", target_from_me=False, target_sender=BOB).reactionMessage
    assert (group.key.participant, group.key.fromMe, group.text) == (BOB, False, "")
    with pytest.raises(EngineError, match="sender"):
        send.build_reaction(GROUP, "T2", "👍", target_from_me=False, target_sender=None)


def test_edit_and_revoke() -> None:
    edit = send.build_edit_message(ALICE, "M1", "fixed").editedMessage.message.protocolMessage
    assert (edit.type, edit.key.ID, edit.key.fromMe, edit.editedMessage.conversation) == (
        wa.ProtocolMessage.MESSAGE_EDIT, "M1", True, "fixed",
    )  # fmt: skip
    revoke = send.build_revoke(GROUP, "M2").protocolMessage
    assert (revoke.type, revoke.key.ID, revoke.key.fromMe, revoke.key.remoteJID) == (
        wa.ProtocolMessage.REVOKE, "M2", True, GROUP,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "start", "retryable"),
    [
        (
            "failed to dial whatsapp web websocket: dial tcp: no such host",
            "Could not reach WhatsApp servers",
            True,
        ),
        ("context deadline exceeded", "WhatsApp refused to send the message", True),
        ("server returned error 401", "WhatsApp refused to send the message", True),
        ("invalid JID", "WhatsApp refused to send the message", False),
    ],
)
def test_engine_error_mapping(text: str, start: str, retryable: bool) -> None:
    error = send.engine_error("send the message", SendMessageError(text))
    assert error.message.startswith(start) and text in error.message
    assert error.retryable is retryable


# --- through the session (fake client at the neonize boundary) -----------------------------------


async def connected(data_dir: Path) -> tuple[Any, NeonizeSession, FakeClient, Recorder]:
    factory = FakeFactory(stored_login)
    engine = make_engine(data_dir, factory)
    sink = Recorder()
    session = await engine.open_session("inst", sink)
    await session.connect(timeout=5)
    await session.drain()
    return engine, session, factory.last, sink


async def test_send_text_announces_our_message_with_origin(data_dir: Path) -> None:
    engine, session, client, sink = await connected(data_dir)
    sent = await session.send_text("5511999999999", "olá", origin="chatwoot:42")
    ((args, _),) = client.called("send_message")
    to, message = args
    assert (to.User, to.Server) == ("5511999999999", "s.whatsapp.net")
    assert message == wa.Message(conversation="olá")
    await session.drain()
    (event,) = sink.of(MessageEvent)
    assert event.origin == "chatwoot:42"
    msg = event.message
    assert (msg.id, msg.from_me, msg.kind, msg.text, msg.timestamp) == (
        sent.id,
        True,
        "text",
        "olá",
        sent.timestamp,
    )
    assert msg.chat == Party(jid=ALICE)
    assert msg.sender == Party(jid=ME, alt=ME_LID, name="Me")
    await engine.aclose()


async def test_send_media_uploads_then_sends(data_dir: Path) -> None:
    engine, session, client, sink = await connected(data_dir)
    data = png_bytes()
    media = OutgoingMedia(kind="image", data=data, mimetype="application/octet-stream", caption="c")
    await session.send_media(GROUP, media)
    ((upload_args, _),) = client.called("upload")
    assert upload_args == (data, MediaType.MediaImage)
    ((send_args, _),) = client.called("send_message")
    image = send_args[1].imageMessage
    assert (image.mimetype, image.caption, image.fileLength) == ("image/png", "c", len(data))
    assert image.JPEGThumbnail
    await session.drain()
    (event,) = sink.of(MessageEvent)
    assert event.message.is_group and event.message.kind == "image"
    assert event.message.media is not None and event.message.media.mimetype == "image/png"
    await engine.aclose()


async def test_reaction_edit_revoke_go_to_the_chat(data_dir: Path) -> None:
    engine, session, client, sink = await connected(data_dir)
    await session.send_reaction(ALICE, "T1", "👍", target_from_me=False)
    await session.edit(ALICE, "M1", "fixed")
    await session.revoke(ALICE, "M1")
    calls = client.called("send_message")
    fields = [[f.name for f, _ in args[1].ListFields()] for args, _ in calls]
    assert fields == [["reactionMessage"], ["editedMessage"], ["protocolMessage"]]
    await session.drain()
    assert [e.message.kind for e in sink.of(MessageEvent)] == ["reaction", "edit", "revoke"]
    assert [e.message.target_id for e in sink.of(MessageEvent)] == ["T1", "M1", "M1"]
    await engine.aclose()


async def test_mark_read_and_presence(data_dir: Path) -> None:
    engine, session, client, _ = await connected(data_dir)
    await session.mark_read(ALICE, ("M1", "M2"))
    ((args, kwargs),) = client.called("mark_read")
    assert args == ("M1", "M2") and kwargs["receipt"] is ReceiptType.READ
    assert kwargs["sender"].User == "5511999999999" == kwargs["chat"].User
    await session.mark_read(GROUP, ("M3",), sender=BOB)
    assert client.called("mark_read")[1][1]["sender"].User == "5511988888888"
    with pytest.raises(EngineError, match="needs the sender"):
        await session.mark_read(GROUP, ("M4",))
    await session.send_presence(ALICE, "recording")
    ((args, _),) = client.called("send_chat_presence")
    assert args[1:] == (ChatPresence.CHAT_PRESENCE_COMPOSING, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO)
    await engine.aclose()


async def test_download_uses_the_stored_handle(data_dir: Path) -> None:
    engine, session, client, _ = await connected(data_dir)
    handle = wa.Message(
        imageMessage=wa.ImageMessage(directPath="/v/x", mediaKey=b"k" * 32)
    ).SerializeToString()
    data = await session.download_media(Media(kind="image", mimetype="image/jpeg", handle=handle))
    assert data == b"media-bytes"
    ((args, _),) = client.called("download_any")
    assert args[0].imageMessage.directPath == "/v/x"
    with pytest.raises(EngineError, match="no download handle"):
        await session.download_media(Media(kind="image", mimetype="image/jpeg"))
    await engine.aclose()


async def test_send_errors_become_engine_errors(data_dir: Path) -> None:
    engine, session, client, sink = await connected(data_dir)
    client.send_error = SendMessageError("server returned error 503")
    with pytest.raises(EngineError, match="WhatsApp refused to send the message") as info:
        await session.send_text(ALICE, "x")
    assert info.value.retryable
    with pytest.raises(EngineError, match="Invalid WhatsApp id"):
        await session.send_text("not a number", "x")
    await session.drain()
    assert not sink.of(MessageEvent)
    await engine.aclose()
