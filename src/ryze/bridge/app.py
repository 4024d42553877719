"""The bridge's ASGI app: lifespan migrates, re-links every integration, and closes everything."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ryze.bridge.api import integrations
from ryze.bridge.api.openapi import install_openapi
from ryze.bridge.api.webhook import MAX_BODY as WEBHOOK_MAX_BODY
from ryze.bridge.api.webhook import PREFIX as WEBHOOK_PREFIX
from ryze.bridge.api.webhook import WebhookMiddleware
from ryze.bridge.errors import BridgeProblem
from ryze.bridge.metrics import CONTENT_TYPE
from ryze.bridge.services import BridgeServices
from ryze.bridge.settings import BridgeSettings
from ryze.common.bodytimeout import BodyTimeoutMiddleware
from ryze.common.logging import register_secret
from ryze.protocol import BridgeErrorBody, BridgeFailure, FailureKind

log = logging.getLogger(__name__)
READY_DB_TIMEOUT = 5.0  # a database that hangs is as unready as one that refuses


def _error(status: int, failure: BridgeFailure) -> JSONResponse:
    return JSONResponse(
        BridgeErrorBody(error=failure).model_dump(mode="json", exclude_none=True), status_code=status
    )


def _error_bytes(message: str) -> bytes:
    failure = BridgeFailure(kind=FailureKind.INVALID_REQUEST, message=message)
    return BridgeErrorBody(error=failure).model_dump_json(exclude_none=True).encode()


_HTTP_KINDS = {401: FailureKind.UNAUTHORIZED, 404: FailureKind.NOT_FOUND}
_HTTP_MESSAGES = {404: "no such route", 405: "method not allowed on this route"}


class BridgeApp(FastAPI):
    """FastAPI, with Chatwoot's webhook route served before FastAPI's own stack.

    The webhook is the hottest route (one POST per message in the inbox) and a plain ASGI handler
    (``api/webhook.py``) that answers every outcome itself; FastAPI's per-request work around it
    (the native-telemetry check, ServerErrorMiddleware, the exception-telemetry and body-limit
    middlewares, the router) did nothing for it but cost CPU. Its own body deadline and size cap
    (``BodyTimeoutMiddleware``) stay in front of it. An exception escaping the handler is answered
    500 and logged by uvicorn, as ServerErrorMiddleware did.
    """

    webhook: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        webhook = self.webhook
        if webhook is not None and scope["type"] == "http" and scope["path"].startswith(WEBHOOK_PREFIX):
            scope["app"] = self  # where the handler finds the services (app.state.bridge)
            await webhook(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


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

    app = BridgeApp(
        title="RyzeIntegrations (Chatwoot bridge)",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # No OpenTelemetry is configured: without this FastAPI asks the global providers on every
        # request whether one is (three look-ups per webhook, for nothing).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    @app.exception_handler(BridgeProblem)
    async def _problem(_request: Request, exc: BridgeProblem) -> JSONResponse:
        return _error(exc.http_status, exc.failure)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        # Routing's own answers (404 no such route, 405 wrong method) in the bridge's error body,
        # not FastAPI's {"detail": …}: RyzeAPI and operators read one shape from every route.
        kind = _HTTP_KINDS.get(exc.status_code, FailureKind.INVALID_REQUEST)
        message = _HTTP_MESSAGES.get(exc.status_code) or str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "invalid body: not valid JSON"
        response = _error(exc.status_code, BridgeFailure(kind=kind, message=message))
        for name, value in (exc.headers or {}).items():  # e.g. Allow on a 405
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def _crash(_request: Request, _exc: Exception) -> JSONResponse:
        # Starlette still logs the traceback (ServerErrorMiddleware re-raises after answering).
        return _error(500, BridgeFailure(kind=FailureKind.INTERNAL, message="internal error"))

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

    @app.get("/readyz", response_model=None)
    async def readyz() -> dict[str, object] | JSONResponse:
        """Readiness: the lifespan finished (migrations ran, integrations loaded) and the database answers."""
        bridge: BridgeServices | None = getattr(app.state, "bridge", None)
        if bridge is None:
            return JSONResponse({"ok": False, "error": "starting"}, status_code=503)
        try:
            async with asyncio.timeout(READY_DB_TIMEOUT), bridge.db.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("readiness check failed", extra={"error": str(exc)})
            return JSONResponse({"ok": False, "error": "database unavailable"}, status_code=503)
        return {"ok": True, "integrations": len(bridge.manager.runtimes)}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text exposition of this app's own registry (no auth: bind or proxy it privately)."""
        bridge: BridgeServices | None = getattr(app.state, "bridge", None)
        if bridge is None:
            return Response("starting\n", status_code=503, media_type=CONTENT_TYPE)
        return Response(bridge.metrics.exposition(), media_type=CONTENT_TYPE)

    app.include_router(integrations.router)
    # The webhook route, ahead of FastAPI's stack (BridgeApp): its body in time and within its cap.
    app.webhook = BodyTimeoutMiddleware(
        WebhookMiddleware(app),
        timeout=settings.request_body_timeout,
        max_bytes=WEBHOOK_MAX_BODY,
        error_body=_error_bytes,
    )
    # Every other body arrives in time and within the same cap.
    app.add_middleware(
        BodyTimeoutMiddleware,
        timeout=settings.request_body_timeout,
        max_bytes=WEBHOOK_MAX_BODY,
        error_body=_error_bytes,
    )
    install_openapi(app)

    return app
