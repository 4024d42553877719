"""Building outgoing whatsmeow messages (pure functions) and mapping neonize errors.

The session uploads media and calls ``send_message``; everything that decides *what* is sent lives
here so it can be tested without a WhatsApp connection.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from typing import Any

from ryze.engines.base import EngineError, OutgoingMedia, Quote
from ryze.engines.neonize._neonize import MediaType, MessageKey, build_edit, wa
from ryze.engines.neonize.translate.jids import GROUP_SERVER, jid_str, parse_jid

log = logging.getLogger(__name__)

GENERIC_MIME = frozenset({"", "application/octet-stream", "binary/octet-stream"})
VOICE_MIME = "audio/ogg; codecs=opus"

UPLOAD_TYPE = {
    "image": MediaType.MediaImage,
    "sticker": MediaType.MediaImage,
    "video": MediaType.MediaVideo,
    "audio": MediaType.MediaAudio,
    "document": MediaType.MediaDocument,
}


def quote_context(quote: Quote, *, me: str | None) -> Any:
    """ContextInfo that makes WhatsApp render the message as a reply to ``quote``."""
    participant = (me or quote.sender) if quote.from_me else quote.sender
    context = wa.ContextInfo(stanzaID=quote.id, quotedMessage=wa.Message(conversation=quote.text))
    if participant:  # the quoted message's author; phones need it to find the message
        context.participant = jid_str(parse_jid(participant))
    return context


def build_text(
    text: str, *, quote: Quote | None = None, mentions: tuple[str, ...] = (), me: str | None = None
) -> Any:
    if quote is None and not mentions:
        return wa.Message(conversation=text)
    context = quote_context(quote, me=me) if quote is not None else wa.ContextInfo()
    context.mentionedJID.extend(jid_str(parse_jid(m)) for m in mentions)
    return wa.Message(extendedTextMessage=wa.ExtendedTextMessage(text=text, contextInfo=context))


def detect_mimetype(data: bytes, declared: str) -> str:
    """The declared type unless it is missing/generic; then libmagic's guess."""
    if declared.strip().lower() not in GENERIC_MIME:
        return declared.strip()
    try:
        import magic  # libmagic1; neonize already imports it, so it is present

        return str(magic.from_buffer(data, mime=True)) or "application/octet-stream"
    except Exception:  # libmagic missing or unreadable data: WhatsApp still accepts octet-stream
        log.warning("mime detection failed; sending as application/octet-stream", exc_info=True)
        return "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ImageInfo:
    thumbnail: bytes  # a small JPEG WhatsApp shows while the image downloads
    width: int
    height: int


def image_info(data: bytes) -> ImageInfo | None:
    """Size and preview of an image (Pillow); ``None`` when Pillow cannot read it."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            img.thumbnail((72, 72))
            out = io.BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=60)
            return ImageInfo(thumbnail=out.getvalue(), width=width, height=height)
    except Exception:
        return None


def ogg_opus_seconds(data: bytes) -> int | None:
    """Duration of an Ogg/Opus file without ffmpeg: the last page's granule position counts
    48 kHz samples, minus the pre-skip from the OpusHead packet (RFC 7845). Phones show this
    number on voice notes."""
    head = data.find(b"OpusHead", 0, 512)
    last_page = data.rfind(b"OggS")
    if not data.startswith(b"OggS") or head < 0 or last_page < 0 or len(data) < last_page + 14:
        return None
    granule = int.from_bytes(data[last_page + 6 : last_page + 14], "little")
    pre_skip = int.from_bytes(data[head + 10 : head + 12], "little")
    if granule <= pre_skip or granule == 2**64 - 1:  # -1: no packet ends on this page
        return None
    return max(1, round((granule - pre_skip) / 48000))


def build_media(
    media: OutgoingMedia,
    upload: Any,
    *,
    mimetype: str,
    quote: Quote | None = None,
    me: str | None = None,
    image: ImageInfo | None = None,
) -> Any:
    """The media message for an ``UploadResponse`` (URL, direct path, keys, hashes)."""
    common: dict[str, Any] = {
        "URL": upload.url,
        "directPath": upload.DirectPath,
        "mediaKey": upload.MediaKey,
        "fileEncSHA256": upload.FileEncSHA256,
        "fileSHA256": upload.FileSHA256,
        "fileLength": upload.FileLength,
        "mediaKeyTimestamp": int(time.time()),
        "mimetype": mimetype,
    }
    caption = media.caption or None
    if media.kind == "image":
        sub: Any = wa.ImageMessage(caption=caption, **common)
        if image is not None:
            sub.JPEGThumbnail = image.thumbnail
            sub.width, sub.height = image.width, image.height
        field = "imageMessage"
    elif media.kind == "video":
        sub = wa.VideoMessage(caption=caption, **common)
        field = "videoMessage"
    elif media.kind == "audio":
        if media.voice and mimetype.startswith("audio/ogg"):
            common["mimetype"] = VOICE_MIME  # phones only play voice notes labelled exactly so
        sub = wa.AudioMessage(PTT=media.voice, seconds=ogg_opus_seconds(media.data), **common)
        field = "audioMessage"
    elif media.kind == "sticker":
        sub = wa.StickerMessage(**common)
        field = "stickerMessage"
    elif media.kind == "document":
        name = media.file_name or "file"
        sub = wa.DocumentMessage(fileName=name, title=name, caption=caption, **common)
        field = "documentMessage"
    else:  # pragma: no cover - guarded by the Literal type
        raise EngineError(f"Unsupported media kind: {media.kind}")
    if quote is not None:
        sub.contextInfo.CopyFrom(quote_context(quote, me=me))
    return wa.Message(**{field: sub})


def build_reaction(
    chat: str, target_id: str, emoji: str, *, target_from_me: bool, target_sender: str | None
) -> Any:
    """Mirrors whatsmeow's BuildReaction: the participant is only named in groups, for
    messages that are not ours."""
    chat_jid = parse_jid(chat)
    key = MessageKey(remoteJID=jid_str(chat_jid), fromMe=target_from_me, ID=target_id)
    if chat_jid.Server == GROUP_SERVER and not target_from_me:
        if not target_sender:
            raise EngineError("Reacting to someone else's group message needs the message's sender")
        key.participant = jid_str(parse_jid(target_sender))
    return wa.Message(
        reactionMessage=wa.ReactionMessage(key=key, text=emoji, senderTimestampMS=int(time.time() * 1000))
    )


def build_edit_message(chat: str, message_id: str, text: str) -> Any:
    return build_edit(parse_jid(chat), message_id, wa.Message(conversation=text))


def build_revoke(chat: str, message_id: str) -> Any:
    """Revoke ("delete for everyone") one of our own messages."""
    key = MessageKey(remoteJID=jid_str(parse_jid(chat)), fromMe=True, ID=message_id)
    return wa.Message(protocolMessage=wa.ProtocolMessage(type=wa.ProtocolMessage.REVOKE, key=key))


# --- errors -----------------------------------------------------------------------------------

_UNREACHABLE = ("dial tcp", "no such host", "failed to dial", "websocket dial", "connection refused")
_RETRYABLE = (
    "timeout",
    "timed out",
    "deadline exceeded",
    "not connected",
    "connection",
    "eof",
    "broken pipe",
    "rate-overlimit",
    "429",
    "500",
    "503",
    "server returned error",
)


def is_unreachable(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _UNREACHABLE)


def engine_error(action: str, exc: BaseException) -> EngineError:
    """A clear ``EngineError`` for a failed neonize call (``action`` says what we were doing)."""
    if isinstance(exc, EngineError):
        return exc
    detail = str(exc) or type(exc).__name__
    if is_unreachable(detail):
        return EngineError(
            f"Could not reach WhatsApp servers while trying to {action}: {detail}", retryable=True
        )
    lowered = detail.lower()
    retryable = any(marker in lowered for marker in _RETRYABLE)
    return EngineError(f"WhatsApp refused to {action}: {detail}", retryable=retryable)
