"""The simulated-phone page of `ryze demo`: one WhatsApp contact chatting with the demo instance.

The browser talks only to this small server; the server talks to RyzeAPI's simulated phone network
with the account token, so the token never reaches the page: `/_simulator/{instance}/messages` to
deliver what the contact types, shares (a location), reacts or deletes; `/_simulator/{instance}/media`
to deliver a photo, voice note or document as an upload; `/_simulator/{instance}/outbox` to read what
the instance sent; `/_simulator/{instance}/media/{handle}` for the bytes of the instance's attachments.
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
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

MAX_TEXT = 4096  # WhatsApp itself allows more; a demo page has no use for longer messages
MAX_FILE = 16 * 1024 * 1024  # WhatsApp's limit for photos, videos and voice notes
KEEP_FILES = 64  # the contact's own uploads kept to show on the page (a demo, not an archive)
MAX_EMOJI = 16  # characters: one emoji with its modifiers and joiners
# Where the contact "is" when it shares its location: Praça da Sé, São Paulo (a public square).
DEMO_LOCATION = (-23.5503, -46.6339, "Praça da Sé")


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
    this phone saw them (timestamps have one-second precision, too coarse to sort a live chat).
    Reactions, edits and deletions act on the message they name instead of adding a bubble."""

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
        self._files: dict[str, tuple[bytes, str]] = {}  # the contact's uploads, by message id
        # One sync at a time: two concurrent polls would append the same outbox items twice.
        self._lock = asyncio.Lock()

    async def _call(
        self, method: str, path: str, body: Any = None, *, form: aiohttp.FormData | None = None
    ) -> dict[str, Any]:
        url = f"{self._api}/_simulator/{self.instance}{path}"
        payload: dict[str, Any] = {"data": form} if form is not None else {"json": body}
        try:
            async with self._http.request(method, url, headers=self._headers, **payload) as resp:
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

    def _find(self, message_id: Any) -> dict[str, Any] | None:
        return next((m for m in reversed(self.messages) if m["id"] == message_id), None)

    def _fold(self, item: dict[str, Any]) -> None:
        action = item.get("action")
        if action == "message" and item.get("to") == self.contact.jid:
            self._typing = False
            kind = item.get("kind", "text")
            if kind in ("reaction", "edit", "revoke"):
                self._fold_action(kind, item)
                return
            entry: dict[str, Any] = {
                "id": item.get("id"),
                "from": "business",
                "kind": kind,
                "text": item.get("text") or ("" if item.get("media") else _placeholder(item)),
                "timestamp": item.get("timestamp"),
            }
            media = item.get("media")
            if isinstance(media, dict):
                entry["media"] = {
                    "kind": media.get("kind") or kind,
                    "mimetype": media.get("mimetype"),
                    "fileName": media.get("fileName"),
                    "size": media.get("size"),
                    "url": f"/api/media/{media.get('handle')}",
                }
            if item.get("replyTo"):
                entry["replyTo"] = item["replyTo"]
            self.messages.append(entry)
        elif action == "read" and item.get("chat") == self.contact.jid:
            seen = set(item.get("messageIds") or [])
            for msg in self.messages:
                if msg["id"] in seen:
                    msg["status"] = "read"
        elif action == "presence" and item.get("chat") == self.contact.jid:
            self._typing = item.get("state") == "composing"

    def _fold_action(self, kind: str, item: dict[str, Any]) -> None:
        target = self._find(item.get("targetId"))
        if target is None:
            return  # about a message this page never saw (sent before it started)
        if kind == "reaction":
            _set_reaction(target, "business", item.get("emoji") or "")
        elif kind == "edit":
            target["text"], target["edited"] = item.get("text") or "", True
        else:
            _mark_deleted(target)

    async def _deliver(self, body: dict[str, Any], *, form: aiohttp.FormData | None = None) -> str:
        """Deliver one message from the contact. Earlier replies are folded in first, so the page
        shows them above it."""
        await self.sync()
        path = "/media" if form is not None else "/messages"
        answer = await self._call("POST", path, body, form=form)
        return str(answer["ids"][0])

    def _from_contact(self, **fields: Any) -> dict[str, Any]:
        return {"from": self.contact.number, "pushName": self.contact.name, **fields}

    def _check_reply(self, reply_to: str | None) -> None:
        if reply_to is not None and self._find(reply_to) is None:
            raise PhoneInputError("the message replied to is not in this chat")

    async def _append(self, entry: dict[str, Any], reply_to: str | None) -> dict[str, Any]:
        entry.setdefault("timestamp", datetime.now(UTC).isoformat().replace("+00:00", "Z"))
        entry["status"] = "sent"
        if reply_to:
            entry["replyTo"] = reply_to
        async with self._lock:
            self.messages.append(entry)
        return entry

    async def send(self, text: str, reply_to: str | None = None) -> dict[str, Any]:
        """The contact types ``text`` (quoting ``reply_to``): the network delivers it to the instance."""
        text = text.strip()
        if not text:
            raise PhoneInputError("type a message first")
        if len(text) > MAX_TEXT:
            raise PhoneInputError(f"a demo message is at most {MAX_TEXT} characters")
        self._check_reply(reply_to)
        body = self._from_contact(text=text)
        if reply_to:
            body["replyTo"] = reply_to
        message_id = await self._deliver(body)
        return await self._append(
            {"id": message_id, "from": "contact", "kind": "text", "text": text}, reply_to
        )

    async def send_file(
        self,
        data: bytes,
        mimetype: str,
        file_name: str,
        *,
        caption: str = "",
        voice: bool = False,
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """A photo (JPEG/PNG), a voice note (audio with ``voice``), audio, a video, or a document
        (anything else, its file name kept), uploaded to the network as the contact's message."""
        if not data:
            raise PhoneInputError("the file is empty")
        if len(data) > MAX_FILE:
            raise PhoneInputError(f"a demo file is at most {MAX_FILE // (1024 * 1024)} MB")
        caption = caption.strip()
        if len(caption) > MAX_TEXT:
            raise PhoneInputError(f"a caption is at most {MAX_TEXT} characters")
        self._check_reply(reply_to)
        kind = file_kind(mimetype, voice=voice)
        fields = self._from_contact(type=kind, text=caption)
        if reply_to:
            fields["replyTo"] = reply_to
        if kind == "document":
            fields["fileName"] = file_name
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, value)
        form.add_field("file", data, filename=file_name, content_type=mimetype)
        message_id = await self._deliver({}, form=form)
        self._files[message_id] = (data, mimetype)
        while len(self._files) > KEEP_FILES:
            self._files.pop(next(iter(self._files)))
        media = {
            "kind": kind, "mimetype": mimetype, "fileName": file_name, "size": len(data),
            "url": f"/api/files/{message_id}",
        }  # fmt: skip
        entry = {"id": message_id, "from": "contact", "kind": kind, "text": caption, "media": media}
        return await self._append(entry, reply_to)

    async def send_location(
        self, latitude: float, longitude: float, name: str | None = None, reply_to: str | None = None
    ) -> dict[str, Any]:
        """The contact shares a place (WhatsApp's "Location" attachment)."""
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise PhoneInputError("latitude must be within ±90 and longitude within ±180")
        self._check_reply(reply_to)
        body = self._from_contact(type="location", latitude=latitude, longitude=longitude)
        if name:
            body["locationName"] = name
        if reply_to:
            body["replyTo"] = reply_to
        message_id = await self._deliver(body)
        location = {"latitude": latitude, "longitude": longitude, "name": name}
        entry = {
            "id": message_id,
            "from": "contact",
            "kind": "location",
            "text": name or "",
            "location": location,
        }
        return await self._append(entry, reply_to)

    async def react(self, message_id: str, emoji: str) -> dict[str, Any]:
        """The contact reacts to a message of the chat; ``""`` removes its reaction."""
        target = self._find(message_id)
        if target is None or target.get("deleted"):
            raise PhoneInputError("the message reacted to is not in this chat")
        if len(emoji) > MAX_EMOJI or emoji.strip() != emoji:
            raise PhoneInputError("a reaction is one emoji")
        await self._deliver(self._from_contact(type="reaction", targetId=message_id, emoji=emoji))
        async with self._lock:
            _set_reaction(target, "contact", emoji)
        return target

    async def delete(self, message_id: str) -> dict[str, Any]:
        """The contact deletes one of its own messages for everyone (a WhatsApp revoke)."""
        target = self._find(message_id)
        if target is None or target["from"] != "contact" or target.get("deleted"):
            raise PhoneInputError("only the contact's own messages can be deleted")
        await self._deliver(self._from_contact(type="revoke", targetId=message_id))
        async with self._lock:
            _mark_deleted(target)
            self._files.pop(message_id, None)
        return target

    def own_file(self, message_id: str) -> tuple[bytes, str] | None:
        """The bytes of a file the contact sent from this page (kept for the last uploads only)."""
        return self._files.get(message_id)

    async def business_file(self, handle: str) -> bytes:
        """The bytes of an attachment the instance sent, as the phone network received them."""
        url = f"{self._api}/_simulator/{self.instance}/media/{handle}"
        try:
            async with self._http.get(url, headers=self._headers) as resp:
                if resp.status != 200:
                    raise PhoneError(f"RyzeAPI answered HTTP {resp.status}")
                return await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PhoneError(f"RyzeAPI unreachable: {exc or type(exc).__name__}") from exc

    async def _receipts(self) -> None:
        """The phone got the instance's new messages and the person is looking at the chat: a
        ``delivered`` then a ``read`` receipt for each, once, as WhatsApp sends them (Chatwoot's
        message status follows; the bridge never moves it back)."""
        unread = [m for m in self.messages if m["from"] == "business" and not m.get("receipted") and m["id"]]
        if not unread:
            return
        ids = [m["id"] for m in unread]
        for status in ("delivered", "read"):
            await self._call(
                "POST", "/receipts", {"chat": self.contact.number, "messageIds": ids, "status": status}
            )
        for m in unread:
            m["receipted"] = True

    async def snapshot(self) -> dict[str, Any]:
        """What the page shows; the page looking at the chat reads the instance's messages."""
        await self.sync()
        await self._receipts()
        return {
            "instance": self.instance,
            "contact": {"name": self.contact.name, "number": self.contact.number},
            "typing": self._typing,
            "location": {
                "latitude": DEMO_LOCATION[0],
                "longitude": DEMO_LOCATION[1],
                "name": DEMO_LOCATION[2],
            },
            "messages": list(self.messages),
        }

    async def has_business_message(self, text: str) -> bool:
        await self.sync()
        return any(m["from"] == "business" and text in m["text"] for m in self.messages)


def file_kind(mimetype: str, *, voice: bool = False) -> str:
    """The WhatsApp message type a file is sent as, as WhatsApp's own attach menu decides it."""
    main = mimetype.split(";", 1)[0].strip().lower()
    if main.startswith("audio/"):
        return "ptt" if voice else "audio"
    if main in ("image/jpeg", "image/png"):
        return "image"  # WhatsApp sends other image formats (gif, svg, ...) as documents
    if main == "video/mp4":
        return "video"
    return "document"


def _set_reaction(target: dict[str, Any], who: str, emoji: str) -> None:
    reactions = dict(target.get("reactions") or {})
    if emoji:
        reactions[who] = emoji
    else:
        reactions.pop(who, None)
    target["reactions"] = reactions


def _mark_deleted(target: dict[str, Any]) -> None:
    target.update(deleted=True, text="This message was deleted", kind="revoked")
    for key in ("media", "location", "reactions", "edited"):
        target.pop(key, None)


def _placeholder(item: dict[str, Any]) -> str:
    media = item.get("media") or {}
    return f"[{media.get('kind') or item.get('kind') or 'message'}]"


def _error(exc: PhoneError) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise PhoneInputError("expected a JSON body") from exc
    if not isinstance(body, dict):
        raise PhoneInputError("expected a JSON object")
    return body


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PhoneInputError(f"field '{key}' must be a string")
    return value


def create_app(chat: PhoneChat) -> Starlette:
    async def page(_request: Request) -> Response:
        html = resources.files("ryze.demo").joinpath("static/phone.html").read_text(encoding="utf-8")
        return HTMLResponse(html)

    async def state(_request: Request) -> Response:
        try:
            return JSONResponse(await chat.snapshot())
        except PhoneError as exc:
            return _error(exc)

    async def send(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected a JSON body"}, status_code=400)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return JSONResponse({"error": "field 'text' is required"}, status_code=400)
        try:
            return JSONResponse(await chat.send(text, _optional_str(body, "replyTo")))
        except PhoneError as exc:
            return _error(exc)

    async def upload(request: Request) -> Response:
        try:
            async with request.form(max_files=1, max_fields=8) as form:
                file = form.get("file")
                if not isinstance(file, UploadFile):
                    raise PhoneInputError("field 'file' (a file) is required")
                data = await file.read(MAX_FILE + 1)
                fields = {k: v for k, v in form.items() if isinstance(v, str)}
                entry = await chat.send_file(
                    data,
                    file.content_type or "application/octet-stream",
                    file.filename or "file",
                    caption=fields.get("caption", ""),
                    voice=fields.get("voice") in ("1", "true", "on"),
                    reply_to=fields.get("replyTo") or None,
                )
            return JSONResponse(entry)
        except PhoneError as exc:
            return _error(exc)

    async def location(request: Request) -> Response:
        try:
            body = await _json_object(request)
            lat, lon = body.get("latitude"), body.get("longitude")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
                raise PhoneInputError("fields 'latitude' and 'longitude' (numbers) are required")
            assert isinstance(lat, int | float) and isinstance(lon, int | float)
            name, reply_to = _optional_str(body, "name"), _optional_str(body, "replyTo")
            return JSONResponse(await chat.send_location(float(lat), float(lon), name, reply_to))
        except PhoneError as exc:
            return _error(exc)

    async def react(request: Request) -> Response:
        try:
            body = await _json_object(request)
            emoji = body.get("emoji")
            if not isinstance(emoji, str):
                raise PhoneInputError("field 'emoji' is required ('' removes the reaction)")
            return JSONResponse(await chat.react(request.path_params["id"], emoji))
        except PhoneError as exc:
            return _error(exc)

    async def delete(request: Request) -> Response:
        try:
            return JSONResponse(await chat.delete(request.path_params["id"]))
        except PhoneError as exc:
            return _error(exc)

    async def own_file(request: Request) -> Response:
        found = chat.own_file(request.path_params["id"])
        if found is None:
            return JSONResponse({"error": "no such file"}, status_code=404)
        return Response(found[0], media_type=found[1])

    async def business_file(request: Request) -> Response:
        handle = request.path_params["handle"]
        media = next(
            (m["media"] for m in chat.messages if m.get("media", {}).get("url") == f"/api/media/{handle}"),
            None,
        )
        if media is None:  # only what the instance sent to this chat: the page is no open proxy
            return JSONResponse({"error": "no such file"}, status_code=404)
        try:
            data = await chat.business_file(handle)
        except PhoneError as exc:
            return _error(exc)
        return Response(data, media_type=media.get("mimetype") or "application/octet-stream")

    return Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/api/chat", state, methods=["GET"]),
            Route("/api/messages", send, methods=["POST"]),
            Route("/api/files", upload, methods=["POST"]),
            Route("/api/files/{id}", own_file, methods=["GET"]),
            Route("/api/location", location, methods=["POST"]),
            Route("/api/messages/{id}/reaction", react, methods=["POST"]),
            Route("/api/messages/{id}", delete, methods=["DELETE"]),
            Route("/api/media/{handle}", business_file, methods=["GET"]),
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
