"""A dedicated thread pool for neonize's FFI calls.

Every call into the Go core blocks a thread. neonize uses ``asyncio.to_thread`` (the loop's
default executor, ``min(32, cpu + 4)`` threads: 6 on a 2-core box), and each connected session
pins one of those threads for its whole life inside ``Neonize()``. A handful of sessions would
starve every later send and download. This pool is sized for the sessions we expect plus
headroom, and grows by one thread for every pinned call so that pinned calls never consume the
headroom.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def default_headroom() -> int:
    """Threads kept free for short FFI calls (send, upload, download)."""
    return max(8, 2 * (os.cpu_count() or 2))


class FfiExecutor:
    def __init__(self, *, expected_sessions: int = 8, headroom: int | None = None) -> None:
        if expected_sessions < 0:
            raise ValueError("expected_sessions must be >= 0")
        self.headroom = default_headroom() if headroom is None else headroom
        if self.headroom < 1:
            raise ValueError("headroom must be >= 1")
        self._expected = expected_sessions
        self._pinned = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self._size(), thread_name_prefix="neonize-ffi")
        self._closed = False
        # Pinned calls whose session gave up on them (stopped the client) while Go kept the thread:
        # kept referenced so their client and ctypes callbacks are never freed under Go.
        self._abandoned: set[asyncio.Future[Any]] = set()

    # --- sizing ---------------------------------------------------------------------------------

    def _size(self) -> int:
        return max(self._expected, self._pinned) + self.headroom

    def _resize(self) -> None:
        # ThreadPoolExecutor has no public resize. `_max_workers` is read on every submit
        # (`_adjust_thread_count`), so raising it lets the pool start more threads; lowering it
        # only stops new ones from starting (idle threads are reused, none are killed).
        self._pool._max_workers = self._size()

    @property
    def max_workers(self) -> int:
        return self._pool._max_workers

    @property
    def pinned(self) -> int:
        return self._pinned

    @property
    def abandoned(self) -> int:
        """Pinned calls still inside Go after their client was stopped (each holds a thread)."""
        return len(self._abandoned)

    def abandon(self, call: asyncio.Future[Any]) -> None:
        """Keep ``call`` (and through it its client) alive until Go returns, however long."""
        if not call.done():
            self._abandoned.add(call)
            call.add_done_callback(self._abandoned.discard)

    def thread_counts(self) -> dict[str, int]:
        return {"ffi_pool_max": self.max_workers, "ffi_pinned": self._pinned, "ffi_abandoned": self.abandoned}

    def expect_sessions(self, count: int) -> None:
        """Called by the engine when sessions are opened or closed."""
        with self._lock:
            self._expected = max(0, count)
            self._resize()

    # --- running calls ----------------------------------------------------------------------------

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def run_pinned(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a call that blocks for a long time (a session's ``Neonize()`` main loop)."""
        with self._lock:
            self._pinned += 1
            self._resize()

        def call() -> T:
            try:
                return fn(*args, **kwargs)
            finally:
                # Release from the worker thread itself: the awaiting task may be cancelled
                # long before the Go call actually returns and frees its thread.
                with self._lock:
                    self._pinned -= 1
                    self._resize()

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, call)

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            # wait=False: a Go call that ignores Stop must not hang process shutdown.
            self._pool.shutdown(wait=False, cancel_futures=True)
