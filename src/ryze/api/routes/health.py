"""Liveness and readiness probes (not rate limited, no auth)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ryze.api.auth import services_of

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
