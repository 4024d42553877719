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
    live: bool | None = None  # a live-location share (its first position; updates are not relayed)


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


class ResumeFrame(_Model):
    type: Literal["resume"] = "resume"
    after: int = 0
    protocol: int = PROTOCOL_VERSION
    batch: bool = False  # the bridge understands `events` frames and would like to send `acks`


class ReadyFrame(_Model):
    type: Literal["ready"] = "ready"
    instance: str
    last_seq: int  # highest seq in the log
    pending: int  # how many events will be replayed
    protocol: int = PROTOCOL_VERSION
    batch: bool = False  # RyzeAPI will send `events` frames and accepts `acks` on this connection


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


class SendTextParams(_Model):
    to: str  # chat JID (or plain number)
    text: str
    replyTo: str | None = None  # WhatsApp id of the quoted message


class SendMediaParams(_Model):
    to: str
    mediaType: Literal["image", "video", "audio", "document"]
    url: str  # Chatwoot's data_url: RyzeAPI downloads it (follows redirects, retries while not ready)
    mimetype: str | None = None
    fileName: str | None = None
    caption: str | None = None
    isVoice: bool = False
    replyTo: str | None = None


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


# The params of a command, one model per action (COMMAND_PARAMS says which).
CommandParams = (
    SendTextParams
    | SendMediaParams
    | ReactParams
    | EditParams
    | RevokeParams
    | MarkReadParams
    | PresenceParams
)

COMMAND_PARAMS: dict[CommandAction, type[CommandParams]] = {
    CommandAction.SEND_TEXT: SendTextParams,
    CommandAction.SEND_MEDIA: SendMediaParams,
    CommandAction.REACT: ReactParams,
    CommandAction.EDIT: EditParams,
    CommandAction.REVOKE: RevokeParams,
    CommandAction.MARK_READ: MarkReadParams,
    CommandAction.PRESENCE: PresenceParams,
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
