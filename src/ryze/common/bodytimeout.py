"""A deadline on reading a request body, for both services (pure ASGI middleware).

uvicorn has none: a client that sends its headers and then the body a byte a minute (or never)
held its connection, and the task serving it, forever. Here the whole body must arrive within
``timeout`` seconds of the request reaching the app, else the answer is 408 with the service's
error body and the connection is closed. The body is read before the app runs and handed to it in
one piece: every route of both services reads whole JSON bodies anyway, and the size limit in
front of this one (RyzeAPI's ``MAX_BODY_BYTES``, the bridge's webhook cap) still applies as it reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ErrorBody = Callable[[str], bytes]


class BodyTimeoutMiddleware:
    def __init__(self, app: ASGIApp, *, timeout: float, error_body: ErrorBody, max_bytes: int = 0) -> None:
        self.app = app
        self.timeout = timeout
        self.error_body = error_body
        self.max_bytes = max_bytes  # 0: a size limit in front of this one bounds what is buffered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.timeout <= 0:
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout):
                first = await _read_all(receive, self.max_bytes)
        except TimeoutError:
            await self._reply(send, 408, f"Request body not received within {self.timeout:g}s")
            return
        except _TooLarge:
            await self._reply(send, 413, f"Request body too large (limit {self.max_bytes} bytes)")
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return first
            return await receive()  # after the body: only http.disconnect is left to hear

        await self.app(scope, replay, send)

    async def _reply(self, send: Send, status: int, message: str) -> None:
        body = self.error_body(message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


async def _read_all(receive: Receive, max_bytes: int) -> Message:
    """The body as one ``http.request`` message (or the ``http.disconnect`` that cut it short)."""
    message = await receive()
    if message["type"] != "http.request" or not message.get("more_body", False):
        return message
    chunks = [message.get("body", b"")]
    size = len(chunks[0])
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if max_bytes and size > max_bytes:
            raise _TooLarge
        if not message.get("more_body", False):
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
