"""The one error type routes and services raise, and how every error is rendered.

Every error leaves RyzeAPI as ``{"success": false, "error": {"message": ...}}``: FastAPI's own
422/404/405 bodies are translated here so no framework-shaped body reaches a client.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from ryze.engines.base import EngineError, NotConnectedError, UnsupportedError

log = logging.getLogger(__name__)
_STATUS_CODES = {status.value for status in HTTPStatus}


class ApiError(Exception):
    """Raise anywhere in a request; rendered as the error envelope with ``status``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class SentNotStored(ApiError):
    """WhatsApp accepted the message, then storing it failed (the database is unreachable).

    Distinct from a failed send: whoever retries this sends the message a second time, so it is
    answered as sent (bridge commands) or as a 500 that says so (public routes)."""

    def __init__(self, message_id: str) -> None:
        super().__init__(
            500, f"Message {message_id} was sent to WhatsApp but could not be stored; do not send it again"
        )
        self.message_id = message_id


def error_body(message: str) -> dict[str, Any]:
    return {"success": False, "error": {"message": message}}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message), status_code=status, headers=headers)


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "float_type": "a number",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


def describe_validation_error(errors: list[Any]) -> str:
    """A short sentence naming the first offending field, e.g. ``field 'number' is required``."""
    if not errors:
        return "Invalid request body"
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        return "Invalid JSON body"
    prefix, where = (
        ("Invalid request", "query parameter") if loc[:1] == ("query",) else ("Invalid request body", "field")
    )
    name = _field_name(loc)
    if not name:
        if kind in ("missing", "model_attributes_type", "dict_type", "model_type"):
            return f"{prefix}: expected a JSON object"
        return f"{prefix}: {first.get('msg', 'invalid value')}"
    if kind == "missing":
        return f"{prefix}: {where} '{name}' is required"
    if kind in _TYPE_WORDS:
        return f"{prefix}: {where} '{name}' must be {_TYPE_WORDS[kind]}"
    if kind == "extra_forbidden":
        return f"{prefix}: unknown {where} '{name}'"
    return f"{prefix}: {where} '{name}': {first.get('msg', 'invalid value')}"


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, describe_validation_error(list(exc.errors())))


_HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    default_phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in _STATUS_CODES else ""
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        message = "Invalid request body: could not be read"
    elif isinstance(exc.detail, str) and exc.detail and exc.detail != default_phrase:
        message = exc.detail
    else:
        message = _HTTP_MESSAGES.get(exc.status_code, default_phrase or "Request failed")
    return error_response(exc.status_code, message, dict(exc.headers or {}))


async def _engine_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    if isinstance(exc, NotConnectedError):
        return error_response(503, exc.message)
    if isinstance(exc, UnsupportedError):
        return error_response(501, exc.message)
    log.warning("engine operation failed", extra={"error": exc.message, "retryable": exc.retryable})
    # A transient failure (WhatsApp's servers unreachable, a time-out) is 503: the same call may
    # work later. Anything else is whatsmeow refusing the operation: 500, as documented.
    return error_response(503 if exc.retryable else 500, exc.message)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"path": request.url.path, "method": request.method},
    )
    return error_response(500, "Internal server error")


def install_websocket_not_found(app: FastAPI) -> None:
    """An upgrade to a path no WebSocket route serves answers 404 with the error envelope.

    Starlette's router closes an unmatched WebSocket before accepting it, which uvicorn turns into
    a bare 403; the docs promise 404 (e.g. ``/ws/chatwoot/{instance}`` with the module off).
    """
    http_not_found = app.router.not_found

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await http_not_found(scope, receive, send)
            return
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})  # the server cannot say 404
            return
        body = orjson.dumps(error_body(_HTTP_MESSAGES[404]))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})

    app.router.default = not_found


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(Exception, _unexpected)
