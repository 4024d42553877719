"""Control API of the simulated phone network (mounted only with ``WHATSAPP_ENGINE=simulated``).

Tests, the demo and benchmarks use it to play the phone: scan the QR, deliver messages of every
type from contacts and groups (or typed on our own phone; media as base64 in JSON or as a multipart
upload), create and rename groups, deliver receipts, and read what the instance sent. Auth: the
instance's token or its account's token. Not rate limited (benchmarks inject
thousands of messages per second).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from ryze.api.auth import Caller, load_owned_instance, require_caller, services_of
from ryze.api.errors import ApiError, describe_validation_error
from ryze.api.events import PublishError
from ryze.engines.base import (
    Contact,
    EngineError,
    GroupAction,
    GroupEvent,
    GroupSettings,
    Location,
    MediaKind,
    MessageKind,
    Poll,
    ReceiptKind,
)
from ryze.engines.simulated import (
    GroupChange,
    GroupMember,
    Inbound,
    InboundMedia,
    SimulatedEngine,
    SimulatedSession,
    normalize_jid,
)
from ryze.engines.simulated.traffic import wa_now

router = APIRouter(prefix="/_simulator", tags=["simulator"])

_DEFAULT_MIME: dict[str, str] = {
    "image": "image/jpeg", "video": "video/mp4", "audio": "audio/mpeg", "ptt": "audio/ogg; codecs=opus",
    "ptv": "video/mp4", "document": "application/octet-stream", "sticker": "image/webp",
}  # fmt: skip
_MEDIA_TYPES = set(_DEFAULT_MIME)
# An upload's form fields that are not text: parsed as JSON so they keep their types.
_UPLOAD_JSON_FIELDS = frozenset(
    {"fromMe", "forwarded", "viewOnce", "seconds", "latitude", "longitude", "gif", "live"}
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ContactBody(_Body):
    displayName: str
    vcard: str = ""
    phones: list[str] = Field(default_factory=list)


class PollBody(_Body):
    name: str = Field(min_length=1)  # the question
    options: list[str] = Field(min_length=1, max_length=12)  # WhatsApp allows 12 options
    selectableCount: int = Field(default=1, ge=0)  # 0 = any number of options


class InboundBody(_Body):
    """One message from the network. ``type`` defaults to text."""

    sender: str = Field(default="", alias="from")  # contact / participant number or JID
    fromAlt: str | None = None  # the PN of a LID sender (or the LID of a PN sender)
    pushName: str | None = None
    savedName: str | None = None  # the name our phone book has for the sender (contact store)
    businessName: str | None = None  # the sender's verified business name
    group: str | None = None  # group JID: the message is from ``from`` in that group
    fromMe: bool = False  # typed on our own phone (``to`` = recipient)
    to: str | None = None
    toAlt: str | None = None  # fromMe: the recipient's alternate JID, when the phone knows it
    type: Literal[
        "text", "image", "video", "audio", "ptt", "ptv", "document", "sticker", "location", "contact",
        "poll", "reaction", "edit", "revoke",
    ] = "text"  # fmt: skip
    text: str = ""
    mediaBase64: str | None = None
    mimetype: str | None = None
    fileName: str | None = None
    seconds: int | None = None
    replyTo: str | None = None
    quotedText: str | None = None  # replyTo: the quoted message's text, as WhatsApp copies it
    targetId: str | None = None  # reaction / edit / revoke: the message acted upon
    emoji: str | None = None  # reaction ("" removes it)
    id: str | None = None
    timestamp: datetime | None = None
    forwarded: bool = False
    viewOnce: bool = False
    latitude: float | None = None
    longitude: float | None = None
    locationName: str | None = None
    address: str | None = None
    live: bool = False  # location: a position of a live-location share (the first, or a later one)
    sequence: int = Field(default=0, ge=0)  # a live position's sequenceNumber (grows with each)
    liveEnded: bool = False  # a live position that is the share's last (the sender stopped sharing)
    gif: bool = False  # video: played as a looping GIF
    contacts: list[ContactBody] = Field(default_factory=list)
    poll: PollBody | None = None

    def to_inbound(self) -> Inbound:
        if not self.sender and not (self.fromMe and (self.to or self.group)):
            raise ApiError(400, "Invalid request body: field 'from' is required")
        # A voice note is an audio message whose media kind is "ptt", a round video note a video
        # whose media kind is "ptv", as whatsmeow reports them.
        kind: MessageKind = {"ptt": "audio", "ptv": "video"}.get(self.type, self.type)  # type: ignore[assignment]
        if kind in ("reaction", "edit", "revoke") and not self.targetId:
            raise ApiError(400, f"Invalid request body: field 'targetId' is required for type '{kind}'")
        contacts = tuple(Contact(c.displayName, c.vcard, tuple(c.phones)) for c in self.contacts)
        if kind == "poll" and self.poll is None:
            raise ApiError(400, "Invalid request body: field 'poll' is required for type 'poll'")
        poll = (
            Poll(self.poll.name, tuple(self.poll.options), self.poll.selectableCount)
            if kind == "poll" and self.poll
            else None
        )
        return Inbound(
            sender=self.sender, kind=kind, text=self.text, sender_alt=self.fromAlt, push_name=self.pushName,
            saved_name=self.savedName, business_name=self.businessName,
            group=self.group, from_me=self.fromMe, to=self.to, to_alt=self.toAlt, media=self._media(),
            location=self._location(), contacts=contacts, reply_to=self.replyTo, quoted_text=self.quotedText,
            target_id=self.targetId,
            emoji=(self.emoji or "") if kind == "reaction" else None, id=self.id, timestamp=self.timestamp,
            forwarded=self.forwarded, view_once=self.viewOnce, poll=poll,
        )  # fmt: skip

    def to_inbound_with(self, data: bytes) -> Inbound:
        """The message with ``data`` (an upload's bytes) as its media."""
        if self.type not in _MEDIA_TYPES:
            raise ApiError(400, f"Invalid request body: type '{self.type}' carries no file")
        return self.model_copy(update={"mediaBase64": base64.b64encode(data).decode()}).to_inbound()

    def _media(self) -> InboundMedia | None:
        if self.type not in _MEDIA_TYPES:
            return None
        if not self.mediaBase64:
            raise ApiError(
                400, f"Invalid request body: field 'mediaBase64' is required for type '{self.type}'"
            )
        try:
            data = base64.b64decode(self.mediaBase64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ApiError(400, "Invalid request body: field 'mediaBase64' is not valid base64") from exc
        media_kind: MediaKind = self.type  # type: ignore[assignment]  # checked against _MEDIA_TYPES
        mimetype = self.mimetype or _DEFAULT_MIME[self.type]
        return InboundMedia(
            media_kind, data, mimetype, file_name=self.fileName, seconds=self.seconds,
            gif=self.gif and self.type == "video",
        )  # fmt: skip

    def _location(self) -> Location | None:
        if self.type != "location":
            return None
        if self.latitude is None or self.longitude is None:
            raise ApiError(400, "Invalid request body: fields 'latitude' and 'longitude' are required")
        return Location(
            self.latitude, self.longitude, self.locationName, self.address,
            live=self.live, sequence=self.sequence if self.live else 0, ended=self.live and self.liveEnded,
        )  # fmt: skip


_inbound_list: TypeAdapter[list[InboundBody]] = TypeAdapter(list[InboundBody])


class ScanBody(_Body):
    number: str | None = None
    pushName: str | None = None
    lid: str | None = None


class ReceiptBody(_Body):
    chat: str  # the contact (or group) the receipted messages are in
    messageIds: list[str]
    status: ReceiptKind = "delivered"
    sender: str | None = None  # who sends the receipt (group participant); defaults to chat
    senderAlt: str | None = None  # the receipt sender's alternate JID (PN of a LID), when known


async def _session(request: Request, instance: str, caller: Caller) -> SimulatedSession:
    services = services_of(request)
    record = await load_owned_instance(services, caller, instance)
    session = await services.sessions.get(record)
    if not isinstance(session, SimulatedSession):  # pragma: no cover - router mounted only when simulated
        raise ApiError(404, "Not found")
    return session


def _bad_value(exc: ValueError) -> ApiError:
    return ApiError(400, f"Invalid request body: {exc}")


@router.post("/{instance}/scan")
async def scan(
    request: Request,
    instance: str,
    caller: Annotated[Caller, Depends(require_caller)],
    body: ScanBody | None = None,
) -> dict[str, Any]:
    """The phone scans the QR code shown by ``GET /api/instance/connect``: the instance connects."""
    session = await _session(request, instance, caller)
    body = body or ScanBody()
    try:
        me = await session.scan(body.number, body.pushName, body.lid)
    except EngineError as exc:
        raise ApiError(409, exc.message) from exc
    return {
        "success": True,
        "state": session.state.value,
        "me": {"jid": me.jid, "lid": me.alt, "name": me.name},
    }


@router.post("/{instance}/qr/rotate")
async def rotate_qr(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """WhatsApp rotates the QR code (``instance.state`` ``qr_ready`` with the new one)."""
    session = await _session(request, instance, caller)
    try:
        qr = await session.rotate_qr()
    except EngineError as exc:
        raise ApiError(409, exc.message) from exc
    return {"success": True, "state": session.state.value, "qrCode": qr}


@router.post("/{instance}/passkey")
async def ask_passkey(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """The phone scanned and WhatsApp asks for a passkey the engine cannot give
    (``instance.state`` with ``problem: passkey_required``)."""
    session = await _session(request, instance, caller)
    try:
        await session.ask_passkey()
    except EngineError as exc:
        raise ApiError(409, exc.message) from exc
    return {"success": True, "state": session.state.value, "problem": "passkey_required"}


@router.post("/{instance}/messages")
async def deliver_messages(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """Deliver one message (a JSON object) or many (``{"messages": [...]}`` or an array), in order."""
    session = await _session(request, instance, caller)
    try:
        raw = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "Invalid JSON body") from exc
    batch = isinstance(raw, list) or (isinstance(raw, dict) and "messages" in raw)
    items = (raw.get("messages") if isinstance(raw, dict) else raw) if batch else [raw]
    if not isinstance(items, list):
        raise ApiError(400, "Invalid request body: field 'messages' must be an array")
    try:
        bodies = _inbound_list.validate_python(items)
    except ValidationError as exc:
        # Name fields as the caller wrote them: messages.<n>.<field> in a batch, <field> alone.
        errors = [
            {**e, "loc": ("messages", *e["loc"]) if batch else tuple(e["loc"])[1:]} for e in exc.errors()
        ]
        raise ApiError(400, describe_validation_error(errors)) from exc
    try:
        ids = await session.deliver([b.to_inbound() for b in bodies])
    except ValueError as exc:
        raise _bad_value(exc) from exc
    except PublishError as exc:
        # Like WhatsApp's server when a device does not acknowledge: the phone network delivers
        # again, and the redelivery publishes what failed (messages already published are dropped).
        raise ApiError(503, "Delivery not acknowledged: an event subscriber failed; deliver again") from exc
    return {"success": True, "ids": ids}


@router.post("/{instance}/media")
async def deliver_upload(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """Deliver one media message whose file is a multipart upload (field ``file``); the other
    form fields are those of a ``messages`` item (``type``, ``from``, ``text`` = caption, ...).
    ``type`` defaults to what the file's content type suggests."""
    session = await _session(request, instance, caller)
    try:
        form = await request.form(max_files=1, max_fields=64)
    except Exception as exc:  # starlette raises its own MultiPartException / HTTPException types
        raise ApiError(400, f"Invalid multipart body: {exc}") from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "Invalid request body: field 'file' (a file) is required")
    # The app's request body limit (MAX_BODY_BYTES) bounds the upload: raise it to test files
    # above Chatwoot's upload limit.
    data = await upload.read()
    fields: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key == "file" or not isinstance(value, str):
            continue
        if key in _UPLOAD_JSON_FIELDS:
            try:
                fields[key] = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise ApiError(400, f"Invalid request body: field '{key}' is not valid JSON") from exc
        else:
            fields[key] = value
    fields.setdefault("type", _type_of(upload.content_type or ""))
    fields.setdefault("mimetype", upload.content_type or None)
    if upload.filename and fields["type"] == "document":
        fields.setdefault("fileName", upload.filename)
    try:
        body = InboundBody.model_validate(fields)
    except ValidationError as exc:
        raise ApiError(400, describe_validation_error(exc.errors())) from exc
    try:
        ids = await session.deliver([body.to_inbound_with(data)])
    except ValueError as exc:
        raise _bad_value(exc) from exc
    except PublishError as exc:
        raise ApiError(503, "Delivery not acknowledged: an event subscriber failed; deliver again") from exc
    return {"success": True, "ids": ids}


def _type_of(content_type: str) -> str:
    main = content_type.split(";", 1)[0].strip().lower()
    if main == "image/webp":
        return "sticker"
    if main.startswith(("image/", "video/", "audio/")):
        return main.split("/", 1)[0]
    return "document"


class MemberBody(_Body):
    jid: str  # number or JID (a LID in LID-addressed groups)
    alt: str | None = None  # the other identity (PN of a LID, or LID of a PN)
    name: str | None = None


Member = Annotated[str | MemberBody, Field(union_mode="left_to_right")]


def _members(items: list[str | MemberBody]) -> tuple[GroupMember, ...]:
    return tuple(
        GroupMember(jid=m) if isinstance(m, str) else GroupMember(jid=m.jid, alt=m.alt, name=m.name)
        for m in items
    )


class GroupBody(_Body):
    subject: str = Field(min_length=1, max_length=100)  # WhatsApp's subject limit
    participants: list[Member] = Field(default_factory=list)
    jid: str | None = None  # a chosen group JID; a new one when absent
    topic: str | None = None
    actor: str | None = None  # who created the group (a number or JID)


class GroupRename(_Body):
    subject: str = Field(min_length=1, max_length=100)
    actor: str | None = None


class SettingsBody(_Body):
    announce: bool | None = None
    locked: bool | None = None
    ephemeralSeconds: int | None = Field(default=None, ge=0)


class GroupChangeBody(_Body):
    """Any other group change: members added / removed / promoted / demoted, a new description
    (``topic``), or settings."""

    action: Literal["topic", "add", "remove", "promote", "demote", "settings"]
    participants: list[Member] = Field(default_factory=list)
    topic: str | None = None
    settings: SettingsBody | None = None
    actor: str | None = None


def _new_group_jid() -> str:
    """Group JIDs shaped like WhatsApp's current ones (``120363…@g.us``)."""
    return f"120363{secrets.randbelow(10**12):012d}@g.us"


def _group_view(event: GroupEvent) -> dict[str, Any]:
    return {
        "jid": event.chat.jid,
        "subject": event.chat.name,
        "action": event.action,
        "participants": [p.jid for p in event.participants],
    }


def _known_group(request: Request, jid: str) -> str:
    engine = services_of(request).engine
    assert isinstance(engine, SimulatedEngine)
    try:
        group = normalize_jid(jid)
    except ValueError as exc:
        raise _bad_value(exc) from exc
    if group not in engine.group_subjects:
        raise ApiError(404, "Group not found")
    return group


@router.post("/{instance}/groups")
async def create_group(
    request: Request, instance: str, body: GroupBody, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """A group with the instance's account in it (``group.flow`` ``create``); deliver its messages
    with ``group`` = its JID: they carry its subject in ``chat.name``."""
    session = await _session(request, instance, caller)
    try:
        event = await session.create_group(
            body.jid or _new_group_jid(), body.subject, _members(body.participants),
            actor=body.actor, topic=body.topic,
        )  # fmt: skip
    except (EngineError, ValueError) as exc:
        raise ApiError(400, f"Invalid request body: {exc}") from exc
    return {"success": True, "group": _group_view(event)}


@router.get("/{instance}/groups")
async def list_groups(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """The groups the network knows, with their current subjects."""
    await _session(request, instance, caller)
    engine = services_of(request).engine
    assert isinstance(engine, SimulatedEngine)
    groups = [{"jid": jid, "subject": subject} for jid, subject in engine.group_subjects.items()]
    return {"success": True, "groups": groups}


@router.patch("/{instance}/groups/{jid}")
async def rename_group(
    request: Request,
    instance: str,
    jid: str,
    body: GroupRename,
    caller: Annotated[Caller, Depends(require_caller)],
) -> dict[str, Any]:
    """Somebody in the group changes its subject (``group.flow`` ``subject``)."""
    session = await _session(request, instance, caller)
    group = _known_group(request, jid)
    try:
        event = await session.rename_group(group, body.subject, actor=body.actor)
    except (EngineError, ValueError) as exc:
        raise ApiError(400, f"Invalid request body: {exc}") from exc
    return {"success": True, "group": _group_view(event)}


@router.post("/{instance}/groups/{jid}/changes")
async def change_group(
    request: Request,
    instance: str,
    jid: str,
    body: GroupChangeBody,
    caller: Annotated[Caller, Depends(require_caller)],
) -> dict[str, Any]:
    """Any other change of a group the network knows (``group.flow`` with that ``action``)."""
    session = await _session(request, instance, caller)
    group = _known_group(request, jid)
    action: GroupAction = body.action
    settings = None
    if action == "settings":
        if body.settings is None:
            raise ApiError(400, "Invalid request body: field 'settings' is required for action 'settings'")
        s = body.settings
        settings = GroupSettings(announce=s.announce, locked=s.locked, ephemeral_seconds=s.ephemeralSeconds)
    change = GroupChange(
        group=group, action=action, topic=body.topic, participants=_members(body.participants),
        actor=body.actor, settings=settings,
    )  # fmt: skip
    try:
        (event,) = await session.deliver_group([change])
    except (EngineError, ValueError) as exc:
        raise ApiError(400, f"Invalid request body: {exc}") from exc
    return {"success": True, "group": _group_view(event)}


@router.post("/{instance}/receipts")
async def deliver_receipt(
    request: Request, instance: str, body: ReceiptBody, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """A receipt from the contact (delivered, read, played, ...) for messages the instance sent."""
    session = await _session(request, instance, caller)
    try:
        await session.deliver_receipt(
            body.chat, tuple(body.messageIds), body.status, sender=body.sender, sender_alt=body.senderAlt
        )
    except ValueError as exc:
        raise _bad_value(exc) from exc
    return {"success": True}


@router.get("/{instance}/outbox")
async def outbox(
    request: Request,
    instance: str,
    caller: Annotated[Caller, Depends(require_caller)],
    after: int = 0,
    limit: int = 1000,
) -> dict[str, Any]:
    """What the instance sent, as the phone network saw it (items with ``seq`` > ``after``)."""
    session = await _session(request, instance, caller)
    items = session.outbox_after(after, max(1, min(limit, 10_000)))
    last = items[-1]["seq"] if items else after
    return {"success": True, "items": items, "last": last}


@router.delete("/{instance}/outbox")
async def clear_outbox(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    session = await _session(request, instance, caller)
    session.clear_outbox()
    return {"success": True}


@router.get("/{instance}/media/{handle}")
async def media_blob(
    request: Request, instance: str, handle: str, caller: Annotated[Caller, Depends(require_caller)]
) -> Response:
    """The bytes of a media message the instance sent (``media.handle`` of an outbox item)."""
    await _session(request, instance, caller)
    engine = services_of(request).engine
    assert isinstance(engine, SimulatedEngine)
    data = engine.get_blob(handle.encode())
    if data is None:
        raise ApiError(404, "Media not found")
    return Response(content=data, media_type="application/octet-stream")


class PictureBody(_Body):
    """A person (or group) changes their profile picture: ``imageBase64`` is the new one; without
    it the picture is removed (nobody sees one, as when a person hides theirs)."""

    jid: str = Field(min_length=1)
    imageBase64: str | None = None
    mimetype: str = Field(default="image/jpeg", pattern=r"^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$", max_length=100)


@router.post("/{instance}/profile-pictures")
async def set_profile_picture(
    request: Request,
    instance: str,
    body: PictureBody,
    caller: Annotated[Caller, Depends(require_caller)],
) -> dict[str, Any]:
    await _session(request, instance, caller)
    engine = services_of(request).engine
    assert isinstance(engine, SimulatedEngine)
    try:
        jid = normalize_jid(body.jid)
    except ValueError as exc:
        raise _bad_value(exc) from exc
    if body.imageBase64 is None:
        engine.pictures.remove(jid)
        return {"success": True, "jid": jid, "pictureId": None}
    try:
        data = base64.b64decode(body.imageBase64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "Invalid request body: imageBase64 is not base64") from exc
    picture = engine.pictures.put(jid, data, body.mimetype)
    return {"success": True, "jid": jid, "pictureId": picture.id}


@router.post("/{instance}/disconnect")
async def network_drop(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """The connection drops (the login is kept: connect again resumes without a QR)."""
    session = await _session(request, instance, caller)
    await session.drop_connection()
    return {"success": True, "state": session.state.value}


@router.post("/{instance}/unlink")
async def unlink(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """The user removes the linked device on the phone: the instance is logged out."""
    session = await _session(request, instance, caller)
    await session.unlink_from_phone()
    return {"success": True, "state": session.state.value}


class BanBody(_Body):
    seconds: int = 3600


@router.post("/{instance}/ban")
async def temporary_ban(
    request: Request,
    instance: str,
    caller: Annotated[Caller, Depends(require_caller)],
    body: BanBody | None = None,
) -> dict[str, Any]:
    """WhatsApp bans the account temporarily (``instance.state`` ``temp_banned``)."""
    session = await _session(request, instance, caller)
    await session.temporary_ban((body or BanBody()).seconds)
    return {"success": True, "state": session.state.value}


class HistoryItemBody(InboundBody):
    """A message of a history sync: a ``messages`` item, its time given as ``timestamp`` or as
    ``ageSeconds`` before now (a history is old by nature)."""

    # at most 20 years back: WhatsApp did not exist before that, and a larger age is no datetime
    ageSeconds: int | None = Field(default=None, ge=0, le=20 * 365 * 86_400)

    def to_inbound(self) -> Inbound:
        inbound = super().to_inbound()
        if self.timestamp is None and self.ageSeconds is not None:
            inbound = replace(inbound, timestamp=wa_now() - timedelta(seconds=self.ageSeconds))
        return inbound


class HistoryBody(_Body):
    messages: list[HistoryItemBody] = Field(min_length=1)
    # whatsmeow's sync types that carry messages
    kind: Literal["initial_bootstrap", "recent", "full", "on_demand"] = "recent"
    remember: bool = True  # the phone keeps them: a later pairing or resync sends them again


history_items: TypeAdapter[list[HistoryItemBody]] = TypeAdapter(list[HistoryItemBody])


@router.post("/{instance}/history")
async def deliver_history(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)], body: HistoryBody
) -> dict[str, Any]:
    """The phone sends a history sync (whatsmeow ``events.HistorySync``) with these messages,
    grouped per chat, oldest first; queued while the instance is offline."""
    session = await _session(request, instance, caller)
    try:
        event = await session.deliver_history(
            [item.to_inbound() for item in body.messages], kind=body.kind, remember=body.remember
        )
    except ValueError as exc:
        raise _bad_value(exc) from exc
    except PublishError as exc:
        raise ApiError(503, "Delivery not acknowledged: an event subscriber failed; deliver again") from exc
    return {
        "success": True,
        "count": event.message_count,
        "chats": [{"jid": c.chat.jid, "ids": [m.id for m in c.messages]} for c in event.chats],
    }
