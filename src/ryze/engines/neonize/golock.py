"""The process-wide lock around neonize's Go-core client maps.

neonize's Go core (``goneonize/main.go``, krypton-byte/neonize) keeps every client in plain Go maps
with no lock: ``clients``, ``StopSignal`` and ``eventChannel``. ``Neonize()`` writes all three when a
client starts, ``Stop`` deletes from them, and every other call (``SendMessage``, ``Upload``,
``DownloadAny``, ``MarkRead``…) reads ``clients[id]``. Go aborts the whole process on a concurrent
map write, or a read during a write (``fatal error: concurrent map writes`` cannot be recovered), so
two sessions starting at once, or a stop during another session's send, can kill RyzeAPI.

All FFI calls therefore go through one readers-writer lock: calls that only read the maps share it;
``Stop``/``StopAll`` hold it alone; and ``Neonize()`` holds it alone from its call until the client is
registered. That moment is not reported by Go, so the hold ends at the first sign of life from the
call (its first QR code, login status or event, or its return), or after ``REGISTRATION_TIMEOUT``.
After a QR series ends, ``Neonize()`` reads the maps once more (``CallbackFunction`` and ``FetchMe``
look up ``eventChannel[id]`` and ``clients[id]``); the login-status callback that precedes those
reads takes a short shared lease (``lease_shared``) so no writer runs while they happen.

Writers are preferred (a waiting start or stop holds back new sends) so a steady stream of sends
cannot starve a start-up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

REGISTRATION_TIMEOUT = 10.0
"""Longest a starting client holds the lock alone (getDB + registration + the first dial)."""
SHARED_LEASE = 1.0
"""How long a QR series' end keeps writers out while Go looks its client up again."""

# FFI entry points that write the maps. Everything else is treated as a reader.
WRITERS = frozenset({"Stop", "StopAll"})
REGISTERS = "Neonize"


class GoCoreLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self.contended = 0  # acquisitions that had to wait (exposed for tests and metrics)

    # --- shared -----------------------------------------------------------------------------------

    def acquire_shared(self, *, priority: bool = False) -> None:
        """``priority``: wait only for a writer that holds the lock, not for waiting ones (a Go
        callback must not queue behind a stop that could delete the entry it is about to read)."""
        with self._cond:
            waited = False
            while self._writer or (self._writers_waiting and not priority):
                waited = True
                self._cond.wait()
            self.contended += waited
            self._readers += 1

    def release_shared(self) -> None:
        with self._cond:
            if self._readers <= 0:
                raise RuntimeError("release_shared without acquire_shared")
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

    def lease_shared(self, seconds: float = SHARED_LEASE) -> None:
        """Hold a shared lock for ``seconds`` from any thread (released by a timer)."""
        self.acquire_shared(priority=True)
        timer = threading.Timer(seconds, self.release_shared)
        timer.daemon = True
        timer.start()

    # --- exclusive --------------------------------------------------------------------------------

    def acquire_exclusive(self) -> None:
        with self._cond:
            waited = False
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    waited = True
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self.contended += waited
            self._writer = True

    def release_exclusive(self) -> None:
        """May be called from another thread than the one that acquired (see ``Registration``)."""
        with self._cond:
            if not self._writer:
                raise RuntimeError("release_exclusive without acquire_exclusive")
            self._writer = False
            self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        self.acquire_exclusive()
        try:
            yield
        finally:
            self.release_exclusive()


class Registration:
    """The exclusive hold of one ``Neonize()`` call: begun on the FFI thread before the call, ended
    once by whichever comes first: a callback from the client, the call's return, or the timeout."""

    def __init__(self, lock: GoCoreLock, *, timeout: float = REGISTRATION_TIMEOUT, name: str = "") -> None:
        self._lock = lock
        self._timeout = timeout
        self._name = name
        self._mutex = threading.Lock()
        self._held = False
        self._ended = False
        self._timer: threading.Timer | None = None

    def begin(self) -> None:
        self._lock.acquire_exclusive()
        with self._mutex:
            if self._ended:  # ended before it began (the client was discarded): give it back
                self._lock.release_exclusive()
                return
            self._held = True
            self._timer = threading.Timer(self._timeout, self._timed_out)
            self._timer.daemon = True
            self._timer.start()

    def end(self) -> None:
        with self._mutex:
            self._ended = True
            if not self._held:
                return
            self._held = False
            if self._timer is not None:
                self._timer.cancel()
            self._lock.release_exclusive()

    def _timed_out(self) -> None:
        with self._mutex:
            still_held = self._held
        if still_held:
            log.warning(
                "neonize client gave no sign of life; releasing the Go-core lock",
                extra={"client": self._name, "seconds": self._timeout},
            )
            self.end()


GO_CORE_LOCK = GoCoreLock()
"""The one lock of the process: neonize's maps are process-wide, so every engine shares it."""
