"""Records every API request the emulator receives, for tests and the conformance check."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .faults import transport_of

if TYPE_CHECKING:
    from .conformance import ConformanceChecker

RAW_BODY_LIMIT = 256 * 1024
# Control endpoints and the agent page are not part of what a client under test "said"
# to Chatwoot, and the page polls: keep them out.
_SKIP_PREFIXES = ("/_emulator", "/app", "/static", "/favicon.ico")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    content_type: str
    body: Any  # parsed JSON, Rails-style params for forms (uploads summarised), or None
    raw_body: bytes = field(repr=False)
    status: int | None = None  # None: the connection was reset / the request hung
    response_body: Any = None
    fault: str | None = None
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "content_type": self.content_type,
            "body": self.body,
            "status": self.status,
            "response_body": self.response_body,
            "fault": self.fault,
            "at": self.at,
        }


class Recorder:
    def __init__(self, maxlen: int = 20_000) -> None:
        self.enabled = True
        self.requests: deque[RecordedRequest] = deque(maxlen=maxlen)
        self.checker: ConformanceChecker | None = None

    def clear(self) -> None:
        self.requests.clear()

    def find(self, method: str | None = None, path_contains: str = "") -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and path_contains in r.path
        ]

    def conformance_errors(self) -> list[str]:
        """Recorded requests (and responses where spec and code agree) that break swagger.json."""
        if self.checker is None:
            from .conformance import ConformanceChecker

            self.checker = ConformanceChecker.load()
        return self.checker.check(list(self.requests))


class RecorderMiddleware:
    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Remember uvicorn's transport before `send` gets wrapped (fault resets need it).
        transport = transport_of(send)
        if transport is not None:
            scope["emulator.transport"] = transport
        path: str = scope["path"]
        if not self.recorder.enabled or path.startswith(_SKIP_PREFIXES) or path == "/":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        out: list[bytes] = []
        status: list[int] = []
        capture_response = path.startswith("/api/")

        async def rec_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def rec_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body" and capture_response:
                out.append(message.get("body", b""))
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            await self.app(scope, rec_receive, rec_send)
        finally:
            raw = b"".join(chunks)
            ctype = headers.get("content-type", "")
            body: Any = scope.get("emulator.params")
            if body is None and raw and "json" in ctype:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    body = None
            response_body: Any = None
            if out:
                try:
                    response_body = orjson.loads(b"".join(out))
                except orjson.JSONDecodeError:
                    response_body = None
            self.recorder.requests.append(
                RecordedRequest(
                    method=scope["method"],
                    path=path,
                    query=scope.get("query_string", b"").decode("latin-1"),
                    headers=headers,
                    content_type=ctype,
                    body=body,
                    # Big uploads are summarised in `body`; keeping every byte would let a
                    # media benchmark grow the recorder by gigabytes.
                    raw_body=raw if len(raw) <= RAW_BODY_LIMIT else raw[:RAW_BODY_LIMIT],
                    status=status[0] if status else None,
                    response_body=response_body,
                    fault=scope.get("emulator.fault"),
                )
            )
