"""Image, video, voice note, audio, document, sticker, GIF: the real file as an attachment.

The caption (WhatsApp markdown translated) is the content. A view-once message is relayed once,
like any other, with a line that says so (WhatsApp shows it once; Chatwoot keeps it). Voice notes
(``ptt``) keep their audio MIME type so Chatwoot files them as audio and plays them inline.
"""

from __future__ import annotations

import mimetypes

from ryze.bridge.relay.inbound.effects import CreateMessage, Effect, MediaRef
from ryze.bridge.relay.markdown import whatsapp_to_chatwoot
from ryze.protocol import MediaInfo, MessageType, WAMessage

_LABELS = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "ptt": "voice message",
    "ptv": "video note",
    "document": "document",
    "sticker": "sticker",
}
_FALLBACK_MIME = {
    MessageType.IMAGE: "image/jpeg",
    MessageType.VIDEO: "video/mp4",
    MessageType.AUDIO: "audio/ogg",
}


def label_of(media: MediaInfo) -> str:
    if media.type == "video" and media.gif:
        return "GIF"
    return _LABELS.get(media.type, "file")


def file_name_of(message: WAMessage, media: MediaInfo, mimetype: str) -> str:
    """The document's own name; otherwise one made from the message id and the MIME type."""
    if media.fileName:
        return media.fileName
    ext = mimetypes.guess_extension(mimetype.split(";", 1)[0].strip()) or ""
    if mimetype.startswith("audio/ogg"):
        ext = ".ogg"  # mimetypes answers .oga, which Chatwoot's players do not recognise
    prefix = "voice" if media.type == "ptt" else media.type
    return f"{prefix}-{message.id}{ext}"


class MediaConverter:
    def __init__(self, kind: MessageType) -> None:
        self.kind = kind

    def convert(self, message: WAMessage) -> Effect:
        media = message.media
        caption = whatsapp_to_chatwoot(message.text) if message.text else ""
        if media is None:  # an engine that could not describe the file: say what it was
            return CreateMessage(
                content=f"[{self.kind.value} without a file]" + (f"\n{caption}" if caption else ""),
                reply_to=message.replyTo,
                quote=message.quotedText,
            )
        mimetype = media.mimetype or _FALLBACK_MIME.get(self.kind, "application/octet-stream")
        lines = []
        if message.isViewOnce:
            lines.append("👁️ View once")
        if caption:
            lines.append(caption)
        ref = MediaRef(
            url=media.url,
            mimetype=mimetype,
            label=label_of(media),
            file_name=file_name_of(message, media, mimetype),
            size=media.size,
            voice=media.type == "ptt",
        )
        return CreateMessage(
            content="\n".join(lines), media=ref, reply_to=message.replyTo, quote=message.quotedText
        )
