"""One WebSocket link per integration to RyzeAPI's ``/ws/chatwoot/{instance}``.

* Reconnects with jittered exponential backoff; the first frame is ``resume{after=watermark}``.
* Events are handed to ``on_event`` in seq order; ``done(seq)`` is called once the effect is
  committed, which sends ``ack{seq}`` and advances the watermark: the highest seq W such that every
  seq <= W received so far is done (frames arrive in seq order, so seqs never received were already
  acked before and are not owed).
* Batching is asked for in every ``resume`` (``batch: true``). When ``ready`` grants it, RyzeAPI
  sends ``events`` frames, whose events are handed to ``on_event`` one by one exactly as single
  ``event`` frames would be, and the acks due in one burst go out as one ``acks`` frame. Without
  it (an older RyzeAPI) events come one per frame and acks go one per frame, as before.
* Read marks on sends are asked for the same way (``mark_read_on_send: true``); while the current
  connection's ``ready`` grants it, :attr:`marks_read_on_send` is True and the outbound worker puts
  a reply's read marks on its send instead of sending a ``mark_read`` command.
* At most ``max_inflight`` events are held; beyond that the socket is not read (TCP back-pressure).
* Commands: ``await command(frame)`` sends it and waits for the ``result`` with the same id; on a
  dropped link or a time-out it raises :class:`LinkUnavailable`, and the caller retries with the
  same id (RyzeAPI answers a replayed id from its stored result).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ryze.bridge.retry import backoff_delay
from ryze.common.tasks import cancel_and_wait
from ryze.protocol import (
    CLOSE_GONE,
    AckFrame,
    AcksFrame,
    BatchedEvent,
    CommandFrame,
    EventEnvelope,
    EventFrame,
    EventsFrame,
    PingFrame,
    PongFrame,
    ReadyFrame,
    ResultFrame,
    ResumeFrame,
    dump_frame,
    parse_server_frame,
)

log = logging.getLogger(__name__)
# Seqs remembered as done above the watermark (re-acked, not relayed, if offered again); beyond
# this the lowest are forgotten and their redelivery is deduplicated by the database instead.
DONE_ABOVE_LIMIT = 10_000

EventHandler = Callable[[int, EventEnvelope, bool], None]
StateHandler = Callable[[bool, str, bool], Awaitable[None]]  # connected, error, refused
WatermarkSaver = Callable[[int], Awaitable[None]]


class LinkUnavailable(Exception):
    """The command could not be confirmed: link down or no result in time. Retry with the same id."""


class LinkClient:
    def __init__(
        self,
        *,
        integration_id: str,
        url: str,
        token: str,
        watermark: int,
        on_event: EventHandler,
        on_state: StateHandler,
        save_watermark: WatermarkSaver,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        ping_interval: float = 20.0,
        max_inflight: int = 512,
    ) -> None:
        self.integration_id = integration_id
        self.url = url
        self._token = token
        self.watermark = watermark
        self._on_event = on_event
        self._on_state = on_state
        self._save_watermark = save_watermark
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._ping_interval = ping_interval
        self._max_inflight = max_inflight
        self._capacity = asyncio.Semaphore(max_inflight)
        self._inflight: OrderedDict[int, None] = OrderedDict()
        self._max_received = watermark
        self._saved_watermark = watermark
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._saver: asyncio.Task[None] | None = None
        self._results: dict[str, asyncio.Future[ResultFrame]] = {}
        self.ready = asyncio.Event()
        self.last_seq_at_ready = 0
        # Seqs <= this were handed out before the current connection's ready: another connection
        # (a previous run, or another bridge process during an overlapping deploy) may have relayed
        # them or left them half-done. Raised at every ready, never lowered.
        self._replay_until = 0
        self._stopping = False
        self._dirty = asyncio.Event()
        self._unsent_acks: set[int] = set()  # done while the link was down: sent after the next ready
        # Whether the current connection's ready granted batching (acks frames); reset on every drop
        # so a RyzeAPI downgraded between two connections never gets a frame it cannot read.
        self._batch = False
        self._mark_read_on_send = False  # granted by the current connection's ready; reset likewise
        # Acks due, sent by one task per burst: the lanes finishing in one loop iteration (a group
        # commit resolves many at once) share it instead of starting a task per ack.
        self._due_acks: list[int] = []
        self._ack_task: asyncio.Task[None] | None = None
        # Seqs done (committed, acked) above the watermark, i.e. finished while a lower seq is still
        # in flight. A new connection of this process may offer them again (their ack was lost with
        # the old one); they are re-acked like seqs <= watermark instead of being relayed again, so
        # a replay within one run never needs the database to be deduplicated.
        self._done_above: set[int] = set()
        self._done_above_heap: list[int] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self.ready.is_set()

    @property
    def marks_read_on_send(self) -> bool:
        """Whether RyzeAPI, on the current connection, executes a send's ``markRead``."""
        return self._mark_read_on_send and self.ready.is_set()

    @property
    def pending(self) -> int:
        """Events received and not yet done (acked): the inbound queue depth, read by the metrics."""
        return len(self._inflight)

    def start(self, *, delay: float = 0.0) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._run(delay), name=f"link-{self.integration_id}")
            self._saver = asyncio.create_task(self._save_loop(), name=f"link-wm-{self.integration_id}")

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in (self._task, self._saver) if t is not None]
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError):  # already gone: nothing to close
                await ws.close()
        await cancel_and_wait(tasks)
        self._task = self._saver = None
        self._fail_pending("link closed")
        self.ready.clear()
        # events still held were abandoned with their lanes: they are owed again after a restart,
        # and may have been half-done, so the next link verifies its replay against Chatwoot
        self._inflight.clear()
        self._done_above.clear()  # forgotten: the next ready's replay is deduplicated by the database
        self._done_above_heap.clear()
        self._capacity = asyncio.Semaphore(self._max_inflight)
        self._max_received = self.watermark
        await self._flush_watermark()

    # ------------------------------------------------------------------ connection loop

    async def _run(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        attempt = 0
        while not self._stopping:
            error = ""
            refused = False  # RyzeAPI refuses this integration (token, deleted): shown as an error
            try:
                async with connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    compression=None,
                    open_timeout=10,
                    ping_interval=self._ping_interval,
                    ping_timeout=self._ping_interval * 2,
                    max_size=8 * 1024 * 1024,
                    max_queue=16,
                ) as ws:
                    self._ws = ws
                    resume = ResumeFrame(after=self.watermark, batch=True, mark_read_on_send=True)
                    await ws.send(dump_frame(resume))
                    attempt = 0
                    pinger = asyncio.create_task(self._ping(ws), name=f"link-ping-{self.integration_id}")
                    try:
                        await self._read(ws)
                    finally:
                        pinger.cancel()
                    code, reason = ws.close_code, ws.close_reason
                    refused = code == CLOSE_GONE
                    error = f"RyzeAPI closed the link ({code} {reason})".strip()
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                status = exc.response.status_code
                body = (exc.response.body or b"").decode(errors="replace")[:200].strip()
                refused = status in (401, 403, 404)
                error = f"RyzeAPI refused the link (HTTP {status}{': ' + body if body else ''})"
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                error = f"link to RyzeAPI is down: {exc.__class__.__name__}: {exc}"
            finally:
                self._ws = None
                was_ready = self.ready.is_set()
                self.ready.clear()
                self._batch = False
                self._mark_read_on_send = False
                self._fail_pending("link dropped")
            if self._stopping:
                return
            log.info(
                "link down",
                extra={"integration_id": self.integration_id, "error": error, "was_ready": was_ready},
            )
            await self._on_state(False, error, refused)
            if refused:
                attempt = max(attempt, 6)  # no point dialling fast: wait for an operator (or a new set)
            await asyncio.sleep(backoff_delay(attempt, self._backoff_base, self._backoff_max))
            attempt += 1

    async def _ping(self, ws: ClientConnection) -> None:
        """JSON pings on RyzeAPI's cadence (it closes a link silent for 60 s)."""
        while True:
            await asyncio.sleep(self._ping_interval)
            try:
                await ws.send(dump_frame(PingFrame(ts=time.time())))
            except ConnectionClosed:
                return

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                frame = parse_server_frame(raw)
            except pydantic.ValidationError:
                log.warning(
                    "malformed frame from RyzeAPI ignored", extra={"integration_id": self.integration_id}
                )
                continue
            if isinstance(frame, EventsFrame):
                for item in frame.events:  # in order, each exactly as its own frame would be
                    await self._accept_event(item)
            elif isinstance(frame, EventFrame):
                await self._accept_event(frame)
            elif isinstance(frame, ResultFrame):
                fut = self._results.pop(frame.id, None)
                if fut is not None and not fut.done():
                    fut.set_result(frame)
            elif isinstance(frame, ReadyFrame):
                self._note_ready(frame)
                self.ready.set()
                if self._unsent_acks:
                    await self._flush_acks()
                log.info(
                    "link ready",
                    extra={
                        "integration_id": self.integration_id,
                        "last_seq": frame.last_seq,
                        "pending": frame.pending,
                    },
                )
                await self._on_state(True, "", False)
            elif isinstance(frame, PingFrame):
                await ws.send(dump_frame(PongFrame(ts=frame.ts)))
            elif isinstance(frame, PongFrame):
                continue
            else:  # ErrorFrame
                log.warning(
                    "RyzeAPI reported a frame error",
                    extra={"integration_id": self.integration_id, "error": getattr(frame, "message", "")},
                )

    def _note_ready(self, frame: ReadyFrame) -> None:
        self.last_seq_at_ready = frame.last_seq
        self._batch = frame.batch
        self._mark_read_on_send = frame.mark_read_on_send
        self._replay_until = max(self._replay_until, frame.last_seq)

    async def _accept_event(self, item: EventFrame | BatchedEvent) -> None:
        seq = item.seq
        if seq in self._inflight:
            return  # replayed while still being worked on: the ack will follow when it is done
        if seq <= self.watermark or seq in self._done_above:
            # already done and acked (ack lost in a drop): ack again, nothing to redo. Queued with
            # the other due acks, so a replayed batch of done seqs is re-acked in one frame.
            self._queue_ack(seq)
            return
        await self._capacity.acquire()
        self._inflight[seq] = None
        self._max_received = max(self._max_received, seq)
        # replay=True: the seq was handed out before this connection's ready (seq <= its last_seq),
        # so another connection may have relayed it. Later seqs were offered to this one only.
        self._on_event(seq, item.event, seq <= self._replay_until)

    # ------------------------------------------------------------------ acks and watermark

    def done(self, seq: int) -> None:
        """The event's effect is committed: ack it and advance the watermark."""
        if seq not in self._inflight:
            return
        del self._inflight[seq]
        self._capacity.release()
        new_mark = next(iter(self._inflight)) - 1 if self._inflight else self._max_received
        if new_mark > self.watermark:
            self.watermark = new_mark
            self._dirty.set()
            heap = self._done_above_heap
            while heap and heap[0] <= new_mark:
                self._done_above.discard(heapq.heappop(heap))
        if seq > self.watermark:
            self._done_above.add(seq)
            heapq.heappush(self._done_above_heap, seq)
            if len(self._done_above_heap) > DONE_ABOVE_LIMIT:
                # One lane stuck retrying holds the watermark while the others keep finishing: keep
                # memory bounded by forgetting the lowest. A redelivery comes on a new connection,
                # whose ready covers it, so it is checked against the database instead.
                self._done_above.discard(heapq.heappop(self._done_above_heap))
        self._queue_ack(seq)

    def _queue_ack(self, seq: int) -> None:
        self._due_acks.append(seq)
        if self._ack_task is None:
            self._ack_task = asyncio.get_running_loop().create_task(self._send_due_acks())

    async def _send_due_acks(self) -> None:
        try:
            while self._due_acks:
                due, self._due_acks = self._due_acks, []
                await self._send_acks(due)
        finally:
            self._ack_task = None

    async def _send_acks(self, seqs: list[int]) -> None:
        """Ack ``seqs`` on the current connection: one ``acks`` frame when its ready granted
        batching, else one ``ack`` frame each. Whatever cannot be sent waits for the next ready."""
        ws = self._ws
        if ws is None or not self.ready.is_set():
            self._unsent_acks.update(seqs)  # sent after the next ready
            return
        if self._batch:
            try:
                await ws.send(dump_frame(AcksFrame(seqs=seqs)))
            except ConnectionClosed:
                self._unsent_acks.update(seqs)
            return
        for i, seq in enumerate(seqs):
            try:
                await ws.send(dump_frame(AckFrame(seq=seq)))
            except ConnectionClosed:
                self._unsent_acks.update(seqs[i:])
                return

    async def _flush_acks(self) -> None:
        pending, self._unsent_acks = sorted(self._unsent_acks), set()
        await self._send_acks(pending)

    async def _save_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.2)  # coalesce
            self._dirty.clear()
            await self._flush_watermark()

    async def _flush_watermark(self) -> None:
        mark = self.watermark
        if mark == self._saved_watermark:
            return
        try:
            await self._save_watermark(mark)
            self._saved_watermark = mark
        except Exception:  # next flush retries; a stale watermark only means a longer replay
            log.warning(
                "could not persist the watermark",
                extra={"integration_id": self.integration_id},
                exc_info=True,
            )

    # ------------------------------------------------------------------ commands

    async def command(self, frame: CommandFrame, *, budget: float) -> ResultFrame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        if not self.ready.is_set():  # (wait_for costs a task: only when there is something to wait for)
            try:
                await asyncio.wait_for(self.ready.wait(), budget)
            except TimeoutError as exc:
                raise LinkUnavailable("link to RyzeAPI is down") from exc
        ws = self._ws
        if ws is None:
            raise LinkUnavailable("link to RyzeAPI is down")
        fut = self._results.get(frame.id)
        if fut is None or fut.done():
            fut = loop.create_future()
            self._results[frame.id] = fut
        try:
            await ws.send(dump_frame(frame))
        except ConnectionClosed as exc:
            self._results.pop(frame.id, None)
            raise LinkUnavailable("link dropped while sending the command") from exc
        try:
            return await asyncio.wait_for(asyncio.shield(fut), max(0.1, deadline - loop.time()))
        except TimeoutError as exc:
            self._results.pop(frame.id, None)
            raise LinkUnavailable("no result from RyzeAPI in time") from exc

    def _fail_pending(self, reason: str) -> None:
        results, self._results = self._results, {}
        for fut in results.values():
            if not fut.done():
                fut.set_exception(LinkUnavailable(reason))
                fut.exception()  # mark retrieved; the awaiting command re-raises it

    def stats(self) -> dict[str, Any]:
        return {"inflight": len(self._inflight), "watermark": self.watermark, "connected": self.connected}
