"""``/api/message/text|media/{instance}`` and ``/api/chat/getMessage/{instance}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ryze.api.auth import Caller, load_owned_instance, require_caller, services_of
from ryze.api.bodies import body_openapi, parse_body
from ryze.api.records import StoredMessage
from ryze.api.schemas import SendMediaBody, SendTextBody

router = APIRouter(tags=["messages"])


def _sent_view(stored: StoredMessage) -> dict[str, Any]:
    payload = stored.payload
    data: dict[str, Any] = {
        "messageId": stored.id,
        "direction": "outgoing",
        "timestamp": payload.get("timestamp"),
        "chat": payload.get("chat"),
        "sender": payload.get("sender"),
        "fromMe": True,
    }
    if payload.get("replyTo"):
        data["replyTo"] = payload["replyTo"]
    return data


def _sent(data: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "message": "Message sent successfully", "status": "sent", "data": data}


@router.post("/api/message/text/{instance}", openapi_extra=body_openapi(SendTextBody))
async def send_text(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """Send a text message (``replyTo`` quotes a stored message of this instance)."""
    services = services_of(request)
    record = await load_owned_instance(services, caller, instance)
    body = await parse_body(request, SendTextBody)
    stored = await services.messaging.send_text(
        record.name, body.number, body.message, reply_to=body.replyTo, source="api",
        mentions=tuple(body.mention or ()),
    )  # fmt: skip
    return _sent(_sent_view(stored))


@router.post("/api/message/media/{instance}", openapi_extra=body_openapi(SendMediaBody))
async def send_media(
    request: Request, instance: str, caller: Annotated[Caller, Depends(require_caller)]
) -> dict[str, Any]:
    """Send an image, video, audio (voice note unless ``isVoice: false``) or document."""
    services = services_of(request)
    record = await load_owned_instance(services, caller, instance)
    body = await parse_body(request, SendMediaBody)
    is_voice = body.isVoice if body.isVoice is not None else body.mediaType == "audio"
    stored = await services.messaging.send_media(
        record.name, body.number, body.mediaType, url=body.mediaUrl, base64=body.mediaBase64,
        mimetype=body.mimeType, file_name=body.fileName, caption=body.message, is_voice=is_voice,
        reply_to=body.replyTo, source="api",
    )  # fmt: skip
    data = _sent_view(stored)
    data.update(
        messageType=body.mediaType,
        mediaMimeType=stored.media_mimetype,
        mediaSize=stored.media_size,
        fileName=stored.media_file_name,
    )
    return _sent(data)


@router.get("/api/chat/getMessage/{instance}")
async def get_message(
    request: Request,
    instance: str,
    caller: Annotated[Caller, Depends(require_caller)],
    message_id: Annotated[str, Query(alias="messageId")],
) -> dict[str, Any]:
    """A stored message (sent or received) by its WhatsApp id, as published in ``message.exchange``."""
    services = services_of(request)
    record = await load_owned_instance(services, caller, instance)
    stored = await services.messaging.get_message(record.name, message_id)
    return {"success": True, "message": "Message found", "data": stored.payload}
