"""The simulated engine: sessions that behave like whatsmeow's, backed by an in-process network.

Connection: ``connect()`` without a stored login reports ``qr_ready`` (with a QR string shaped like
whatsmeow's), then ``connected`` once the phone scans: automatically after
``auto_connect_seconds``, or when the control API calls ``scan``. A stored login (the engine keeps
it until logout/delete) reconnects straight to ``connected``. Messages the network delivers while
the session is offline wait and arrive, in order, once it connects (WhatsApp's offline queue).

Sends need ``connected`` (else ``NotConnectedError``), are reported back through the sink as
``MessageEvent(origin=...)`` before the call returns, and are recorded in the phone-side outbox
the control API exposes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from ryze.engines.base import (
    PASSKEY_REQUIRED,
    ConnectionEvent,
    ConnectionState,
    ConnectResult,
    DomainEvent,
    EngineError,
    EventSink,
    GroupEvent,
    GroupSettings,
    HistoryChat,
    HistorySyncEvent,
    HistorySyncKind,
    Media,
    MessageEvent,
    MessageKind,
    NotConnectedError,
    OutgoingMedia,
    Party,
    ProfilePicture,
    Quote,
    ReceiptEvent,
    ReceiptKind,
    SentMessage,
    WhatsAppMessage,
)
from ryze.engines.simulated.pictures import PictureBook
from ryze.engines.simulated.traffic import (
    STATUS_BROADCAST,
    GroupChange,
    GroupMember,
    Inbound,
    build_group_event,
    build_message,
    new_message_id,
    normalize_jid,
    wa_now,
)

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 100_000
PHONE_HISTORY_LIMIT = 1_000  # messages a simulated phone keeps per instance (benchmarks send more)
_PAIR_ALPHABET = "ABCDEFGHJKLMNPQRSTVWXYZ123456789"  # no look-alikes, as WhatsApp's codes


def _qr_string() -> str:
    parts = [secrets.token_urlsafe(48), base64.b64encode(secrets.token_bytes(32)).decode()]
    parts += [
        base64.b64encode(secrets.token_bytes(32)).decode(),
        base64.b64encode(secrets.token_bytes(16)).decode(),
    ]
    return "2@" + ",".join(parts)


def _own_number(instance: str) -> str:
    """A stable fake phone number for an instance paired without one."""
    digest = int(hashlib.sha256(instance.encode()).hexdigest()[:12], 16)
    return f"5500{digest % 10**9:09d}"


class SimulatedEngine:
    name = "simulated"

    def __init__(
        self,
        *,
        auto_connect_seconds: float | None = 2.0,
        wire: Literal["domain", "neonize"] = "domain",
        default_history: Sequence[Inbound] = (),
        outbox_log: Path | None = None,
    ) -> None:
        self.auto_connect_seconds = auto_connect_seconds
        # What every simulated phone holds before anything is added (the demo's chats): sent as
        # the initial history sync when an instance pairs, and on request.
        self.default_history = tuple(default_history)
        # The phones' chat history: instance -> messages by id, as the network built them.
        self.phone_history: dict[str, dict[str, WhatsAppMessage]] = {}
        # The phone network's own record of what reached it, kept outside RyzeAPI's memory (the
        # in-memory outbox dies with the process): the fault-matrix harness reads it across a
        # RyzeAPI SIGKILL. One JSON line per item, written (not buffered) before the send returns.
        self.outbox_log = outbox_log
        # "neonize": every event goes through neonize's protobufs and the neonize engine's
        # translators on its way to the sink (wire.py), so the relay runs on neonize's events.
        self.wire = wire
        self.sessions: dict[str, SimulatedSession] = {}
        self.logins: dict[str, Party] = {}  # the "device store": instance -> our account
        self._blobs: dict[bytes, bytes] = {}
        # The network's groups: JID -> subject. Group messages carry it as chat.name, as the
        # neonize engine's cached group-info lookup does.
        self.group_subjects: dict[str, str] = {}
        self.pictures = PictureBook()  # everybody's profile picture (generated unless set)

    async def open_session(self, instance: str, sink: EventSink) -> SimulatedSession:
        session = SimulatedSession(self, instance, sink)
        self.sessions[instance] = session
        return session

    def session(self, instance: str) -> SimulatedSession | None:
        return self.sessions.get(instance)

    async def delete_session(self, instance: str) -> None:
        self.logins.pop(instance, None)
        session = self.sessions.pop(instance, None)
        if session is not None:
            await session.close()

    async def aclose(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()
        self.sessions.clear()

    # ---------------------------------------------------------------- media blobs ("the CDN")

    def put_blob(self, data: bytes) -> bytes:
        handle = hashlib.sha256(data).hexdigest().encode()
        self._blobs[handle] = data
        return handle

    def alias_blob(self, handle: bytes, data: bytes) -> None:
        self._blobs[handle] = data

    def get_blob(self, handle: bytes) -> bytes | None:
        return self._blobs.get(handle)

    def media_of(self, item: Inbound) -> Media | None:
        """The domain media of a network item, its bytes put in the blob store."""
        if item.media is None:
            return None
        return Media(
            kind=item.media.kind,
            mimetype=item.media.mimetype,
            file_name=item.media.file_name,
            size=len(item.media.data),
            seconds=item.media.seconds,
            gif=item.media.gif,
            handle=self.put_blob(item.media.data),
        )


class SimulatedSession:
    def __init__(self, engine: SimulatedEngine, instance: str, sink: EventSink) -> None:
        self._engine = engine
        self.instance = instance
        self._sink = sink
        self._state = ConnectionState.DISCONNECTED
        self._me: Party | None = None
        self._qr: str | None = None
        self._pair_number: str | None = None
        self._pairing_code: str | None = None
        self._scan_task: asyncio.Task[None] | None = None
        self._emit_lock = asyncio.Lock()  # the sink sees one event at a time, in order
        self._connect_lock = asyncio.Lock()
        self._offline: list[DomainEvent] = []
        self.outbox: deque[dict[str, Any]] = deque(maxlen=OUTBOX_LIMIT)
        self._outbox_seq = 0

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def me(self) -> Party | None:
        return self._me

    async def _emit(self, event: DomainEvent) -> None:
        async with self._emit_lock:
            await self._sink(event)

    async def _set_state(
        self,
        state: ConnectionState,
        *,
        qr: str | None = None,
        reason: str | None = None,
        problem: str | None = None,
    ) -> None:
        self._state = state
        me = self._me if state == ConnectionState.CONNECTED else None
        await self._emit(ConnectionEvent(state=state, qr=qr, reason=reason, me=me, problem=problem))

    # ---------------------------------------------------------------- connection

    async def connect(
        self,
        *,
        pair_number: str | None = None,
        timeout: float = 60.0,  # the seam's signature; nothing here waits
    ) -> ConnectResult:
        del timeout
        async with self._connect_lock:  # concurrent connects share one pairing, as whatsmeow's
            return await self._connect_locked(pair_number)

    async def _connect_locked(self, pair_number: str | None) -> ConnectResult:
        if self._state == ConnectionState.CONNECTED:
            return ConnectResult(state=self._state)
        login = self._engine.logins.get(self.instance)
        if self._state != ConnectionState.QR_READY:
            await self._set_state(ConnectionState.CONNECTING)
        if login is not None:
            self._me = login
            await self._go_online()
            return ConnectResult(state=self._state)
        if self._state != ConnectionState.QR_READY:
            self._qr = _qr_string()
            self._pairing_code = None
            await self._set_state(ConnectionState.QR_READY, qr=self._qr)
            self._schedule_scan()
        if pair_number:
            self._pair_number = pair_number
            self._pairing_code = "".join(secrets.choice(_PAIR_ALPHABET) for _ in range(8))
            return ConnectResult(state=self._state, pairing_code=self._pairing_code)
        return ConnectResult(state=self._state, qr=self._qr)

    def _schedule_scan(self) -> None:
        delay = self._engine.auto_connect_seconds
        if delay is None or delay < 0:
            return
        if self._scan_task is None or self._scan_task.done():
            self._scan_task = asyncio.create_task(self._auto_scan(delay))

    async def _auto_scan(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._state == ConnectionState.QR_READY:
            await self.scan()

    async def scan(
        self, number: str | None = None, push_name: str | None = None, lid: str | None = None
    ) -> Party:
        """The phone scans the QR (or enters the pairing code): the session becomes connected."""
        if self._state != ConnectionState.QR_READY:
            raise EngineError("there is no QR code to scan: call connect first")
        digits = "".join(
            ch for ch in (number or self._pair_number or _own_number(self.instance)) if ch.isdigit()
        )
        lid = (
            normalize_jid(lid) if lid else f"{int(hashlib.sha256(digits.encode()).hexdigest()[:14], 16)}@lid"
        )
        self._me = Party(jid=f"{digits}@s.whatsapp.net", alt=lid, name=push_name or f"Ryze {self.instance}")
        self._engine.logins[self.instance] = self._me
        self._qr = None
        self._pairing_code = None
        await self._go_online()
        # WhatsApp's phone sends the recent chats to a newly linked device (INITIAL_BOOTSTRAP).
        phone = self._phone_history()
        if phone:
            await self._deliver_event(self._history_event("initial_bootstrap", phone))
        return self._me

    async def _go_online(self) -> None:
        await self._set_state(ConnectionState.CONNECTED)
        pending, self._offline = self._offline, []
        for i, event in enumerate(pending):
            try:
                await self._emit(event)
            except Exception:
                # Failure contract (engines/base.py): not stored means not delivered. Keep it and
                # the rest queued, in order, for the next time the session comes online.
                self._offline[:0] = pending[i:]
                raise

    async def rotate_qr(self) -> str:
        """WhatsApp hands out the next QR code (whatsmeow: the first lives 60 s, the rest 20 s each):
        the previous one can no longer be scanned."""
        if self._state != ConnectionState.QR_READY:
            raise EngineError("there is no QR code to rotate: call connect first")
        self._qr = _qr_string()
        await self._set_state(ConnectionState.QR_READY, qr=self._qr)
        return self._qr

    async def ask_passkey(self) -> None:
        """The phone scanned, and WhatsApp asks this companion for a passkey before linking
        (whatsmeow's ``events.PairPasskeyRequest``, pair-passkey.go). Neither engine can answer a
        WebAuthn challenge, so pairing stays open: a pairing code (``connect`` with a number,
        then ``scan``) still links the device."""
        if self._state != ConnectionState.QR_READY:
            raise EngineError("there is no pairing under way: call connect first")
        self._qr = None
        await self._set_state(
            ConnectionState.QR_READY,
            reason="WhatsApp asked for a passkey to link this device, which this engine cannot provide",
            problem=PASSKEY_REQUIRED,
        )

    async def disconnect(self) -> None:
        self._cancel_scan()
        await self._set_state(ConnectionState.DISCONNECTED, reason="Disconnected by request")

    async def logout(self) -> None:
        await self._logged_out("Logged out by request")

    # The reasons below are the ones the neonize engine reports for the same happenings.

    async def drop_connection(self) -> None:
        """The network drops the connection; the login is kept (connect again resumes it)."""
        self._cancel_scan()
        await self._set_state(
            ConnectionState.DISCONNECTED, reason="Connection to WhatsApp lost; reconnecting"
        )

    async def unlink_from_phone(self) -> None:
        """The user removes the linked device on the phone."""
        await self._logged_out("Logged out from the phone (logged_out)")

    async def temporary_ban(self, seconds: int = 3600) -> None:
        """WhatsApp bans the account for a while (for messaging too many people)."""
        self._cancel_scan()
        reason = f"Temporarily banned: sent to too many people; expires in {seconds} s"
        await self._set_state(ConnectionState.TEMP_BANNED, reason=reason)

    async def _logged_out(self, reason: str) -> None:
        self._cancel_scan()
        self._engine.logins.pop(self.instance, None)
        self._qr = None
        await self._set_state(ConnectionState.LOGGED_OUT, reason=reason)
        self._me = None

    def _cancel_scan(self) -> None:
        if self._scan_task is not None and not self._scan_task.done():
            self._scan_task.cancel()
        self._scan_task = None

    async def close(self) -> None:
        self._cancel_scan()

    async def drain(self) -> None:
        """Events reach the sink before the call that produced them returns: nothing to wait for."""
        return None

    # ---------------------------------------------------------------- sending

    def _require_connected(self) -> Party:
        if self._state != ConnectionState.CONNECTED or self._me is None:
            raise NotConnectedError()
        return self._me

    def _record(self, action: str, **fields: Any) -> None:
        self._outbox_seq += 1
        item = {"seq": self._outbox_seq, "action": action, **fields}
        self.outbox.append(item)
        log_path = self._engine.outbox_log
        if log_path is not None:
            line = (
                orjson.dumps({"instance": self.instance, "logged_at": time.time(), **item}, default=str)
                + b"\n"
            )
            # Unbuffered append: once write() returned the line survives a SIGKILL of this process.
            with log_path.open("ab", buffering=0) as journal:
                journal.write(line)

    async def _send(
        self,
        to: str,
        kind: MessageKind,
        origin: str | None,
        *,
        text: str = "",
        media: Media | None = None,
        quote: Quote | None = None,
        target_id: str | None = None,
        emoji: str | None = None,
    ) -> SentMessage:
        me = self._require_connected()
        try:
            chat = normalize_jid(to)
        except ValueError as exc:
            raise EngineError(str(exc)) from exc
        subject = self._engine.group_subjects.get(chat)
        msg = WhatsAppMessage(
            id=new_message_id(), chat=Party(jid=chat, name=subject), sender=me, from_me=True,
            timestamp=wa_now(), kind=kind,
            is_group=chat.endswith("@g.us"), text=text, media=media, reply_to=quote.id if quote else None,
            quoted_text=(quote.text or None) if quote else None, target_id=target_id, emoji=emoji,
        )  # fmt: skip
        self._record("message", **_message_view(msg), origin=origin)
        wired = self._wired(MessageEvent(message=msg, origin=origin))
        if wired is not None:
            await self._emit(wired)
        return SentMessage(id=msg.id, timestamp=msg.timestamp)

    async def send_text(
        self, to: str, text: str, *, quote: Quote | None = None, mentions: tuple[str, ...] = (),
        origin: str | None = None,
    ) -> SentMessage:  # fmt: skip
        del mentions  # carried in WhatsApp's context info; nothing to simulate
        return await self._send(to, "text", origin, text=text, quote=quote)

    async def send_media(
        self, to: str, media: OutgoingMedia, *, quote: Quote | None = None, origin: str | None = None
    ) -> SentMessage:
        handle = self._engine.put_blob(media.data)
        stored = Media(
            kind="ptt" if media.voice else media.kind,
            mimetype=media.mimetype,
            file_name=media.file_name,
            size=len(media.data),
            handle=handle,
        )
        return await self._send(to, media.kind, origin, text=media.caption or "", media=stored, quote=quote)

    async def send_reaction(
        self, chat: str, target_id: str, emoji: str, *, target_from_me: bool,
        target_sender: str | None = None, origin: str | None = None,
    ) -> SentMessage:  # fmt: skip
        del target_from_me, target_sender  # part of the reaction key on the wire only
        return await self._send(chat, "reaction", origin, target_id=target_id, emoji=emoji)

    async def edit(self, chat: str, message_id: str, text: str, *, origin: str | None = None) -> SentMessage:
        return await self._send(chat, "edit", origin, text=text, target_id=message_id)

    async def revoke(self, chat: str, message_id: str, *, origin: str | None = None) -> SentMessage:
        return await self._send(chat, "revoke", origin, target_id=message_id)

    async def mark_read(self, chat: str, message_ids: tuple[str, ...], *, sender: str | None = None) -> None:
        self._require_connected()
        if not message_ids:
            return  # as the neonize engine: nothing to mark, no receipt
        if not sender and chat.endswith("@g.us"):
            # whatsmeow's MarkRead names the author of a group's messages, one per receipt: the
            # neonize engine refuses a group mark without it, and so does the simulation
            raise EngineError("Marking group messages as read needs the sender of the messages")
        self._record("read", chat=chat, messageIds=list(message_ids), sender=sender)

    async def send_presence(self, chat: str, state: Literal["composing", "recording", "paused"]) -> None:
        self._require_connected()
        self._record("presence", chat=chat, state=state)

    async def request_history(self, *, days: int, count: int) -> None:
        """An on-demand sync: the phone answers with its last ``count`` messages per chat of the
        last ``days`` days (whatsmeow ``BuildHistorySyncRequest``; the answer is asynchronous
        there, here it reaches the sink before this returns)."""
        self._require_connected()
        cutoff = wa_now() - timedelta(days=days)
        recent = [m for m in self._phone_history() if m.timestamp >= cutoff]
        per_chat: dict[str, list[WhatsAppMessage]] = {}
        for msg in recent:
            per_chat.setdefault(msg.chat.jid, []).append(msg)
        kept = [m for msgs in per_chat.values() for m in msgs[-count:]]
        self._record("history_request", days=days, count=count)
        await self._emit(self._history_event("on_demand", sorted(kept, key=lambda m: m.timestamp)))

    async def deliver_history(
        self, items: list[Inbound], *, kind: HistorySyncKind = "recent", remember: bool = True
    ) -> HistorySyncEvent:
        """A history sync from the phone with ``items`` (queued while offline); ``remember``
        keeps them in the phone's history, so a later pairing or request sends them again."""
        me = (
            self._me
            or self._engine.logins.get(self.instance)
            or Party(jid=f"{_own_number(self.instance)}@s.whatsapp.net")
        )
        messages = [
            build_message(item, me, self._engine.media_of(item), self._engine.group_subjects)
            for item in items
        ]
        if remember:
            self._remember(messages)
        event = self._history_event(kind, messages)
        await self._deliver_event(event)
        return event

    def _phone_history(self) -> list[WhatsAppMessage]:
        """The phone's messages, oldest first."""
        return sorted(self._history_store().values(), key=lambda m: m.timestamp)

    def _history_store(self) -> dict[str, WhatsAppMessage]:
        history = self._engine.phone_history.get(self.instance)
        if history is None:
            me = self._me or Party(jid=f"{_own_number(self.instance)}@s.whatsapp.net")
            engine = self._engine
            built = (
                build_message(item, me, engine.media_of(item), engine.group_subjects)
                for item in engine.default_history
            )
            history = {msg.id: msg for msg in built}
            engine.phone_history[self.instance] = history
        return history

    def _remember(self, messages: list[WhatsAppMessage]) -> None:
        history = self._history_store()
        for msg in messages:
            history.setdefault(msg.id, msg)
        while len(history) > PHONE_HISTORY_LIMIT:  # the oldest remembered go first
            del history[next(iter(history))]

    @staticmethod
    def _history_event(kind: HistorySyncKind, messages: list[WhatsAppMessage]) -> HistorySyncEvent:
        chats: dict[str, list[WhatsAppMessage]] = {}
        for msg in messages:
            chats.setdefault(msg.chat.jid, []).append(msg)
        return HistorySyncEvent(
            kind=kind,
            chats=tuple(
                HistoryChat(chat=msgs[0].chat, messages=tuple(sorted(msgs, key=lambda m: m.timestamp)))
                for msgs in chats.values()
            ),
            progress=100,
            final=True,
        )

    async def profile_picture(self, jid: str, *, known_id: str | None = None) -> ProfilePicture | None:
        self._require_connected()
        try:
            who = normalize_jid(jid)
        except ValueError:
            return None  # nobody the network knows (a newsletter, a broadcast list): no picture
        picture = self._engine.pictures.of(who)
        if picture is not None and known_id is not None and picture.id == known_id:
            # whatsmeow answers "unchanged" without a URL when ExistingID is the current id
            return ProfilePicture(id=picture.id, mimetype=picture.mimetype, data=b"")
        return picture

    async def download_media(self, media: Media) -> bytes:
        data = self._engine.get_blob(media.handle)
        if data is None:
            raise EngineError("media is no longer available", retryable=False)
        return data

    # ---------------------------------------------------------------- the network's side

    async def deliver(self, items: list[Inbound]) -> list[str]:
        """Messages arriving from the network (or typed on our phone); queued while offline."""
        ids = []
        for item in items:
            if item.group == STATUS_BROADCAST:
                continue  # status posts (stories) are not relayed: the neonize engine drops them too
            media = self._engine.media_of(item)
            me = (
                self._me
                or self._engine.logins.get(self.instance)
                or Party(jid=f"{_own_number(self.instance)}@s.whatsapp.net")
            )
            msg = build_message(item, me, media, self._engine.group_subjects)
            ids.append(msg.id)
            self._remember([msg])  # the phone keeps its chats: a later history sync has it
            wired = self._wired(MessageEvent(message=msg))
            if wired is not None:
                await self._deliver_event(wired)
        return ids

    async def deliver_group(self, changes: list[GroupChange]) -> list[GroupEvent]:
        """Group changes the network announces (``group.flow``), in order; queued while offline.
        A ``create`` or ``subject`` change renames the group on the network at once, so later
        group messages carry the new subject. Returns the events as the sink gets them."""
        events: list[GroupEvent] = []
        for change in changes:
            try:
                jid = normalize_jid(change.group)
                event = build_group_event(change, self._engine.group_subjects.get(jid))
            except ValueError as exc:
                raise EngineError(str(exc)) from exc
            if change.action in ("create", "subject"):
                if event.subject:
                    self._engine.group_subjects[jid] = event.subject
                else:
                    self._engine.group_subjects.pop(jid, None)
            wired = self._wired(event)
            if isinstance(wired, GroupEvent):
                events.append(wired)
                await self._deliver_event(wired)
        return events

    async def create_group(
        self,
        group: str,
        subject: str,
        participants: tuple[GroupMember, ...] = (),
        *,
        actor: str | None = None,
        topic: str | None = None,
    ) -> GroupEvent:
        """We are added to (or create) ``group``: its members, subject and description."""
        change = GroupChange(
            group=group, action="create", subject=subject, topic=topic, participants=participants, actor=actor
        )
        return (await self.deliver_group([change]))[0]

    async def rename_group(self, group: str, subject: str, *, actor: str | None = None) -> GroupEvent:
        return (
            await self.deliver_group(
                [GroupChange(group=group, action="subject", subject=subject, actor=actor)]
            )
        )[0]

    async def change_group_settings(
        self, group: str, settings: GroupSettings, *, actor: str | None = None
    ) -> GroupEvent:
        change = GroupChange(group=group, action="settings", settings=settings, actor=actor)
        return (await self.deliver_group([change]))[0]

    async def deliver_receipt(
        self,
        chat: str,
        message_ids: tuple[str, ...],
        kind: ReceiptKind,
        *,
        sender: str | None = None,
        sender_alt: str | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        chat_jid = normalize_jid(chat)
        event = ReceiptEvent(
            chat=Party(jid=chat_jid),
            sender=Party(
                jid=normalize_jid(sender) if sender else chat_jid,
                alt=normalize_jid(sender_alt) if sender_alt else None,
            ),
            message_ids=message_ids,
            kind=kind,
            timestamp=timestamp or wa_now(),
        )
        wired = self._wired(event)
        if wired is not None:
            await self._deliver_event(wired)

    def _wired(self, event: DomainEvent) -> DomainEvent | None:
        """``event`` as it reaches the sink: itself, or (``wire="neonize"``) what the neonize
        translation makes of its protobuf; None when that translation reports nothing."""
        if self._engine.wire != "neonize":
            return event
        from ryze.engines.simulated import wire  # loads neonize: only in this mode

        out = wire.roundtrip(event)
        if isinstance(event, MessageEvent) and isinstance(out, MessageEvent):
            before, after = event.message.media, out.message.media
            if before is not None and after is not None:
                data = self._engine.get_blob(before.handle)
                if data is not None:  # downloads come with the neonize handle now
                    self._engine.alias_blob(after.handle, data)
        return out

    async def _deliver_event(self, event: DomainEvent) -> None:
        if self._state == ConnectionState.CONNECTED:
            await self._emit(event)
        else:
            self._offline.append(event)

    def outbox_after(self, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return [item for item in self.outbox if item["seq"] > after][:limit]

    def clear_outbox(self) -> None:
        self.outbox.clear()

    def find_sent(self, message_id: str) -> dict[str, Any] | None:
        return next((item for item in reversed(self.outbox) if item.get("id") == message_id), None)


def _message_view(msg: WhatsAppMessage) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": msg.id,
        "to": msg.chat.jid,
        "kind": msg.kind,
        "text": msg.text,
        "timestamp": msg.timestamp.isoformat().replace("+00:00", "Z"),
    }
    if msg.reply_to:
        view["replyTo"] = msg.reply_to
    if msg.target_id:
        view["targetId"] = msg.target_id
    if msg.emoji is not None:
        view["emoji"] = msg.emoji
    if msg.media is not None:
        view["media"] = {
            "kind": msg.media.kind,
            "mimetype": msg.media.mimetype,
            "fileName": msg.media.file_name,
            "size": msg.media.size,
            "handle": msg.media.handle.decode(),
        }
    return view
