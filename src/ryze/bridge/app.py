"""The bridge's ASGI app: lifespan migrates, re-links every integration, and closes everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ryze.bridge.api import integrations
from ryze.bridge.api.webhook import WebhookMiddleware
from ryze.bridge.errors import BridgeProblem
from ryze.bridge.services import BridgeServices
from ryze.bridge.settings import BridgeSettings
from ryze.common.logging import register_secret
from ryze.protocol import BridgeErrorBody, BridgeFailure, FailureKind


def _error(status: int, failure: BridgeFailure) -> JSONResponse:
    return JSONResponse(
        BridgeErrorBody(error=failure).model_dump(mode="json", exclude_none=True), status_code=status
    )


def create_app(settings: BridgeSettings) -> FastAPI:
    register_secret(settings.token)
    register_secret(settings.encryption_key)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bridge = BridgeServices.build(settings)
        app.state.bridge = bridge
        await bridge.start()
        try:
            yield
        finally:
            await bridge.close()

    app = FastAPI(
        title="RyzeIntegrations (Chatwoot bridge)", lifespan=lifespan, docs_url=None, redoc_url=None
    )

    @app.exception_handler(BridgeProblem)
    async def _problem(_request: Request, exc: BridgeProblem) -> JSONResponse:
        return _error(exc.http_status, exc.failure)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"invalid body: {field}: {first.get('msg', 'invalid')}" if field else "invalid body"
        return _error(400, BridgeFailure(kind=FailureKind.INVALID_REQUEST, message=message))

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        """Liveness: the process answers."""
        return {"ok": True}

    @app.get("/readyz")
    async def readyz() -> dict[str, object]:
        """Readiness: migrations ran and the integrations were loaded (the lifespan finished)."""
        bridge: BridgeServices = app.state.bridge
        return {"ok": True, "integrations": len(bridge.manager.runtimes)}

    app.include_router(integrations.router)
    app.add_middleware(WebhookMiddleware)  # the webhook route, served ahead of the router

    return app
