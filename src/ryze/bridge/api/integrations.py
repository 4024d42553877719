"""``/v1/integrations/*``: the service API RyzeAPI calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ryze.bridge.api.auth import require_token, services
from ryze.protocol import (
    ACTIVATE_PATH,
    HISTORY_RESYNC_PATH,
    INTEGRATION_PATH,
    PAUSE_PATH,
    RESUME_PATH,
    SELFCHECK_PATH,
    ActivateRequest,
    DeleteResult,
    HistoryResyncResult,
    IntegrationView,
)

router = APIRouter(dependencies=[Depends(require_token)])


@router.post(ACTIVATE_PATH, status_code=201)
async def activate(body: ActivateRequest, request: Request) -> JSONResponse:
    view = await services(request).provisioner.activate(body)
    return JSONResponse(view.model_dump(mode="json"), status_code=201)


@router.get(INTEGRATION_PATH)
async def show(integration_id: str, request: Request) -> IntegrationView:
    return await services(request).provisioner.get(integration_id)


@router.delete(INTEGRATION_PATH)
async def remove(
    integration_id: str, request: Request, keep_inbox: Annotated[bool, Query(alias="keepInbox")] = False
) -> DeleteResult:
    return await services(request).provisioner.delete(integration_id, keep_inbox=keep_inbox)


@router.post(PAUSE_PATH)
async def pause(integration_id: str, request: Request) -> IntegrationView:
    return await services(request).provisioner.pause(integration_id)


@router.post(RESUME_PATH)
async def resume(integration_id: str, request: Request) -> IntegrationView:
    return await services(request).provisioner.resume(integration_id)


@router.post(SELFCHECK_PATH)
async def selfcheck(integration_id: str, request: Request) -> IntegrationView:
    """Run the self-check now; the answer carries its report in ``checks`` (docs/selfcheck.md)."""
    return await services(request).provisioner.selfcheck(integration_id)


@router.post(HISTORY_RESYNC_PATH)
async def history_resync(integration_id: str, request: Request) -> HistoryResyncResult:
    """Ask the phone for recent history again (what the connection conversation's ``resync``
    does); the import's progress shows in ``GET /v1/integrations/{id}`` (``history``)."""
    return HistoryResyncResult(message=await services(request).provisioner.history_resync(integration_id))
