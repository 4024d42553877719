"""The bridge contract: everything RyzeAPI and the bridge (RyzeIntegrations) say to each other.

This is the only module both services import from each other's world. It defines

* the bridge's service API bodies (``/v1/integrations/*``), which RyzeAPI calls;
* the WebSocket frames on ``/ws/chatwoot/{instance}`` (RyzeAPI is the server, the bridge the client);
* the event payloads RyzeAPI emits (the documented ``{event, data, instanceData}`` envelope);
* the internal media route the bridge downloads WhatsApp media from.

``docs/bridge-protocol.md`` describes the same contract in prose, with the delivery guarantees.
Models ignore unknown fields so either side can be upgraded first.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PROTOCOL_VERSION = 1

# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------

ACTIVATE_PATH = "/v1/integrations/activate"
INTEGRATION_PATH = "/v1/integrations/{integration_id}"
PAUSE_PATH = "/v1/integrations/{integration_id}/pause"
RESUME_PATH = "/v1/integrations/{integration_id}/resume"
SELFCHECK_PATH = "/v1/integrations/{integration_id}/selfcheck"
# Bridge service API (additive): ask the phone for recent history again; answers HistoryResyncResult.
HISTORY_RESYNC_PATH = "/v1/integrations/{integration_id}/history/resync"
WEBHOOK_PATH = "/v1/chatwoot/webhook/{integration_id}/{path_secret}"
LINK_PATH = "/ws/chatwoot/{instance}"
MEDIA_PATH = "/internal/media/{instance}/{message_id}"
"""RyzeAPI route (under ``BRIDGE_INTERNAL_RYZEAPI_URL``, Bearer ``BRIDGE_TOKEN``) serving a stored
WhatsApp message's media bytes with its ``Content-Type`` and ``Content-Disposition`` filename."""
PROFILE_PICTURE_PATH = "/internal/profile-picture/{instance}/{jid}"
"""RyzeAPI route (same base and token as ``MEDIA_PATH``) serving the current WhatsApp profile
picture of a person or group: 200 with the image bytes, its ``Content-Type`` and the picture's id in
``PICTURE_ID_HEADER``; 304 when ``?known=<id>`` is the current picture's id; 404 when there is no
picture the account may see; 503 while the instance is not connected."""
PICTURE_ID_HEADER = "X-Ryze-Picture-Id"


CLOSE_GONE = 4004
"""WebSocket close code RyzeAPI ends a link with when its integration or instance was deleted: the
bridge stops redialling and marks the integration in error (every other close is reconnected)."""


HTTP_SCHEMES = ("http", "https")


def is_http_url(url: str) -> bool:
    """``url`` starts with ``http://`` or ``https://`` in any case (schemes are case-insensitive,
    RFC 3986 §3.1). The one scheme check of both services, so ``HTTP://`` means the same everywhere."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() in HTTP_SCHEMES


def is_header_token(value: str) -> bool:
    """A token that can travel in an HTTP header: visible ASCII only, 1 to 512 characters.

    Chatwoot's access tokens are alphanumeric; a control character or a non-ASCII one cannot be
    sent (aiohttp refuses the header), so both services refuse it up front with a 400."""
    return 0 < len(value) <= 512 and all("!" <= ch <= "~" for ch in value)


def lower_scheme(url: str) -> str:
    """``url`` with its scheme in lower case (``HTTPS://Host/`` -> ``https://Host/``)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.lower()}{sep}{rest}" if sep else url


def link_url(ryzeapi_url: str, instance: str) -> str:
    """The WebSocket URL the bridge dials for an instance, from RyzeAPI's internal base URL."""
    base = lower_scheme(ryzeapi_url.rstrip("/"))
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + LINK_PATH.format(instance=instance)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------------------------
# Integration status (shared vocabulary; RyzeAPI stores it, the bridge owns it)
# --------------------------------------------------------------------------------------------


class IntegrationStatus(StrEnum):
    ACTIVE = "active"  # linked and relaying
    PAUSED = "paused"  # link down, WhatsApp disconnected, or paused by the operator; events wait
    ERROR = "error"  # Chatwoot refuses (token revoked, inbox deleted, account gone): see last_error


# --------------------------------------------------------------------------------------------
# Bridge service API: RyzeAPI -> bridge (Authorization: Bearer BRIDGE_TOKEN)
# --------------------------------------------------------------------------------------------


class ActivateRequest(_Model):
    """``POST /v1/integrations/activate``.

    ``replace_integration_id`` is set on a second ``set`` for the same instance: the bridge updates
    that integration in place when base URL and account are unchanged and the inbox still exists,
    otherwise provisions a new inbox and removes the old integration.
    """

    instance: str
    ryzeapi_url: str  # BRIDGE_INTERNAL_RYZEAPI_URL: where the bridge dials the WS and fetches media
    chatwoot_base_url: str
    chatwoot_account_id: int
    chatwoot_api_token: str
    inbox_name: str
    sign_messages: bool = False
    ignore_groups: bool = False
    start_as_pending: bool = False
    reopen_resolved: bool = False
    replace_integration_id: str | None = None
    # Days of WhatsApp history to import into Chatwoot (0 disables). None: the bridge keeps the
    # integration's current value (7 for a new one). Optional and additive: an older RyzeAPI never
    # sends it, an older bridge ignores it.
    history_days: int | None = Field(default=None, ge=0, le=3650)


class HistoryView(_Model):
    """The history import of one integration, as the bridge last saw it (``IntegrationView.history``).

    ``state``: ``idle`` (never imported), ``importing`` (a sync's messages are being relayed) or
    ``done``. Counts are of the current (or last) import: ``received`` history messages offered,
    ``imported`` created in Chatwoot, ``skipped`` older than ``days`` or not mirrored,
    ``duplicates`` already in Chatwoot (relayed live, or by an interrupted run)."""

    days: int = 7
    state: Literal["idle", "importing", "done"] = "idle"
    received: int = 0
    imported: int = 0
    skipped: int = 0
    duplicates: int = 0
    started_at: str = ""
    finished_at: str = ""


class CheckOutcome(StrEnum):
    """One self-check entry's verdict (docs/selfcheck.md)."""

    OK = "ok"
    WARN = "warn"  # works, or cannot be told, but the operator should look
    FAIL = "fail"  # something the operator must fix: the sentence says what


class CheckResult(_Model):
    name: str  # token_admin, inbox, signing_secret, webhook_host, round_trip
    status: CheckOutcome
    message: str  # one sentence an operator can act on (never a secret)


class SelfCheckReport(_Model):
    """The last self-check of an integration: on activation (in the background) or on demand."""

    status: CheckOutcome  # the worst entry
    trigger: str = ""  # "activation" or "on_demand"
    ran_at: str = ""  # RFC 3339, UTC
    checks: list[CheckResult] = Field(default_factory=list)


class IntegrationView(_Model):
    """The bridge's answer to activate (201), GET, pause and resume (200). Never carries the token."""

    id: str
    instance: str
    status: IntegrationStatus
    last_error: str = ""
    inbox_id: int
    inbox_name: str
    chatwoot_base_url: str
    chatwoot_account_id: int
    sign_messages: bool = False
    ignore_groups: bool = False
    start_as_pending: bool = False
    reopen_resolved: bool = False
    link_connected: bool = False
    last_acked_seq: int = 0
    created_at: str = ""
    updated_at: str = ""
    checks: SelfCheckReport | None = None  # the last self-check; None before the first one finished
    history: HistoryView | None = None  # additive: an older bridge does not send it


class HistoryResyncResult(_Model):
    """``POST /v1/integrations/{id}/history/resync``: what the bridge did, in the operator's words."""

    message: str


class FailureKind(StrEnum):
    """How an activation (or any bridge call) failed; RyzeAPI words its public error from this."""

    CHATWOOT_HTTP = "chatwoot_http"  # Chatwoot answered with an error status: see chatwoot_status
    CHATWOOT_UNREACHABLE = "chatwoot_unreachable"  # DNS, connect, TLS
    CHATWOOT_TIMEOUT = "chatwoot_timeout"  # no answer within the budget
    INVALID_REQUEST = "invalid_request"  # the bridge rejected the body itself
    NOT_FOUND = "not_found"  # unknown integration id
    UNAUTHORIZED = "unauthorized"  # wrong BRIDGE_TOKEN
    INTERNAL = "internal"


class BridgeFailure(_Model):
    kind: FailureKind
    message: str
    chatwoot_status: int | None = None
    detail: str = ""  # Chatwoot's raw error body or the network error text, appended after "Detail:"
    chatwoot_endpoint: str | None = None  # which Chatwoot call failed, e.g. "GET /api/v1/accounts/5/inboxes"


class BridgeErrorBody(_Model):
    """Every non-2xx answer of the bridge service API: ``{"error": {...}}``."""

    error: BridgeFailure


class DeleteResult(_Model):
    deleted: bool = True
    inbox_deleted: bool = False


# --------------------------------------------------------------------------------------------
# Events RyzeAPI emits (documented envelope). The bridge consumes these from `event` frames.
# --------------------------------------------------------------------------------------------


class EventName(StrEnum):
    MESSAGE_EXCHANGE = "message.exchange"
    MESSAGE_STATUS = "message.status"
    INSTANCE_STATE = "instance.state"
    GROUP_FLOW = "group.flow"  # a group's metadata or participants changed (docs §8.2)
    # Bridge link only (never a public event): a history sync's start and end, around its
    # messages, which travel as message.exchange with ``message.history = true``.
    HISTORY_SYNC = "history.sync"


class ChatType(StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    NEWSLETTER = "newsletter"
    BROADCAST = "broadcast"


class ChatRef(_Model):
    jid: (
        str  # the chat's JID as WhatsApp addresses it ("5511999999999@s.whatsapp.net", "...@g.us", "...@lid")
    )
    lid: str | None = None  # the hidden-identity alternate when known
    pn: str | None = None  # the phone-number JID when known (for @lid chats)
    name: str | None = None  # contact push name or group subject
    # The name the account's own phone book has for the person (whatsmeow's ContactInfo FullName
    # or FirstName), when the engine knows it; private chats only.
    savedName: str | None = None
    businessName: str | None = None  # a business account's verified name, when WhatsApp sent it
    type: ChatType = ChatType.PRIVATE
    isCommunity: bool | None = None


class SenderRef(_Model):
    jid: str
    lid: str | None = None
    pn: str | None = None
    name: str | None = None  # push name
    savedName: str | None = None  # as on ChatRef
    businessName: str | None = None


class MessageType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    REACTION = "reaction"
    EDIT = "message_edit"
    REVOKE = "message_revoke"
    POLL = "poll"
    UNSUPPORTED = "unsupported"


class MediaInfo(_Model):
    type: Literal["image", "video", "audio", "document", "sticker", "ptt", "ptv"]
    mimetype: str
    fileName: str | None = None
    size: int | None = None
    seconds: int | None = None
    url: str | None = None  # RyzeAPI's internal media URL (MEDIA_PATH) for the bridge
    base64: str | None = None  # only when the subscriber asked for it; never on the bridge link
    gif: bool | None = None  # a video WhatsApp plays as a looping GIF (``gifPlayback``)


class LocationInfo(_Model):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    live: bool | None = None  # a live-location share: its first position or a later one
    sequence: int | None = None  # a live position's sequenceNumber (grows with each update)
    ended: bool | None = None  # the live share stopped: this is its last position


class ContactCard(_Model):
    displayName: str
    vcard: str
    phones: list[str] = Field(default_factory=list)


class ReactionInfo(_Model):
    messageId: str  # the WhatsApp id of the message reacted to
    emoji: str  # empty string = reaction removed
    fromMe: bool = False


class PollInfo(_Model):
    name: str  # the question
    options: list[str] = Field(default_factory=list)
    selectableCount: int = 1  # 0 = any number of options


class EditInfo(_Model):
    messageId: str
    text: str


class RevokeInfo(_Model):
    messageId: str


class MessageSource(StrEnum):
    """Who caused an own (outgoing) message. The bridge skips mirroring ``chatwoot`` ones back."""

    PHONE = "phone"  # typed on the phone (or another linked device)
    API = "api"  # sent through RyzeAPI's public send endpoints
    CHATWOOT = "chatwoot"  # sent by a bridge command (an agent's reply)
    CONTACT = "contact"  # incoming from the other party


class WAMessage(_Model):
    id: str
    direction: Literal["incoming", "outgoing"]
    timestamp: str  # RFC 3339
    type: MessageType
    chat: ChatRef
    sender: SenderRef
    fromMe: bool = False
    source: MessageSource = MessageSource.CONTACT
    commandId: str | None = None  # the bridge command that caused it, when source == chatwoot
    content: dict[str, Any] = Field(default_factory=dict)  # {"text": "..."} for text/captions
    media: MediaInfo | None = None
    location: LocationInfo | None = None
    contacts: list[ContactCard] | None = None
    reaction: ReactionInfo | None = None
    edit: EditInfo | None = None
    revoke: RevokeInfo | None = None
    poll: PollInfo | None = None
    replyTo: str | None = None  # WhatsApp id of the quoted message
    # The quoted message's text as WhatsApp carried it (``contextInfo.quotedMessage``), when known:
    # the bridge shows it as a quote when the quoted message itself was never relayed.
    quotedText: str | None = None
    isForwarded: bool | None = None
    isViewOnce: bool | None = None
    # From WhatsApp's history sync (an old message imported, not one that just arrived): the
    # bridge shows its original time and applies the integration's history window.
    history: bool | None = None

    @property
    def text(self) -> str:
        value = self.content.get("text")
        return value if isinstance(value, str) else ""


class MessageExchangeData(_Model):
    id: str
    message: WAMessage


class ReceiptStatus(StrEnum):
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    SENDER = "sender"
    READ_SELF = "read_self"
    PLAYED_SELF = "played_self"
    RETRY = "retry"
    INACTIVE = "inactive"
    SERVER_ERROR = "server_error"


class MessageStatusData(_Model):
    messageIds: list[str]
    status: ReceiptStatus
    chat: ChatRef
    messageSender: SenderRef | None = None
    timestamp: str


class InstanceStateData(_Model):
    state: str  # connected | connecting | disconnected | loggedout | qr_ready | temp_banned
    reason: str | None = None
    # Additive (an older RyzeAPI sends none of them): who is connected (``connected``), the QR
    # string to render (``qr_ready``; whatsmeow rotates it: first after 60 s, then every 20 s),
    # and a pairing problem the engine cannot solve itself (PAIRING_PASSKEY_REQUIRED).
    number: str | None = None  # our own phone number, digits only (no +)
    name: str | None = None  # our own push name
    qr: str | None = None
    problem: str | None = None


PAIRING_PASSKEY_REQUIRED = "passkey_required"
"""``InstanceStateData.problem``: WhatsApp asked for a passkey to link this device
(whatsmeow's ``events.PairPasskeyRequest``) and the engine cannot answer one."""


class GroupFlowAction(StrEnum):
    CREATE = "create"  # the group was created, or first seen with its metadata (``participants`` = all)
    SUBJECT = "subject"  # renamed: ``subject`` is the new name
    TOPIC = "topic"  # description changed: ``topic``
    ADD = "add"  # participants joined or were added
    REMOVE = "remove"  # participants left or were removed
    PROMOTE = "promote"
    DEMOTE = "demote"
    SETTINGS = "settings"  # announce / locked / ephemeral changes: ``settings``


class GroupFlowData(_Model):
    """``group.flow``: one change of a group's metadata or membership.

    ``chat`` carries the group's JID and its subject as known after the change (``chat.name``);
    ``participants`` are the members the change is about (all members for ``create``); ``actor`` is
    who made the change, when WhatsApp says.
    """

    chat: ChatRef
    action: GroupFlowAction
    timestamp: str  # RFC 3339
    subject: str | None = None
    topic: str | None = None
    participants: list[SenderRef] = Field(default_factory=list)
    actor: SenderRef | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class HistorySyncType(StrEnum):
    """whatsmeow's ``HistorySync.syncType`` (waHistorySync.proto)."""

    INITIAL_BOOTSTRAP = "initial_bootstrap"  # on first pairing: recent chats
    RECENT = "recent"
    FULL = "full"
    ON_DEMAND = "on_demand"  # answer to a request (the bridge's ``history_sync`` command)
    PUSH_NAME = "push_name"  # names only, no messages
    INITIAL_STATUS_V3 = "initial_status_v3"
    NON_BLOCKING_DATA = "non_blocking_data"


class HistorySyncData(_Model):
    """``history.sync``: one chunk of a history sync starts (``phase: started``) or ends
    (``finished``). Between the two, in seq order, RyzeAPI offers the chunk's messages as
    ``message.exchange`` with ``message.history = true`` (per chat in timestamp order).
    ``final``: the last chunk of the sync (whatsmeow's progress reached 100, or a single-chunk
    sync such as on-demand)."""

    phase: Literal["started", "finished"]
    syncType: HistorySyncType
    chunk: int = 0
    progress: int | None = None  # percent, when WhatsApp says
    final: bool = True
    chats: int = 0
    messages: int = 0  # messages of this chunk offered on the link


class InstanceData(_Model):
    baseUrl: str
    instance: str
    token: str | None = None  # the public envelope carries it; the bridge link omits it


class EventEnvelope(_Model):
    event: EventName
    data: dict[str, Any]
    instanceData: InstanceData

    def message_exchange(self) -> MessageExchangeData:
        return MessageExchangeData.model_validate(self.data)

    def message_status(self) -> MessageStatusData:
        return MessageStatusData.model_validate(self.data)

    def instance_state(self) -> InstanceStateData:
        return InstanceStateData.model_validate(self.data)

    def group_flow(self) -> GroupFlowData:
        return GroupFlowData.model_validate(self.data)

    def history_sync(self) -> HistorySyncData:
        return HistorySyncData.model_validate(self.data)


# --------------------------------------------------------------------------------------------
# WebSocket frames on /ws/chatwoot/{instance}
# --------------------------------------------------------------------------------------------
#
# bridge -> RyzeAPI: resume (first frame), ack, acks, command, ping, pong
# RyzeAPI -> bridge: ready (answer to resume), event, events, result, ping, pong
#
# Delivery: every event is persisted in RyzeAPI's per-instance log before it is offered. The bridge
# acks each seq once its effect is committed in Chatwoot (acks may arrive out of order: one lane per
# chat). On reconnect the bridge sends resume{after=W}, W being its watermark (every seq <= W is
# committed); RyzeAPI replays, in seq order, every unacked event with seq > W. Commands carry an
# idempotency id: a replayed id returns the stored result and sends nothing twice.
#
# Batching is negotiated per connection (either side may be the older one): the bridge asks with
# resume{batch: true}; a RyzeAPI that understands it answers ready{batch: true} and from then on
# sends `events` frames (several events each) instead of `event` frames, and accepts `acks` frames
# (several seqs each). An older RyzeAPI ignores the unknown field and answers without it (false),
# an older bridge never asks: both keep the one-event, one-ack frames. Batching changes only the
# framing: flow control, replay and acks still count events (seqs), never frames.
#
# Read marks riding on a send are negotiated the same way: the bridge asks with
# resume{mark_read_on_send: true}; a RyzeAPI that answers ready{mark_read_on_send: true} executes a
# send's `markRead` (the chat's messages the reply answers) right after the send, in the same
# command: one frame and one result instead of a second `mark_read` command. Without it (an older
# RyzeAPI ignores the field, and would ignore `markRead` too) the bridge sends `mark_read` commands.


class ResumeFrame(_Model):
    type: Literal["resume"] = "resume"
    after: int = 0
    protocol: int = PROTOCOL_VERSION
    batch: bool = False  # the bridge understands `events` frames and would like to send `acks`
    mark_read_on_send: bool = False  # the bridge would like to put read marks on its sends


class ReadyFrame(_Model):
    type: Literal["ready"] = "ready"
    instance: str
    last_seq: int  # highest seq in the log
    pending: int  # how many events will be replayed
    protocol: int = PROTOCOL_VERSION
    batch: bool = False  # RyzeAPI will send `events` frames and accepts `acks` on this connection
    mark_read_on_send: bool = False  # RyzeAPI executes a send's `markRead` on this connection


class EventFrame(_Model):
    type: Literal["event"] = "event"
    seq: int
    event: EventEnvelope


class BatchedEvent(_Model):
    """One event of an ``events`` frame: the same ``seq`` and ``event`` as an ``event`` frame."""

    seq: int
    event: EventEnvelope


class EventsFrame(_Model):
    """Several events, in seq order, only on a connection whose ``ready`` said ``batch: true``.
    Each is processed and acked exactly as if it had come in its own ``event`` frame."""

    type: Literal["events"] = "events"
    events: list[BatchedEvent]


class AckFrame(_Model):
    type: Literal["ack"] = "ack"
    seq: int


class AcksFrame(_Model):
    """Several acks at once (any order), only after a ``ready`` with ``batch: true``."""

    type: Literal["acks"] = "acks"
    seqs: list[int]


class CommandAction(StrEnum):
    SEND_TEXT = "send_text"
    SEND_MEDIA = "send_media"
    REACT = "react"
    EDIT = "edit"
    REVOKE = "revoke"
    MARK_READ = "mark_read"
    PRESENCE = "presence"
    HISTORY_SYNC = "history_sync"  # ask the phone for recent history again (an on-demand sync)
    # Instance control (the connection conversation's commands). Not messaging: never claimed as
    # idempotent sends; a RyzeAPI that does not know them answers an error result (or, older
    # still, an ``error`` frame: the bridge's wait then ends at its budget).
    CONNECT = "connect"  # result.data: ConnectData
    LOGOUT = "logout"
    RECONNECT = "reconnect"
    STATUS = "status"  # result.data: ConnectData (state, number, name)


class SendTextParams(_Model):
    to: str  # chat JID (or plain number)
    text: str
    replyTo: str | None = None  # WhatsApp id of the quoted message
    # WhatsApp ids of the chat's messages (the customer's) to mark read once this one is sent; best
    # effort, only on a connection whose ready said mark_read_on_send (the result is the send's)
    markRead: list[str] | None = None


class SendMediaParams(_Model):
    to: str
    mediaType: Literal["image", "video", "audio", "document"]
    url: str  # Chatwoot's data_url: RyzeAPI downloads it (follows redirects, retries while not ready)
    mimetype: str | None = None
    fileName: str | None = None
    caption: str | None = None
    isVoice: bool = False
    replyTo: str | None = None
    markRead: list[str] | None = None  # as in SendTextParams


class ReactParams(_Model):
    chat: str
    messageId: str
    emoji: str  # "" removes the reaction
    fromMe: bool = False  # whether the reacted-to message is ours


class EditParams(_Model):
    chat: str
    messageId: str
    text: str


class RevokeParams(_Model):
    chat: str
    messageId: str


class MarkReadParams(_Model):
    chat: str
    messageIds: list[str]
    sender: str | None = None  # author, for group messages


class PresenceParams(_Model):
    chat: str
    state: Literal["composing", "recording", "paused"]


class HistorySyncParams(_Model):
    days: int = Field(default=7, ge=1, le=3650)  # how far back to ask for
    count: int = Field(default=50, ge=1, le=500)  # messages per chat to ask for


class ConnectParams(_Model):
    pairNumber: str | None = None  # digits with country code: ask for a pairing code instead of a QR


class InstanceParams(_Model):
    """``logout``, ``reconnect``, ``status``: no parameters (the link names the instance)."""


class ConnectData(_Model):
    """``ResultFrame.data`` of ``connect`` and ``status``."""

    state: str
    qr: str | None = None
    pairingCode: str | None = None
    number: str | None = None
    name: str | None = None


CONTROL_ACTIONS = frozenset({"connect", "logout", "reconnect", "status"})

# The params of a command, one model per action (COMMAND_PARAMS says which).
CommandParams = (
    SendTextParams
    | SendMediaParams
    | ReactParams
    | EditParams
    | RevokeParams
    | MarkReadParams
    | PresenceParams
    | HistorySyncParams
    | ConnectParams
    | InstanceParams
)

COMMAND_PARAMS: dict[CommandAction, type[CommandParams]] = {
    CommandAction.SEND_TEXT: SendTextParams,
    CommandAction.SEND_MEDIA: SendMediaParams,
    CommandAction.REACT: ReactParams,
    CommandAction.EDIT: EditParams,
    CommandAction.REVOKE: RevokeParams,
    CommandAction.MARK_READ: MarkReadParams,
    CommandAction.PRESENCE: PresenceParams,
    CommandAction.HISTORY_SYNC: HistorySyncParams,
    CommandAction.CONNECT: ConnectParams,
    CommandAction.LOGOUT: InstanceParams,
    CommandAction.RECONNECT: InstanceParams,
    CommandAction.STATUS: InstanceParams,
}


class CommandFrame(_Model):
    type: Literal["command"] = "command"
    id: str  # idempotency key, chosen by the bridge, stable across retries
    action: CommandAction
    params: dict[str, Any]

    def typed_params(self) -> CommandParams:
        """The params as their action's model (pydantic ``ValidationError`` when they do not fit)."""
        return COMMAND_PARAMS[self.action].model_validate(self.params)


class ResultFrame(_Model):
    type: Literal["result"] = "result"
    id: str
    ok: bool
    wa_message_id: str | None = None
    error: str | None = None
    # False when retrying cannot help (bad number, not on WhatsApp, media unreadable): the bridge
    # marks the Chatwoot message failed at once instead of retrying.
    retryable: bool = False
    data: dict[str, Any] | None = None  # what an instance-control action answers (ConnectData)


class PingFrame(_Model):
    type: Literal["ping"] = "ping"
    ts: float = 0.0


class PongFrame(_Model):
    type: Literal["pong"] = "pong"
    ts: float = 0.0


class ErrorFrame(_Model):
    """A frame RyzeAPI could not accept (malformed JSON, unknown type). The link stays open."""

    type: Literal["error"] = "error"
    message: str


ClientFrame = Annotated[
    ResumeFrame | AckFrame | AcksFrame | CommandFrame | PingFrame | PongFrame, Field(discriminator="type")
]
ServerFrame = Annotated[
    ReadyFrame | EventFrame | EventsFrame | ResultFrame | PingFrame | PongFrame | ErrorFrame,
    Field(discriminator="type"),
]

client_frame: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
server_frame: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)


def parse_client_frame(raw: str | bytes) -> ClientFrame:
    """Parse a frame the bridge sent; raises ``pydantic.ValidationError`` when malformed."""
    return client_frame.validate_json(raw)


def parse_server_frame(raw: str | bytes) -> ServerFrame:
    """Parse a frame RyzeAPI sent; raises ``pydantic.ValidationError`` when malformed."""
    return server_frame.validate_json(raw)


def dump_frame(frame: BaseModel) -> str:
    return frame.model_dump_json(exclude_none=True)
