"""Liveness and readiness probes (not rate limited, no auth)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ryze.api.auth import services_of
from ryze.api.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
async def healthz() -> dict[str, object]:
    """The process is up."""
    return {"success": True, "status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> dict[str, object] | JSONResponse:
    """The database answers: ready to serve."""
    services = services_of(request)
    try:
        async with services.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        log.warning("readiness check failed", extra={"error": str(exc)})
        return JSONResponse({"success": False, "error": {"message": "Database unavailable"}}, status_code=503)
    return {"success": True, "status": "ready", "engine": services.engine.name}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's own registry (no auth: bind or proxy it privately)."""
    body = await services_of(request).metrics.exposition()
    return Response(body, media_type=CONTENT_TYPE)
