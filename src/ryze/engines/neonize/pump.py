"""Per-session ordered event queue.

neonize calls us from a Go thread and, left to itself, would schedule one handler coroutine per
event with ``run_coroutine_threadsafe`` and drop the future: handler exceptions vanish and two
handlers interleave at their awaits (a relay could see an edit before the message it edits).
Instead, every item goes into one ``asyncio.Queue`` per session, drained by one task that awaits
the handler, so items are handled strictly in arrival order, one at a time.

Back-pressure: a foreign thread waits for a free slot before it enqueues (Go's per-session
channel then fills and whatsmeow slows down) instead of growing memory without bound. Items the
loop itself submits (our own sends, state changes) never block.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

_STOP = object()


class EventPump:
    def __init__(
        self, handler: Callable[[Any], Awaitable[None]], *, maxsize: int = 256, name: str = ""
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._handler = handler
        self._name = name
        self._slots = threading.BoundedSemaphore(maxsize)
        self._queue: asyncio.Queue[tuple[Any, bool]] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = threading.Event()

    def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._task = self._loop.create_task(self._drain(), name=f"neonize-pump-{self._name}")

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def submit(self, item: Any) -> None:
        """From the event loop's thread. Never blocks."""
        if not self.closed:
            self._queue.put_nowait((item, False))

    def submit_threadsafe(self, item: Any) -> bool:
        """From any other thread. Blocks while the queue is full; False once the pump is closed."""
        loop = self._loop
        if self.closed:
            return False
        if loop is None:
            log.warning("event dropped: session pump not started", extra={"instance": self._name})
            return False
        if threading.get_ident() == self._loop_thread:
            # Waiting for a slot on the loop's own thread would deadlock the loop.
            self.submit(item)
            return True
        while not self._slots.acquire(timeout=0.25):
            if self.closed:
                return False
        if self.closed:
            self._slots.release()
            return False
        try:
            loop.call_soon_threadsafe(self._queue.put_nowait, (item, True))
        except RuntimeError:  # the loop is closed: the process is shutting down
            self._slots.release()
            return False
        return True

    async def join(self) -> None:
        """Wait until everything submitted so far has been handled."""
        await self._queue.join()

    async def _drain(self) -> None:
        while True:
            item, bounded = await self._queue.get()
            try:
                if item is _STOP:
                    return
                await self._handler(item)
            except Exception:
                log.exception("event handler failed", extra={"instance": self._name})
            finally:
                if bounded:
                    self._slots.release()
                self._queue.task_done()

    async def aclose(self, grace: float = 5.0) -> None:
        """Handle what is queued (for up to ``grace`` seconds), then stop."""
        if self.closed:
            return
        self._closed.set()
        task = self._task
        if task is None:
            return
        self._queue.put_nowait((_STOP, False))
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
