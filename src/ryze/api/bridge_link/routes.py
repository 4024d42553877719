"""HTTP and WebSocket routes of the module.

Check order on ``/api/chatwoot/*``: auth (401) → module gate (503) → instance lookup (404
``instance not found``) → ownership (403) → body. The link and media routes exist only when the
bridge is configured; they authenticate the bridge by ``Authorization: Bearer <BRIDGE_TOKEN>``
before anything else, and the link refuses *before* the WebSocket upgrade.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import JSONResponse, Response

from ryze.api.auth import Caller, load_owned_instance, require_caller
from ryze.api.bridge_link.errors import (
    ACTIVATED,
    DEACTIVATED,
    INSTANCE_NOT_FOUND,
    NO_INTEGRATION,
    ModuleError,
)
from ryze.api.bridge_link.media import bearer_matches, content_disposition
from ryze.api.bridge_link.validation import parse_activation
from ryze.api.errors import ApiError, error_response
from ryze.api.records import InstanceRecord
from ryze.api.services.container import ApiServices
from ryze.protocol import LINK_PATH, MEDIA_PATH, PICTURE_ID_HEADER, PROFILE_PICTURE_PATH

if TYPE_CHECKING:
    from ryze.api.bridge_link.module import ChatwootModule

log = logging.getLogger(__name__)

BRIDGE_TOKEN_MISSING = "Missing token"  # noqa: S105 - a message, not a secret
BRIDGE_TOKEN_INVALID = "Invalid token"  # noqa: S105


def _api_error(exc: ModuleError) -> ApiError:
    return ApiError(exc.status, exc.message)


def _parse_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def build_router(module: ChatwootModule, services: ApiServices) -> APIRouter:
    router = APIRouter()
    service = module.service

    async def owned(caller: Caller, name: str) -> InstanceRecord:
        if not service.config.enabled:
            raise _api_error(module.gate_error())
        return await load_owned_instance(services, caller, name, not_found=INSTANCE_NOT_FOUND)

    @router.post("/api/chatwoot/set/{instance}", status_code=201)
    async def set_integration(
        instance: str,
        request: Request,
        caller: Caller = Depends(require_caller),  # noqa: B008
    ) -> JSONResponse:
        record = await owned(caller, instance)
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid body: malformed JSON") from None
        try:
            inp = parse_activation(body, instance_name=record.name)
            done = await service.activate(record.id, record.name, inp)
        except ModuleError as exc:
            raise _api_error(exc) from None
        return JSONResponse(
            {
                "instance": record.name,
                "status": "active",
                "bridge_integration_id": done.bridge_integration_id,
                "message": ACTIVATED,
            },
            status_code=201,
        )

    @router.get("/api/chatwoot/list/{instance}")
    async def list_integration(
        instance: str,
        caller: Caller = Depends(require_caller),  # noqa: B008
    ) -> JSONResponse:
        record = await owned(caller, instance)
        try:
            return JSONResponse(await service.describe(record.name))
        except ModuleError as exc:
            raise _api_error(exc) from None

    @router.delete("/api/chatwoot/delete/{instance}")
    async def delete_integration(
        instance: str,
        request: Request,
        caller: Caller = Depends(require_caller),  # noqa: B008
    ) -> JSONResponse:
        record = await owned(caller, instance)
        keep_inbox = _parse_bool(request.query_params.get("keepInbox"))
        try:
            await service.deactivate(record.name, keep_inbox=keep_inbox)
        except ModuleError as exc:
            raise _api_error(exc) from None
        return JSONResponse({"message": DEACTIVATED})

    if not service.config.enabled:
        return router  # no link, no media route: both answer 404 as documented

    token = service.config.bridge_token

    @router.websocket(LINK_PATH)
    async def bridge_link(websocket: WebSocket, instance: str) -> None:
        verdict = bearer_matches(websocket.headers, token)
        if verdict is None:
            await _deny(websocket, 401, BRIDGE_TOKEN_MISSING)
            return
        if not verdict:
            # A wrong secret is a failed authentication (401), as everywhere else in RyzeAPI;
            # 403 would mean "authenticated but not allowed".
            await _deny(websocket, 401, BRIDGE_TOKEN_INVALID)
            return
        if await services.instances.get(instance) is None:
            await _deny(websocket, 404, INSTANCE_NOT_FOUND)
            return
        if not service.tracks(instance):
            await _deny(websocket, 404, NO_INTEGRATION)
            return
        await websocket.accept()
        await module.hub.serve(websocket, instance)

    def require_bridge_token(request: Request) -> None:
        """The bridge's own routes take ``BRIDGE_TOKEN`` only (never an instance or admin token)."""
        verdict = bearer_matches(request.headers, token)
        if verdict is None:
            raise ApiError(401, BRIDGE_TOKEN_MISSING)
        if not verdict:
            raise ApiError(401, BRIDGE_TOKEN_INVALID)

    @router.get(MEDIA_PATH)
    async def bridge_media(instance: str, message_id: str, request: Request) -> Response:
        require_bridge_token(request)
        data, mimetype, file_name = await services.messaging.get_media(instance, message_id)
        return Response(
            content=data,
            media_type=mimetype,
            headers={"Content-Disposition": content_disposition(file_name), "Cache-Control": "no-store"},
        )

    @router.get(PROFILE_PICTURE_PATH)
    async def bridge_profile_picture(instance: str, jid: str, request: Request) -> Response:
        require_bridge_token(request)
        known = request.query_params.get("known") or None
        picture = await services.messaging.profile_picture(instance, jid, known)
        if picture is None:
            raise ApiError(404, "No profile picture")
        headers = {PICTURE_ID_HEADER: picture.id, "Cache-Control": "no-store"}
        if not picture.data:  # the bridge already has this picture
            return Response(status_code=304, headers=headers)
        return Response(content=picture.data, media_type=picture.mimetype, headers=headers)

    return router


async def _deny(websocket: WebSocket, status: int, message: str) -> None:
    """Refuse before the upgrade: a plain HTTP answer, the handshake never completes."""
    log.warning(
        "bridge link refused", extra={"status": status, "reason": message, "path": websocket.url.path}
    )
    try:
        await websocket.send_denial_response(error_response(status, message))
    except RuntimeError:
        # Server without the denial-response extension: closing before accept is an HTTP 403.
        await websocket.close(code=1008)
