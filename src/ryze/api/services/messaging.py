"""Sending through an instance: the public send routes and the Chatwoot bridge commands use this.

Every send ends in the message store: sessions report their own sends as ``MessageEvent`` (with
the origin tag) and the inbound pipeline stores and publishes them; if an engine does not, the
send is stored here from what we asked for.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from ryze.api.errors import ApiError, SentNotStored
from ryze.api.events import make_origin
from ryze.api.metrics import ApiMetrics, counts_send_failures
from ryze.api.records import InstanceRecord, StoredMessage
from ryze.api.services import media as media_io
from ryze.api.services.ingest import InboundPipeline
from ryze.api.services.instances import InstanceService
from ryze.api.services.sessions import SessionManager
from ryze.api.services.store import MessageStore
from ryze.api.services.voice import OGG_OPUS, VoiceTranscoder, is_ogg_opus
from ryze.common.outbound import Fetcher
from ryze.engines.base import (
    ConnectionState,
    Media,
    MessageKind,
    OutgoingMedia,
    Party,
    ProfilePicture,
    Quote,
    RequestsHistory,
    SentMessage,
    Session,
    WhatsAppMessage,
)

log = logging.getLogger(__name__)

NOT_CONNECTED = "Instance is not connected to WhatsApp"
_JID_SERVERS = ("s.whatsapp.net", "lid", "g.us", "newsletter", "broadcast")
# ASCII digits only: ``\d`` also matches Arabic-Indic and other Unicode digits, which WhatsApp
# does not take as a phone number.
_DIGITS = re.compile(r"^[0-9]{6,20}\Z", re.ASCII)
# A JID's user part: digits (a phone number, LID, newsletter or group id; old group ids are
# ``creator-timestamp``), or ``status`` for ``status@broadcast``.
_JID_USER = re.compile(r"^[0-9]{1,32}(-[0-9]{1,32})?\Z", re.ASCII)
# WhatsApp's own limit on a message's text: its apps refuse to send (and cut on display) anything
# longer than 65,536 characters. A caption is the same message text field on a media message.
MAX_TEXT_CHARS = 65_536
MAX_FILE_NAME_CHARS = 255  # what the receiving phones' file systems can hold
MediaType = Literal["image", "video", "audio", "document"]


def to_jid(number: str) -> str:
    """A recipient as documented (plain number or JID) -> a non-AD JID."""
    value = number.strip()
    if "@" in value:
        user, _, server = value.partition("@")
        user = user.split(":", 1)[0]
        if server in _JID_SERVERS and (_JID_USER.match(user) or (server, user) == ("broadcast", "status")):
            return f"{user}@{server}"
    else:
        digits = re.sub(r"[\s+\-()]", "", value)
        if _DIGITS.match(digits):
            return f"{digits}@s.whatsapp.net"
    raise ApiError(400, f"Invalid number: '{number}' is not a phone number or WhatsApp JID")


def check_text(value: str | None, field: str) -> None:
    """400 for a text WhatsApp would not carry (the route's field name in the message)."""
    if value is not None and len(value) > MAX_TEXT_CHARS:
        raise ApiError(
            400, f"Invalid request body: field '{field}' is longer than {MAX_TEXT_CHARS} characters"
        )


def check_file_name(value: str | None) -> None:
    if value is not None and len(value) > MAX_FILE_NAME_CHARS:
        raise ApiError(
            400, f"Invalid request body: field 'fileName' is longer than {MAX_FILE_NAME_CHARS} characters"
        )


class MessagingService:
    def __init__(
        self,
        instances: InstanceService,
        sessions: SessionManager,
        store: MessageStore,
        pipeline: InboundPipeline,
        *,
        fetcher: Fetcher,
        metrics: ApiMetrics | None = None,
        voice: VoiceTranscoder | None = None,
    ) -> None:
        self.metrics = metrics  # read by @counts_send_failures
        self.voice = voice or VoiceTranscoder()
        self.fetcher = fetcher  # mediaUrl and Chatwoot attachment downloads, under FETCH_ALLOW
        self._instances = instances
        self._sessions = sessions
        self.store = store
        self._pipeline = pipeline

    async def _instance(self, name: str) -> InstanceRecord:
        instance = await self._instances.get(name)
        if instance is None:
            raise ApiError(404, "Instance not found")
        return instance

    async def _connected(self, name: str) -> tuple[InstanceRecord, Session]:
        instance = await self._instance(name)
        session = self._sessions.peek(name)
        if session is None or session.state != ConnectionState.CONNECTED:
            raise ApiError(503, NOT_CONNECTED)
        return instance, session

    async def _quote(self, instance: InstanceRecord, reply_to: str | None) -> Quote | None:
        if not reply_to:
            return None
        stored = await self.store.get(instance.id, reply_to)
        if stored is None:
            raise ApiError(404, f"replyTo message not found: {reply_to}")
        return Quote(
            id=stored.id, chat=stored.chat, sender=stored.sender, from_me=stored.from_me, text=stored.text
        )

    async def _stored_send(
        self,
        instance: InstanceRecord,
        session: Session,
        sent: SentMessage,
        origin: str,
        *,
        to: str,
        kind: MessageKind,
        text: str = "",
        media: Media | None = None,
        reply_to: str | None = None,
        target_id: str | None = None,
        emoji: str | None = None,
    ) -> StoredMessage:
        # An engine that reports its own sends (the simulated one, before the send returns) had
        # the pipeline store it already: answer from that record, no read back.
        stored = self.store.take_kept(instance.id, sent.id)
        if stored is not None:
            return stored
        try:
            stored = await self.store.get(instance.id, sent.id)
            if stored is None:
                me = session.me or Party(jid=instance.number_jid or "")
                msg = WhatsAppMessage(
                    id=sent.id, chat=Party(jid=to), sender=me, from_me=True, timestamp=sent.timestamp,
                    kind=kind, is_group=to.endswith("@g.us"), text=text, media=media, reply_to=reply_to,
                    target_id=target_id, emoji=emoji,
                )  # fmt: skip
                await self._pipeline.store_message(instance, msg, origin)
                stored = self.store.take_kept(instance.id, sent.id) or await self.store.get(
                    instance.id, sent.id
                )
        except Exception as exc:
            log.exception("a sent message could not be stored", extra={"message_id": sent.id})
            raise SentNotStored(sent.id) from exc
        if stored is None:  # pragma: no cover - the insert above either stored it or raised
            raise SentNotStored(sent.id)
        return stored

    @counts_send_failures
    async def send_text(
        self,
        instance: str,
        number: str,
        text: str,
        *,
        reply_to: str | None = None,
        source: str = "api",
        command_id: str | None = None,
        mentions: tuple[str, ...] = (),
    ) -> StoredMessage:
        to = to_jid(number)
        if not text:
            raise ApiError(400, "Invalid request body: field 'message' must not be empty")
        check_text(text, "message")
        record, session = await self._connected(instance)
        quote = await self._quote(record, reply_to)
        origin = make_origin(source, command_id)
        sent = await session.send_text(to, text, quote=quote, mentions=mentions, origin=origin)
        return await self._stored_send(
            record, session, sent, origin, to=to, kind="text", text=text, reply_to=reply_to
        )

    @counts_send_failures
    async def send_media(
        self,
        instance: str,
        number: str,
        media_type: MediaType,
        *,
        url: str | None = None,
        base64: str | None = None,
        mimetype: str | None = None,
        file_name: str | None = None,
        caption: str | None = None,
        is_voice: bool = False,
        reply_to: str | None = None,
        source: str = "api",
        command_id: str | None = None,
        url_retry_seconds: float = 0.0,
    ) -> StoredMessage:
        """``url_retry_seconds``: how long a ``url`` answering 404/5xx is tried again (a caller whose
        URLs may not be served yet, like Chatwoot's attachment storage, asks for it)."""
        to = to_jid(number)
        check_text(caption, "message")
        check_file_name(file_name)
        if url and base64:
            raise ApiError(400, "Invalid request body: send mediaUrl or mediaBase64, not both")
        if not url and not base64:
            raise ApiError(400, "Invalid request body: field 'mediaUrl' or 'mediaBase64' is required")
        record, session = await self._connected(instance)
        quote = await self._quote(record, reply_to)
        if base64:
            data, declared = media_io.decode_base64(base64)
            url_name = None
        else:
            data, declared, url_name = await media_io.download(
                self.fetcher, url or "", retry_for=url_retry_seconds
            )
        mime = media_io.pick_mimetype(
            media_type, data, given=mimetype, declared=declared, file_name=file_name
        )
        if media_type == "document" and not file_name:
            file_name = url_name or "document"
        voice = is_voice and media_type == "audio"
        if voice and not is_ogg_opus(data):
            # WhatsApp plays a voice note only as OGG/Opus (services/voice.py)
            data, mime = await self.voice.to_ogg_opus(data), OGG_OPUS
        outgoing = OutgoingMedia(
            kind=media_type, data=data, mimetype=mime, file_name=file_name, caption=caption,
            voice=voice,
        )  # fmt: skip
        origin = make_origin(source, command_id)
        sent = await session.send_media(to, outgoing, quote=quote, origin=origin)
        kind_of_media = "ptt" if outgoing.voice else media_type
        stored_media = Media(kind=kind_of_media, mimetype=mime, file_name=file_name, size=len(data))
        return await self._stored_send(
            record, session, sent, origin, to=to, kind=media_type, text=caption or "", media=stored_media,
            reply_to=reply_to,
        )  # fmt: skip

    @counts_send_failures
    async def react(
        self,
        instance: str,
        chat: str,
        message_id: str,
        emoji: str,
        *,
        from_me: bool = False,
        source: str = "api",
        command_id: str | None = None,
    ) -> StoredMessage:
        record, session = await self._connected(instance)
        chat_jid = to_jid(chat)
        target = await self.store.get(record.id, message_id)
        target_from_me = target.from_me if target is not None else from_me
        target_sender = target.sender if target is not None else None
        origin = make_origin(source, command_id)
        sent = await session.send_reaction(
            chat_jid,
            message_id,
            emoji,
            target_from_me=target_from_me,
            target_sender=target_sender,
            origin=origin,
        )
        return await self._stored_send(
            record, session, sent, origin, to=chat_jid, kind="reaction", target_id=message_id, emoji=emoji
        )

    @counts_send_failures
    async def edit(
        self,
        instance: str,
        chat: str,
        message_id: str,
        text: str,
        *,
        source: str = "api",
        command_id: str | None = None,
    ) -> StoredMessage:
        check_text(text, "text")
        record, session = await self._connected(instance)
        chat_jid = to_jid(chat)
        origin = make_origin(source, command_id)
        sent = await session.edit(chat_jid, message_id, text, origin=origin)
        return await self._stored_send(
            record, session, sent, origin, to=chat_jid, kind="edit", text=text, target_id=message_id
        )

    @counts_send_failures
    async def revoke(
        self, instance: str, chat: str, message_id: str, *, source: str = "api", command_id: str | None = None
    ) -> StoredMessage:
        record, session = await self._connected(instance)
        chat_jid = to_jid(chat)
        origin = make_origin(source, command_id)
        sent = await session.revoke(chat_jid, message_id, origin=origin)
        return await self._stored_send(
            record, session, sent, origin, to=chat_jid, kind="revoke", target_id=message_id
        )

    async def mark_read(
        self, instance: str, chat: str, message_ids: list[str] | tuple[str, ...], sender: str | None = None
    ) -> None:
        _, session = await self._connected(instance)
        await session.mark_read(to_jid(chat), tuple(message_ids), sender=to_jid(sender) if sender else None)

    async def presence(
        self, instance: str, chat: str, state: Literal["composing", "recording", "paused"]
    ) -> None:
        _, session = await self._connected(instance)
        await session.send_presence(to_jid(chat), state)

    async def request_history(self, instance: str, *, days: int, count: int) -> None:
        """Ask the phone for recent history (an on-demand sync); the answer arrives later through
        the engine's sink as a history sync. 501 when the engine cannot ask."""
        _, session = await self._connected(instance)
        if not isinstance(session, RequestsHistory):
            # neonize 0.5 exposes no SendPeerMessage, which whatsmeow's on-demand request needs
            raise ApiError(
                501,
                f"The {self._sessions.engine.name} engine cannot ask the phone for history; "
                "history arrives when a phone pairs",
            )
        await session.request_history(days=days, count=count)

    async def get_message(self, instance: str, message_id: str) -> StoredMessage:
        record = await self._instance(instance)
        stored = await self.store.get(record.id, message_id)
        if stored is None:
            raise ApiError(404, "Message not found")
        return stored

    async def profile_picture(self, instance: str, jid: str, known_id: str | None) -> ProfilePicture | None:
        """The current profile picture of ``jid`` as the instance's account sees it (the bridge's
        contact avatars); ``data`` is empty when ``known_id`` is still current."""
        target = to_jid(jid)  # 400 for anything that is not a number or a WhatsApp JID
        _, session = await self._connected(instance)
        return await session.profile_picture(target, known_id=known_id)

    async def get_media(self, instance: str, message_id: str) -> tuple[bytes, str, str | None]:
        """The media bytes of a stored message -> (bytes, mimetype, file name)."""
        record = await self._instance(instance)
        row = await self.store.get_row(record.id, message_id)
        if row is None:
            raise ApiError(404, "Message not found")
        if row.media_kind is None or row.media_mimetype is None:
            raise ApiError(404, "Message has no media")
        session = await self._sessions.get(record)
        media = Media(
            kind=row.media_kind,  # type: ignore[arg-type]  # stored from a MediaKind
            mimetype=row.media_mimetype,
            file_name=row.media_file_name,
            handle=row.media_handle or b"",
        )
        data = await session.download_media(media)
        return data, row.media_mimetype, row.media_file_name
