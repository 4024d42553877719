"""A fake RyzeAPI link server for the bridge tests (websockets; no import of ryze.api).

It implements the RyzeAPI side of ``/ws/chatwoot/{instance}`` as ``ryze.protocol`` describes it:
a per-instance event log with seqs, ``resume`` → ``ready`` + replay of unacked events after the
watermark, ``ack`` bookkeeping, ``command`` → ``result`` executed once per idempotency id (the
"phone" records what WhatsApp would have sent), and an echo ``message.exchange`` event with
``source=chatwoot`` for every send, as RyzeAPI emits for bridge-caused messages.

Both generations of RyzeAPI: with ``batch = True`` (the default) it grants a ``resume {batch:
true}`` and then sends ``events`` frames (the replay in frames of up to ``max_batch`` events) and
accepts ``acks``; with ``batch = False`` it is an older RyzeAPI that ignores the request, sends one
``event`` per frame and answers an ``acks`` frame with an ``error`` (recorded in ``violations``).
Every frame type sent and received is counted per instance, for assertions on the framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ryze.protocol import (
    AckFrame,
    AcksFrame,
    BatchedEvent,
    CommandFrame,
    ErrorFrame,
    EventFrame,
    EventsFrame,
    PingFrame,
    PongFrame,
    ReadyFrame,
    ResultFrame,
    ResumeFrame,
    dump_frame,
    parse_client_frame,
)

TOKEN = "bridge-token-for-tests"


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def envelope(event: str, data: dict[str, Any], instance: str) -> dict[str, Any]:
    return {
        "event": event,
        "data": data,
        "instanceData": {"baseUrl": "http://ryzeapi.test", "instance": instance},
    }


def text_message(
    wa_id: str,
    chat: str,
    text: str,
    *,
    name: str | None = "Ana",
    from_me: bool = False,
    source: str | None = None,
    chat_type: str = "private",
    sender: str | None = None,
    sender_name: str | None = None,
    lid: str | None = None,
    pn: str | None = None,
    command_id: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": wa_id,
        "direction": "outgoing" if from_me else "incoming",
        "timestamp": now_iso(),
        "type": "text",
        "chat": {"jid": chat, "name": name, "type": chat_type, "lid": lid, "pn": pn},
        "sender": {"jid": sender or chat, "name": sender_name or name},
        "fromMe": from_me,
        "source": source or ("phone" if from_me else "contact"),
        "content": {"text": text},
    }
    if command_id:
        message["commandId"] = command_id
    if reply_to:
        message["replyTo"] = reply_to
    return {"id": wa_id, "message": message}


MEDIA_ROUTE = "/internal/media/"


def wa_message(
    wa_id: str, chat: str, kind: str, *, text: str | None = None, chat_type: str = "private", **fields: Any
) -> dict[str, Any]:
    """A ``message.exchange`` of any type: ``fields`` are WAMessage fields (media, location, contacts,
    reaction, edit, revoke, poll, replyTo, isViewOnce, sender, ...), as RyzeAPI's envelope carries them."""
    data = text_message(wa_id, chat, text or "", chat_type=chat_type)
    message = data["message"]
    message["type"] = kind
    message["content"] = {"text": text} if text else {}
    message.update(fields)
    return data


@dataclass
class StoredMedia:
    data: bytes
    mimetype: str
    fails: int = 0  # answer 404 this many times first (RyzeAPI still downloading from WhatsApp)
    requests: int = 0


@dataclass
class InstanceLog:
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    acked: set[int] = field(default_factory=set)
    results: dict[str, ResultFrame] = field(default_factory=dict)
    conn: ServerConnection | None = None
    resumes: list[int] = field(default_factory=list)
    resume_frames: list[ResumeFrame] = field(default_factory=list)
    seq: int = 0
    batch: bool = False  # negotiated on the current connection
    sent: Counter[str] = field(default_factory=Counter)  # frame types sent to the bridge
    received: Counter[str] = field(default_factory=Counter)  # frame types the bridge sent
    acks_received: list[int] = field(default_factory=list)  # every acked seq, in arrival order


class FakeRyzeAPI:
    def __init__(self) -> None:
        self.logs: dict[str, InstanceLog] = {}
        self.phone: list[tuple[str, str, dict[str, Any]]] = []  # (instance, action, params)
        # mark_read commands (read receipts sent for the customer's messages), kept out of `phone`
        self.read_marks: list[tuple[str, dict[str, Any]]] = []
        self.commands_seen: list[str] = []
        self.url = ""
        self.refuse = False
        self.refuse_status = 503
        self.echo = True
        self.result_hook: Callable[[CommandFrame], ResultFrame | None] | None = None
        self.hold_results = False
        self.batch = True  # False: an older RyzeAPI, without events/acks frames
        # False: an older RyzeAPI that ignores a send's markRead (read marks need mark_read commands)
        self.mark_read_on_send = True
        self.max_batch = 64
        self.violations: list[str] = []
        self.media: dict[str, StoredMedia] = {}  # "instance/message_id" → the file the media route serves
        self._ids = itertools.count(1)

    def add_media(self, instance: str, wa_id: str, data: bytes, mimetype: str, *, fails: int = 0) -> str:
        """Serve ``data`` on the media route (after ``fails`` 404s); the URL ``MediaInfo.url`` carries."""
        self.media[f"{instance}/{wa_id}"] = StoredMedia(data, mimetype, fails)
        return f"{self.url}{MEDIA_ROUTE}{instance}/{wa_id}"

    def log(self, instance: str) -> InstanceLog:
        return self.logs.setdefault(instance, InstanceLog())

    # ------------------------------------------------------------------ test API

    async def emit(self, instance: str, event: str, data: dict[str, Any]) -> int:
        log = self.log(instance)
        log.seq += 1
        env = envelope(event, data, instance)
        log.events.append((log.seq, env))
        if log.conn is not None:
            with contextlib.suppress(Exception):
                await self._send_events(log, log.conn, [(log.seq, env)])
        return log.seq

    async def _send_events(
        self, log: InstanceLog, ws: ServerConnection, events: list[tuple[int, dict[str, Any]]]
    ) -> None:
        if log.batch:
            for start in range(0, len(events), self.max_batch):
                chunk = events[start : start + self.max_batch]
                items = [BatchedEvent.model_validate({"seq": s, "event": e}) for s, e in chunk]
                await ws.send(dump_frame(EventsFrame(events=items)))
                log.sent["events"] += 1
            return
        for seq, env in events:
            await ws.send(dump_frame(EventFrame.model_validate({"seq": seq, "event": env})))
            log.sent["event"] += 1

    async def drop(self, instance: str) -> None:
        conn = self.log(instance).conn
        if conn is not None:
            await conn.close()

    def unacked(self, instance: str) -> list[int]:
        log = self.log(instance)
        return [s for s, _ in log.events if s not in log.acked]

    def connected(self, instance: str) -> bool:
        return self.log(instance).conn is not None

    # ------------------------------------------------------------------ server

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse:
            return connection.respond(self.refuse_status, "refused by the test\n")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return connection.respond(401, "bad token\n")
        if request.path.startswith(MEDIA_ROUTE):
            return self._serve_media(connection, request.path[len(MEDIA_ROUTE) :])
        if not request.path.startswith("/ws/chatwoot/"):
            return connection.respond(404, "no route\n")
        return None

    def _serve_media(self, connection: ServerConnection, key: str) -> Response:
        """RyzeAPI's GET /internal/media/{instance}/{message_id}: the bytes, or 404 while not ready."""
        stored = self.media.get(key)
        if stored is None:
            return connection.respond(404, "no such media\n")
        stored.requests += 1
        if stored.fails > 0:
            stored.fails -= 1
            return connection.respond(404, "media not downloaded yet\n")
        headers = Headers({"Content-Type": stored.mimetype, "Content-Length": str(len(stored.data))})
        return Response(200, "OK", headers, stored.data)

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        instance = ws.request.path.rsplit("/", 1)[-1]
        log = self.log(instance)
        old = log.conn
        if old is not None:
            await old.close()
        first = parse_client_frame(await ws.recv())
        assert isinstance(first, ResumeFrame), first
        log.resumes.append(first.after)
        log.resume_frames.append(first)
        log.batch = self.batch and first.batch
        replay = [(s, e) for s, e in log.events if s > first.after and s not in log.acked]
        ready = ReadyFrame(instance=instance, last_seq=log.seq, pending=len(replay))
        if log.batch:
            ready.batch = True
        ready.mark_read_on_send = self.mark_read_on_send and first.mark_read_on_send
        # An older RyzeAPI has no such field: leave it out of its answer entirely.
        unknown = set() if self.batch else {"batch"}
        if not self.mark_read_on_send:
            unknown.add("mark_read_on_send")
        await ws.send(ready.model_dump_json(exclude=unknown))
        await self._send_events(log, ws, replay)
        log.conn = ws
        try:
            async for raw in ws:
                frame = parse_client_frame(raw)
                log.received[frame.type] += 1
                if isinstance(frame, AcksFrame):
                    if not log.batch:  # an older RyzeAPI cannot read it: the acks would be lost
                        self.violations.append(f"acks frame on a connection without batching: {raw!r}")
                        await ws.send(dump_frame(ErrorFrame(message="unreadable frame: unknown type")))
                        continue
                    log.acked.update(frame.seqs)
                    log.acks_received.extend(frame.seqs)
                elif isinstance(frame, AckFrame):
                    log.acked.add(frame.seq)
                    log.acks_received.append(frame.seq)
                elif isinstance(frame, CommandFrame):
                    asyncio.get_running_loop().create_task(self._command(instance, ws, frame))
                elif isinstance(frame, PingFrame):
                    await ws.send(dump_frame(PongFrame(ts=frame.ts)))
        except Exception:  # connection dropped
            pass
        finally:
            if log.conn is ws:
                log.conn = None

    async def _command(self, instance: str, ws: ServerConnection, frame: CommandFrame) -> None:
        log = self.log(instance)
        self.commands_seen.append(frame.id)
        result = log.results.get(frame.id)
        if result is None:
            custom = self.result_hook(frame) if self.result_hook else None
            if custom is not None:
                result = custom
            elif frame.action.value == "mark_read":
                self.read_marks.append((instance, frame.params))
                result = ResultFrame(id=frame.id, ok=True)
            else:
                wa_id = f"WA-OUT-{next(self._ids)}"
                self.phone.append((instance, frame.action.value, frame.params))
                result = ResultFrame(id=frame.id, ok=True, wa_message_id=wa_id)
                marks = frame.params.get("markRead")
                if marks and self.mark_read_on_send:  # executed after the send, as RyzeAPI does
                    self.read_marks.append((instance, {"chat": frame.params["to"], "messageIds": marks}))
                elif marks:
                    self.violations.append(f"markRead sent to a RyzeAPI that ignores it: {frame.id}")
                if self.echo and frame.action.value in ("send_text", "send_media"):
                    to = str(frame.params.get("to") or frame.params.get("chat"))
                    data = text_message(
                        wa_id,
                        to,
                        str(frame.params.get("text") or frame.params.get("caption") or ""),
                        from_me=True,
                        source="chatwoot",
                        command_id=frame.id,
                    )
                    await self.emit(instance, "message.exchange", data)
            if result.ok or not result.retryable:  # a retryable failure is not final: the id may run again
                log.results[frame.id] = result
        if self.hold_results:
            return
        with contextlib.suppress(Exception):
            await ws.send(dump_frame(result))


@contextlib.asynccontextmanager
async def run_fake_ryzeapi() -> AsyncIterator[FakeRyzeAPI]:
    fake = FakeRyzeAPI()
    async with serve(fake._handler, "127.0.0.1", 0, process_request=fake._check, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"http://127.0.0.1:{port}"
        yield fake


__all__ = ["TOKEN", "FakeRyzeAPI", "Headers", "run_fake_ryzeapi", "text_message", "wa_message"]
