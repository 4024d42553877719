"""The server side of the bridge link, ``/ws/chatwoot/{instance}`` (see ``ryze.protocol``).

Per connection: the bridge sends ``resume {after}``; we prune everything ``<= after`` (committed on
its side), answer ``ready`` and stream the log's rows ``> after`` in seq order. Acks delete rows,
out of order allowed. At most ``window`` events are in flight (sent, unacked); the rest stay in the
database and go out as acks free the window, so a slow bridge costs bounded memory.

Batching (negotiated: ``resume {batch: true}`` → ``ready {batch: true}``): the rows one read
returns go out as ``events`` frames (capped in events and bytes) instead of one ``event`` frame
each, and the bridge may ack with ``acks`` frames. Nothing waits for a batch to fill: a frame
carries what was already committed when the sender woke, so latency does not grow. The window
still counts events.

New rows wake the sender through the log's listener. Commands run as tasks (bounded), their
results are sent as they complete. Pings both ways; a link silent for three ping intervals is closed.

One link per instance: a new connection closes the previous one with code 4000.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import orjson
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ryze.api.bridge_link.commands import CommandRunner
from ryze.api.bridge_link.control import InstanceControl
from ryze.api.bridge_link.event_log import EventLog
from ryze.protocol import (
    CLOSE_GONE,
    CONTROL_ACTIONS,
    AckFrame,
    AcksFrame,
    CommandFrame,
    ErrorFrame,
    PingFrame,
    PongFrame,
    ReadyFrame,
    ResultFrame,
    ResumeFrame,
    dump_frame,
    parse_client_frame,
)

log = logging.getLogger(__name__)

CLOSE_REPLACED = 4000  # a newer link for the same instance took over
CLOSE_NO_RESUME = 4001  # the first frame did not arrive in time
CLOSE_TIMEOUT = 4002  # the peer stopped answering pings
CLOSE_BAD_RESUME = 4003  # resume {after} above every seq handed out: refused, the log is kept
CLOSE_SHUTDOWN = 1001
CLOSE_ERROR = 1011  # RyzeAPI failed (e.g. its database); reconnect and resume


@dataclass(frozen=True)
class LinkSettings:
    window: int = 256
    ping_interval: float = 20.0
    resume_timeout: float = 30.0
    max_concurrent_commands: int = 64
    batch: bool = True  # offer `events`/`acks` frames to a bridge that asks (False: behave as before)
    batch_max_events: int = 64  # per `events` frame
    batch_max_bytes: int = 256 * 1024  # per `events` frame, payload characters (one event may exceed it)


def event_frame(seq: int, payload: str) -> str:
    # The payload is already the envelope's JSON; splice it instead of parse + re-serialize.
    return f'{{"type":"event","seq":{seq},"event":{payload}}}'


def events_frame(rows: Sequence[tuple[int, str]]) -> str:
    """An ``events`` frame for ``rows`` (seq order), spliced like ``event_frame``."""
    return '{"type":"events","events":[' + ",".join(f'{{"seq":{s},"event":{p}}}' for s, p in rows) + "]}"


def chunk_rows(
    rows: Sequence[tuple[int, str]], max_events: int, max_bytes: int
) -> Iterator[Sequence[tuple[int, str]]]:
    """Split rows into consecutive frames of at most ``max_events`` events and about ``max_bytes``
    of payload (an event larger than that still goes out, alone): one frame never grows without
    bound however much a read returned."""
    start = size = 0
    for i, (_, payload) in enumerate(rows):
        if i > start and (i - start >= max_events or size + len(payload) > max_bytes):
            yield rows[start:i]
            start, size = i, 0
        size += len(payload)
    if start < len(rows):
        yield rows[start:]


class Link:
    def __init__(self, hub: LinkHub, ws: WebSocket, instance: str, settings: LinkSettings) -> None:
        self.hub = hub
        self.ws = ws
        self.instance = instance
        self.settings = settings
        self.in_flight: set[int] = set()
        self.cursor = 0  # highest seq sent on this connection
        self.batch = False  # negotiated by resume: `events` frames out, `acks` expected in
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._sender: asyncio.Task[None] | None = None
        self._commands: set[asyncio.Task[None]] = set()
        self._command_slots = asyncio.Semaphore(settings.max_concurrent_commands)
        self._closed = False
        self._last_heard = time.monotonic()

    # -- output ---------------------------------------------------------------------------------

    async def send(self, text: str) -> bool:
        if self._closed:
            return False
        async with self._send_lock:
            try:
                await self.ws.send_text(text)
                return True
            except (WebSocketDisconnect, RuntimeError, OSError):
                # The peer is gone; the receive loop sees the disconnect and cleans up.
                self._closed = True
                return False

    async def close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self.ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                # Already closing on the other side is fine: we only want it gone.
                await self.ws.close(code=code, reason=reason)

    def wake(self) -> None:
        self._wake.set()

    # -- the connection's life ------------------------------------------------------------------

    async def run(self) -> None:
        pinger = asyncio.create_task(self._pinger(), name=f"chatwoot-link-ping-{self.instance}")
        try:
            await self._receive_loop()
        except Exception:
            log.exception("bridge link failed", extra={"instance": self.instance})
            await self.close(CLOSE_ERROR, "internal error")
        finally:
            self._closed = True
            pinger.cancel()
            if self._sender is not None:
                self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            if self._sender is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sender
            # Commands keep running: their results are stored and a replay on the next link
            # gets them. Only the sending of the result on this dead link is skipped.

    async def _receive(self) -> str | bytes | None:
        """The next frame's payload (text or binary), or None once the connection is gone."""
        try:
            message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError):  # RuntimeError: we closed it meanwhile
            return None
        if message["type"] == "websocket.disconnect":
            return None
        data: str | bytes | None = message.get("text")
        if data is None:
            data = message.get("bytes")
        return data if data is not None else b""

    async def _receive_loop(self) -> None:
        try:
            first = await asyncio.wait_for(self._receive(), self.settings.resume_timeout)
        except TimeoutError:
            await self.close(CLOSE_NO_RESUME, "expected a resume frame")
            return
        while first is not None and not self._closed:
            await self._handle(first)
            first = await self._receive()

    async def _handle(self, raw: str | bytes) -> None:
        self._last_heard = time.monotonic()
        try:
            frame = parse_client_frame(raw)
        except ValidationError as exc:
            refused = unknown_command(raw, exc)
            if refused is not None:  # a newer bridge's action: answer its id, so it need not wait
                await self.send(dump_frame(refused))
                return
            await self.send(dump_frame(ErrorFrame(message=f"unreadable frame: {exc.errors()[0]['msg']}")))
            return
        if isinstance(frame, AcksFrame):
            # Accepted whatever was negotiated: understanding it costs nothing, and a bridge that
            # sends it early loses nothing.
            for seq in frame.seqs:
                self.in_flight.discard(seq)
            self.hub.log.ack_many(self.instance, frame.seqs)
            self._wake.set()
        elif isinstance(frame, AckFrame):
            self.in_flight.discard(frame.seq)
            self.hub.log.ack(self.instance, frame.seq)
            self._wake.set()
        elif isinstance(frame, CommandFrame):
            # Waiting for a slot here stops reading: the bridge's sends back up (bounded memory).
            await self._command_slots.acquire()
            task = asyncio.create_task(self._command(frame), name=f"chatwoot-command-{frame.id}")
            self._commands.add(task)
            task.add_done_callback(self._commands.discard)
        elif isinstance(frame, ResumeFrame):
            await self._resume(
                frame.after,
                batch=frame.batch and self.settings.batch,
                mark_read_on_send=frame.mark_read_on_send,
            )
        elif isinstance(frame, PingFrame):
            await self.send(dump_frame(PongFrame(ts=frame.ts)))
        # A pong only refreshes _last_heard (done above).

    async def _resume(self, after: int, *, batch: bool, mark_read_on_send: bool = False) -> None:
        if self._sender is not None:  # a second resume on the same link restarts the stream
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        after = max(after, 0)
        last_seq, _ = await self.hub.log.stats(self.instance, after=after)
        if after > last_seq:
            # The bridge claims events this log never handed out (RyzeAPI's database was restored
            # or replaced under it): pruning "everything up to after" would delete every event
            # still waiting, unseen. Refuse and keep them; the operator reconciles the watermark.
            log.error(
                "bridge resumed beyond the event log; refused, log kept",
                extra={"instance": self.instance, "after": after, "last_seq": last_seq},
            )
            message = f"resume after {after} is beyond the last seq {last_seq}; the event log was kept"
            await self.send(dump_frame(ErrorFrame(message=message)))
            await self.close(CLOSE_BAD_RESUME, "resume beyond the last seq")
            return
        await self.hub.log.prune_upto(self.instance, after)
        last_seq, pending = await self.hub.log.stats(self.instance, after=after)
        self.in_flight.clear()
        self.cursor = after
        self.batch = batch
        # A send's markRead is executed whatever the connection (commands.py): the answer only
        # tells a bridge that asked that this RyzeAPI understands it.
        ready = ReadyFrame(
            instance=self.instance,
            last_seq=last_seq,
            pending=pending,
            batch=batch,
            mark_read_on_send=mark_read_on_send,
        )
        await self.send(dump_frame(ready))
        self._sender = asyncio.create_task(self._send_loop(), name=f"chatwoot-link-send-{self.instance}")

    async def _send_loop(self) -> None:
        try:
            await self._stream()
        except Exception:
            # The log could not be read (database trouble): drop the link, the bridge reconnects
            # and resumes; nothing is lost because nothing left the log.
            log.exception("bridge link sender failed", extra={"instance": self.instance})
            await self.close(CLOSE_ERROR, "internal error")

    async def _stream(self) -> None:
        while not self._closed:
            self._wake.clear()
            room = self.settings.window - len(self.in_flight)
            if room > 0:
                rows = await self.hub.log.read(self.instance, after=self.cursor, limit=room)
                if self.batch:
                    # What this read returned goes out now, in as few frames as the caps allow;
                    # never held back waiting for more. In flight before sent, as below.
                    settings = self.settings
                    for chunk in chunk_rows(rows, settings.batch_max_events, settings.batch_max_bytes):
                        self.in_flight.update(seq for seq, _ in chunk)
                        self.cursor = chunk[-1][0]
                        if not await self.send(events_frame(chunk)):
                            return
                else:
                    for seq, payload in rows:
                        self.in_flight.add(seq)
                        self.cursor = seq
                        if not await self.send(event_frame(seq, payload)):
                            return
                if len(rows) == room:
                    continue  # maybe more waiting and the window may have room again
            await self._wake.wait()

    async def _command(self, frame: CommandFrame) -> None:
        try:
            if frame.action.value in CONTROL_ACTIONS:
                control = self.hub.control
                result = (
                    await control.run(self.instance, frame)
                    if control is not None
                    else ResultFrame(id=frame.id, ok=False, error="instance control is not available here")
                )
            else:
                result = await self.hub.commands.run(self.instance, frame)
            await self.send(dump_frame(result))
        finally:
            self._command_slots.release()

    async def _pinger(self) -> None:
        interval = self.settings.ping_interval
        while not self._closed:
            await asyncio.sleep(interval)
            if time.monotonic() - self._last_heard > 3 * interval:
                log.warning("bridge link silent, closing", extra={"instance": self.instance})
                await self.close(CLOSE_TIMEOUT, "no frames from the bridge")
                return
            await self.send(dump_frame(PingFrame(ts=time.time())))


def unknown_command(raw: str | bytes, exc: ValidationError) -> ResultFrame | None:
    """A ``command`` frame refused only for its action (a newer bridge's): the error result for
    its id. None when the frame is unreadable for any other reason."""
    if not any(tuple(e.get("loc", ()))[:2] == ("command", "action") for e in exc.errors()):
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    command_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(command_id, str) or not command_id:
        return None
    action = str(body.get("action"))[:40]
    return ResultFrame(id=command_id, ok=False, error=f"RyzeAPI does not know the command action {action!r}")


class LinkHub:
    """The active link of each instance."""

    def __init__(
        self,
        log_: EventLog,
        commands: CommandRunner,
        settings: LinkSettings,
        control: InstanceControl | None = None,
    ) -> None:
        self.log = log_
        self.commands = commands
        self.control = control  # connect / logout / reconnect / status (None: answered as errors)
        self.settings = settings
        self._links: dict[str, Link] = {}

    def connected(self, instance: str) -> bool:
        return instance in self._links

    @property
    def count(self) -> int:
        """Instances with a live bridge link (for metrics)."""
        return len(self._links)

    async def serve(self, ws: WebSocket, instance: str) -> None:
        """Run an accepted connection until it ends."""
        link = Link(self, ws, instance, self.settings)
        previous = self._links.get(instance)
        self._links[instance] = link
        self.log.listen(instance, link.wake)
        if previous is not None:
            log.info("bridge link replaced", extra={"instance": instance})
            await previous.close(CLOSE_REPLACED, "replaced by a newer link")
        log.info("bridge link connected", extra={"instance": instance})
        try:
            await link.run()
        finally:
            if self._links.get(instance) is link:
                del self._links[instance]
                self.log.unlisten(instance, link.wake)
            log.info("bridge link closed", extra={"instance": instance})

    async def disconnect(
        self, instance: str, code: int = CLOSE_GONE, reason: str = "integration removed"
    ) -> None:
        link = self._links.get(instance)
        if link is not None:
            await link.close(code, reason)

    async def close_all(self) -> None:
        for link in list(self._links.values()):
            await link.close(CLOSE_SHUTDOWN, "RyzeAPI is shutting down")
