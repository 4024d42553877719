"""The simulated-phone page of `ryze demo`: one WhatsApp contact chatting with the demo instance.

The browser talks only to this small server; the server talks to RyzeAPI's simulated phone network
(`/_simulator/{instance}/messages` to deliver what the contact types, `/_simulator/{instance}/outbox`
to read what the instance sent) with the account token, so the token never reaches the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

MAX_TEXT = 4096  # WhatsApp itself allows more; a demo page has no use for longer messages


@dataclass(frozen=True)
class DemoContact:
    # +1 555 555-01xx is reserved for fiction: never a real person's phone.
    number: str = "15555550123"
    name: str = "Ana"

    @property
    def jid(self) -> str:
        return f"{self.number}@s.whatsapp.net"


class PhoneError(RuntimeError):
    """RyzeAPI refused or could not be reached; the message is shown on the page."""

    status = 502


class PhoneInputError(PhoneError):
    """What the person typed cannot be sent (empty, too long)."""

    status = 400


class PhoneChat:
    """The contact's side of the chat: what it sent and what the instance sent to it, in the order
    this phone saw them (timestamps have one-second precision, too coarse to sort a live chat)."""

    def __init__(
        self, http: aiohttp.ClientSession, api_url: str, token: str, instance: str, contact: DemoContact
    ) -> None:
        self._http = http
        self._api = api_url.rstrip("/")
        self._headers = {"token": token}
        self.instance = instance
        self.contact = contact
        self.messages: list[dict[str, Any]] = []
        self._outbox_seq = 0
        self._typing = False
        # One sync at a time: two concurrent polls would append the same outbox items twice.
        self._lock = asyncio.Lock()

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        url = f"{self._api}/_simulator/{self.instance}{path}"
        try:
            async with self._http.request(method, url, json=body, headers=self._headers) as resp:
                try:
                    data: Any = await resp.json(content_type=None)
                except ValueError:  # not JSON (a proxy's error page, a crash): report the status
                    data = None
                if resp.status != 200 or not isinstance(data, dict):
                    error = data.get("error") if isinstance(data, dict) else None
                    message = error.get("message") if isinstance(error, dict) else None
                    raise PhoneError(message or f"RyzeAPI answered HTTP {resp.status}")
                return data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PhoneError(f"RyzeAPI unreachable: {exc or type(exc).__name__}") from exc

    async def sync(self) -> None:
        """Fold in whatever the instance sent since the last look."""
        async with self._lock:
            body = await self._call("GET", f"/outbox?after={self._outbox_seq}&limit=1000")
            for item in body.get("items", []):
                self._outbox_seq = max(self._outbox_seq, int(item["seq"]))
                self._fold(item)

    def _fold(self, item: dict[str, Any]) -> None:
        action = item.get("action")
        if action == "message" and item.get("to") == self.contact.jid:
            self._typing = False
            self.messages.append(
                {
                    "id": item.get("id"),
                    "from": "business",
                    "kind": item.get("kind", "text"),
                    "text": item.get("text") or _placeholder(item),
                    "timestamp": item.get("timestamp"),
                }
            )
        elif action == "read" and item.get("chat") == self.contact.jid:
            seen = set(item.get("messageIds") or [])
            for msg in self.messages:
                if msg["id"] in seen:
                    msg["status"] = "read"
        elif action == "presence" and item.get("chat") == self.contact.jid:
            self._typing = item.get("state") == "composing"

    async def send(self, text: str) -> dict[str, Any]:
        """The contact types ``text``: the network delivers it to the instance."""
        text = text.strip()
        if not text:
            raise PhoneInputError("type a message first")
        if len(text) > MAX_TEXT:
            raise PhoneInputError(f"a demo message is at most {MAX_TEXT} characters")
        # Fold in earlier replies first, so the page shows them above this message.
        await self.sync()
        body = await self._call(
            "POST",
            "/messages",
            {"from": self.contact.number, "pushName": self.contact.name, "text": text},
        )
        entry = {
            "id": body["ids"][0],
            "from": "contact",
            "kind": "text",
            "text": text,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "status": "sent",
        }
        async with self._lock:
            self.messages.append(entry)
        return entry

    async def snapshot(self) -> dict[str, Any]:
        await self.sync()
        return {
            "instance": self.instance,
            "contact": {"name": self.contact.name, "number": self.contact.number},
            "typing": self._typing,
            "messages": list(self.messages),
        }

    async def has_business_message(self, text: str) -> bool:
        await self.sync()
        return any(m["from"] == "business" and text in m["text"] for m in self.messages)


def _placeholder(item: dict[str, Any]) -> str:
    media = item.get("media") or {}
    return f"[{media.get('kind') or item.get('kind') or 'message'}]"


def create_app(chat: PhoneChat) -> Starlette:
    async def page(_request: Request) -> Response:
        html = resources.files("ryze.demo").joinpath("static/phone.html").read_text(encoding="utf-8")
        return HTMLResponse(html)

    async def state(_request: Request) -> Response:
        try:
            return JSONResponse(await chat.snapshot())
        except PhoneError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)

    async def send(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected a JSON body"}, status_code=400)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return JSONResponse({"error": "field 'text' is required"}, status_code=400)
        try:
            return JSONResponse(await chat.send(text))
        except PhoneError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)

    return Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/api/chat", state, methods=["GET"]),
            Route("/api/messages", send, methods=["POST"]),
        ]
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The demo owns Ctrl+C: uvicorn must not take SIGINT/SIGTERM away from it.
        yield


class PhoneServer:
    """Serves :func:`create_app` with uvicorn inside the caller's event loop."""

    def __init__(self, chat: PhoneChat, host: str = "127.0.0.1", port: int = 0) -> None:
        self.chat = chat
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.url = f"http://{host}:{self._sock.getsockname()[1]}"
        app = create_app(chat)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the phone page server stopped during start-up")
            await asyncio.sleep(0.01)
        return self.url

    async def aclose(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await self._task
            self._task = None
        self._sock.close()
