"""The engine seam: what RyzeAPI needs from a WhatsApp implementation, and the events it gets back.

An engine manages one *session* per RyzeAPI instance. Sessions push domain events into the sink
RyzeAPI gives them; RyzeAPI persists them and turns them into the documented event envelope. The
simulated engine and the neonize (whatsmeow) engine must produce identical events for the same
WhatsApp traffic: tests of the relay run unchanged on either.

Failure contract (both engines keep it):

* A message (or receipt) is acknowledged to WhatsApp only after RyzeAPI stored it: the sink
  returns only once the event is persisted, and an engine treats an event as handled only when
  the sink returned.
* A sink failure is never a drop. The engine retries the same event, in order (later events of the
  session wait behind it), with exponential back-off (``SINK_RETRY_INITIAL`` doubling up to
  ``SINK_RETRY_MAX``), until the sink succeeds or the session stops (``deliver_until_stored``).
  Where the other side itself redelivers what was not acknowledged (the simulated phone network:
  its control API answers 503 "deliver again"), the engine may instead refuse the acknowledgement
  and leave the retry to the sender; either way nothing is acknowledged and then lost.
* neonize caveat: whatsmeow sends its delivery receipt once neonize's Go handler has queued the
  event (``goneonize/main.go``, ``eventChan``), before Python sees it; the session keeps the event
  until stored, so only a process crash between the two can lose it.

Identity: ``jid`` strings are non-AD JIDs (``5511999999999@s.whatsapp.net``, ``123@lid``,
``1203...@g.us``). When WhatsApp addresses a person by LID, ``alt`` carries the phone-number JID
if whatsmeow knows it (and the other way round).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable


class ConnectionState(StrEnum):
    """The documented connection states (``GET /api/instance/list`` ``connection.state``)."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    QR_READY = "qr_ready"
    CONNECTED = "connected"
    LOGGED_OUT = "loggedout"
    TEMP_BANNED = "temp_banned"


class EngineError(Exception):
    """A send or control operation failed. ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class NotConnectedError(EngineError):
    def __init__(self) -> None:
        super().__init__("Instance is not connected to WhatsApp", retryable=True)


class UnsupportedError(EngineError):
    """The engine cannot do this (maps to HTTP 501)."""


# ---------------------------------------------------------------------------------------------
# Domain values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    jid: str
    alt: str | None = None  # the LID for a PN jid, or the PN for a LID jid, when known
    name: str | None = None  # push name / group subject
    saved_name: str | None = None  # the name in the account's phone book (contact store), if any
    business_name: str | None = None  # a business account's verified name, if WhatsApp sent it


MediaKind = Literal["image", "video", "audio", "ptt", "document", "sticker", "ptv"]


@dataclass(frozen=True, slots=True)
class Media:
    kind: MediaKind
    mimetype: str
    file_name: str | None = None
    size: int | None = None
    seconds: int | None = None
    gif: bool = False  # a video WhatsApp plays as a looping, silent GIF (``gifPlayback``)
    # Engine-specific, opaque handle for download_media (neonize: serialized media message;
    # simulated: key into its blob store). RyzeAPI stores it with the message.
    handle: bytes = b""


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    # A live-location share: WhatsApp sends its positions as LiveLocationMessages of the sender in
    # the chat, ``sequence`` (sequenceNumber) growing with each; ``ended``: the share stopped and
    # this is its last position (the simulated network says so; whatsmeow reports no stop).
    live: bool = False
    sequence: int = 0
    ended: bool = False


@dataclass(frozen=True, slots=True)
class Contact:
    display_name: str
    vcard: str
    phones: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Poll:
    """A poll's question and options (votes arrive encrypted and are not part of the seam)."""

    name: str
    options: tuple[str, ...] = ()
    selectable_count: int = 1  # 0 = any number of options


MessageKind = Literal[
    "text", "image", "video", "audio", "document", "sticker", "location", "contact",
    "reaction", "edit", "revoke", "poll", "unsupported",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class WhatsAppMessage:
    """One message seen by a session: received, or sent by this account from any device."""

    id: str
    chat: Party  # the conversation: the other person, or the group
    sender: Party  # the author (== chat for 1:1 incoming; the participant in groups; us if from_me)
    from_me: bool
    timestamp: datetime
    kind: MessageKind
    is_group: bool = False
    text: str = ""  # text body or media caption
    media: Media | None = None
    location: Location | None = None
    contacts: tuple[Contact, ...] = ()
    poll: Poll | None = None
    reply_to: str | None = None  # quoted message id
    quoted_text: str | None = None  # the quoted message's text as the reply carries it (or None)
    target_id: str | None = None  # reaction / edit / revoke: the message acted upon
    emoji: str | None = None  # reaction ("" = removed)
    forwarded: bool = False
    view_once: bool = False


ReceiptKind = Literal[
    "delivered", "read", "played", "sender", "read_self", "played_self", "retry", "inactive", "server_error"
]


@dataclass(frozen=True, slots=True)
class MessageEvent:
    message: WhatsAppMessage
    # Set by sessions for sends RyzeAPI asked for (so the event can carry the caller's origin tag);
    # None for traffic WhatsApp brought (received, or sent from the phone).
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiptEvent:
    chat: Party
    sender: Party  # who sent the receipt
    message_ids: tuple[str, ...]
    kind: ReceiptKind
    timestamp: datetime


PASSKEY_REQUIRED = "passkey_required"  # ConnectionEvent.problem (the same word as protocol's)


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    state: ConnectionState
    qr: str | None = None  # the current QR string when state == qr_ready
    reason: str | None = None
    me: Party | None = None  # our own JID once connected
    # A pairing problem the engine cannot solve (``PASSKEY_REQUIRED``: WhatsApp
    # asked for a passkey, whatsmeow's events.PairPasskeyRequest, and the engine has no way to
    # answer one); None otherwise.
    problem: str | None = None


GroupAction = Literal["create", "subject", "topic", "add", "remove", "promote", "demote", "settings"]


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """The group settings a ``settings`` change is about (None = not part of this change)."""

    announce: bool | None = None  # only admins may send
    locked: bool | None = None  # only admins may edit the group info
    ephemeral_seconds: int | None = None  # disappearing messages timer (0 = off)


@dataclass(frozen=True, slots=True)
class GroupEvent:
    """One change of a group's metadata or membership (``group.flow``).

    ``chat`` is the group with its subject as known after the change (``chat.name``);
    ``participants`` the members the change is about (every member for ``create``); ``actor``
    who made the change, when WhatsApp says. One WhatsApp notification that changes several
    things (a rename and an add) becomes several events, in the order listed in ``GroupAction``.
    """

    chat: Party
    action: GroupAction
    timestamp: datetime
    subject: str | None = None
    topic: str | None = None
    participants: tuple[Party, ...] = ()
    actor: Party | None = None
    settings: GroupSettings | None = None


HistorySyncKind = Literal[
    "initial_bootstrap", "recent", "full", "on_demand", "push_name", "initial_status_v3", "non_blocking_data"
]


@dataclass(frozen=True, slots=True)
class HistoryChat:
    """One conversation of a history sync (whatsmeow ``waHistorySync.Conversation``): the chat
    and its messages, oldest first, each with its original timestamp."""

    chat: Party
    messages: tuple[WhatsAppMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class HistorySyncEvent:
    """One chunk of WhatsApp's history sync (whatsmeow ``events.HistorySync``).

    The phone sends recent history after pairing (``initial_bootstrap``, then ``recent`` ...), in
    chunks (``chunk`` = ``chunkOrder``, ``progress`` in percent when it says), and again when
    asked (``on_demand``). ``final``: no further chunk of this sync is expected. RyzeAPI stores
    the messages like any other (a message already stored is not stored twice) and offers them
    to the bridge flagged as history; they are not new traffic."""

    kind: HistorySyncKind
    chats: tuple[HistoryChat, ...] = ()
    chunk: int = 0
    progress: int | None = None
    final: bool = True

    @property
    def message_count(self) -> int:
        return sum(len(chat.messages) for chat in self.chats)


DomainEvent = MessageEvent | ReceiptEvent | ConnectionEvent | GroupEvent | HistorySyncEvent
EventSink = Callable[[DomainEvent], Awaitable[None]]
"""Called in order, one event at a time per session. It must persist before returning; raising
means "not stored" (the engine retries, see the failure contract above)."""

SINK_RETRY_INITIAL = 0.1
SINK_RETRY_MAX = 5.0
_log = logging.getLogger(__name__)


class SessionStopped(Exception):
    """The session stopped while an event was still waiting to be stored."""


async def deliver_until_stored(
    sink: EventSink,
    event: DomainEvent,
    *,
    stopped: Callable[[], bool],
    instance: str = "",
    initial: float = SINK_RETRY_INITIAL,
    maximum: float = SINK_RETRY_MAX,
) -> int:
    """Hand ``event`` to ``sink`` until it is stored; returns the number of failed attempts.

    Raises ``SessionStopped`` when ``stopped()`` turns true before the sink succeeded (the event
    was not stored: the caller must not acknowledge it)."""
    delay = initial
    failures = 0
    while True:
        try:
            await sink(event)
            return failures
        except Exception:
            failures += 1
            _log.warning(
                "event sink failed; retrying",
                exc_info=failures == 1,  # the traceback once, not on every retry
                extra={"instance": instance, "event_type": type(event).__name__, "attempt": failures},
            )
        # Checked only after a failure: events queued when the session stops are still tried.
        if stopped():
            raise SessionStopped(f"session {instance} stopped before the event was stored")
        await asyncio.sleep(delay)
        delay = min(delay * 2, maximum)


# ---------------------------------------------------------------------------------------------
# Requests to send
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    """A message to quote in a reply (RyzeAPI looks it up in its message store)."""

    id: str
    chat: str
    sender: str
    from_me: bool
    text: str = ""


@dataclass(frozen=True, slots=True)
class OutgoingMedia:
    kind: Literal["image", "video", "audio", "document", "sticker"]
    data: bytes
    mimetype: str
    file_name: str | None = None
    caption: str | None = None
    voice: bool = False  # audio as a push-to-talk voice note


@dataclass(frozen=True, slots=True)
class SentMessage:
    id: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class ProfilePicture:
    """A WhatsApp profile picture (person or group): its id changes whenever the picture does."""

    id: str
    mimetype: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectResult:
    state: ConnectionState
    qr: str | None = None
    pairing_code: str | None = None


class Session(Protocol):
    """One WhatsApp account (one RyzeAPI instance)."""

    @property
    def state(self) -> ConnectionState: ...

    @property
    def me(self) -> Party | None: ...

    async def connect(self, *, pair_number: str | None = None, timeout: float = 60.0) -> ConnectResult:
        """Start (or resume) the connection. Returns once a QR code or pairing code is available,
        or once connected when a stored login exists. Never hangs past ``timeout``."""
        ...

    async def disconnect(self) -> None: ...

    async def logout(self) -> None:
        """Unlink the device from the phone and forget the login."""
        ...

    async def send_text(
        self, to: str, text: str, *, quote: Quote | None = None, mentions: tuple[str, ...] = (),
        origin: str | None = None,
    ) -> SentMessage: ...  # fmt: skip

    async def send_media(
        self, to: str, media: OutgoingMedia, *, quote: Quote | None = None, origin: str | None = None
    ) -> SentMessage: ...

    async def send_reaction(
        self,
        chat: str,
        target_id: str,
        emoji: str,
        *,
        target_from_me: bool,
        target_sender: str | None = None,
        origin: str | None = None,
    ) -> SentMessage: ...

    async def edit(
        self, chat: str, message_id: str, text: str, *, origin: str | None = None
    ) -> SentMessage: ...

    async def revoke(self, chat: str, message_id: str, *, origin: str | None = None) -> SentMessage: ...

    async def mark_read(
        self, chat: str, message_ids: tuple[str, ...], *, sender: str | None = None
    ) -> None: ...

    async def send_presence(self, chat: str, state: Literal["composing", "recording", "paused"]) -> None: ...

    async def download_media(self, media: Media) -> bytes: ...

    async def profile_picture(self, jid: str, *, known_id: str | None = None) -> ProfilePicture | None:
        """The current profile picture of a person or group; ``None`` when there is none the
        account may see. When ``known_id`` is the current picture's id, the result carries that id
        and no bytes (``data == b""``): nothing is downloaded. Raises ``NotConnectedError``."""
        ...

    async def drain(self) -> None:
        """Wait until every event the session produced so far reached the sink."""
        ...

    async def close(self) -> None:
        """Release resources without logging out (process shutdown)."""
        ...


class Engine(Protocol):
    name: str

    async def open_session(self, instance: str, sink: EventSink) -> Session:
        """Create (or restore from stored login) the session for ``instance``. Does not connect."""
        ...

    async def delete_session(self, instance: str) -> None:
        """Forget everything stored for ``instance`` (after logout)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class RequestsHistory(Protocol):
    """A session that can ask the phone for history again (whatsmeow
    ``BuildHistorySyncRequest``, an on-demand sync); the answer arrives later through the sink
    as a ``HistorySyncEvent`` of kind ``on_demand``. Raises ``NotConnectedError`` offline."""

    async def request_history(self, *, days: int, count: int) -> None: ...


@runtime_checkable
class ReportsThreads(Protocol):
    """An engine that holds threads of its own (neonize: one per session inside Go) and can
    count them for ``/metrics`` (``ryze_api_threads``)."""

    def thread_counts(self) -> dict[str, int]: ...
