"""The one place that imports neonize.

neonize ships no type information, so everything it exports is ``Any`` to mypy. Keeping the
imports here (and re-exporting them under stable names) keeps the rest of the package typed and
makes the version-specific hacks for neonize 0.5.2 easy to find:

* ``RyzeClient`` routes every FFI call through our executor instead of ``asyncio.to_thread``
  (the loop's default executor is far too small once a few sessions pin a thread each), and
  delivers the QR and login-status callbacks to the session's own loop instead of neonize's
  set-once ``event_global_loop``.
* Every FFI call, ours and the few neonize makes on its own (the ``Stop`` of a cancelled connect
  task), goes through the process-wide Go-core lock (``golock.py``): the Go side's client maps
  have no lock of their own. neonize's GC-time ``Stop`` finalizer is disarmed: Ryze stops each
  client itself, under the lock, and only once its ``Neonize()`` call is done with the maps.
* neonize runs ``logging.basicConfig`` at import time; we take its handler off the root logger
  so Ryze's JSON logging stays the only output.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

try:
    import neonize.aioze.client as _aio_client
    import neonize.aioze.events as _aio_events
    from neonize._binder import ProxySettings
    from neonize._binder import gocode as _gocode
    from neonize.aioze.client import NewAClient
    from neonize.builder import build_edit
    from neonize.events import INT_TO_EVENT
    from neonize.exc import DownloadError, NeonizeError
    from neonize.proto import Neonize_pb2 as pb
    from neonize.proto.waCommon.WACommon_pb2 import MessageKey
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
    from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
    from neonize.utils.enum import ChatPresence, ChatPresenceMedia, MediaType, ReceiptType
except ImportError as exc:  # pragma: no cover - depends on the machine
    if "libmagic" in str(exc):
        # neonize imports python-magic at import time, which needs the system library.
        raise ImportError("The neonize engine needs libmagic1: apt-get install libmagic1") from exc
    raise

from ryze.engines.neonize.executor import FfiExecutor
from ryze.engines.neonize.golock import GO_CORE_LOCK, REGISTERS, WRITERS, GoCoreLock, Registration

__all__ = [
    "INT_TO_EVENT",
    "ChatPresence",
    "ChatPresenceMedia",
    "DownloadError",
    "MediaType",
    "MessageKey",
    "NeonizeError",
    "ProxySettings",
    "ReceiptType",
    "RyzeClient",
    "build_edit",
    "pb",
    "reset_event_loop",
    "wa",
]

# Undo neonize's import-time logging.basicConfig (it would duplicate every log line).
# (`neonize.utils.log` the module is shadowed by the `log` logger `neonize.utils` re-exports.)
_neonize_handler = getattr(sys.modules.get("neonize.utils.log"), "stream_handler", None)
if _neonize_handler is not None:
    logging.getLogger().removeHandler(_neonize_handler)
# The level of this logger is what neonize tells whatsmeow to log at (forwarded back as the
# `whatsmeow.*` loggers). Unset, it maps to an empty level string; make it INFO unless the
# operator configured it: DEBUG would marshal every websocket frame through ctypes.
_level_logger = logging.getLogger("neonize.utils.log")
if _level_logger.level == logging.NOTSET:
    _level_logger.setLevel(logging.INFO)

# Event codes (neonize/events.py EVENT_TO_INT) the session subscribes to. The list is sent to Go
# at connect time; an event type not listed here is never marshalled at all.
SUBSCRIBED_CODES: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 17, 18)
DEVICE_CODE = 0  # Go pushes our own Device (JID) with this code; not a subscription


def reset_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    """neonize sets ``event_global_loop`` only on the first connect of the process, so a later
    loop (a test, a restarted app) would get callbacks scheduled on a dead loop. Our client does
    not use it, but neonize's own pair-code helper does: point it at the running loop."""
    _aio_events.event_global_loop = loop


def locked(lock: GoCoreLock, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a Go entry point) wrapped in the lock mode its map access needs."""

    def call(*args: Any) -> Any:
        with lock.exclusive() if name in WRITERS else lock.shared():
            return fn(*args)

    return call


class _LockedGoCode:
    """Replaces the ``gocode`` global of ``neonize.aioze.client``, which neonize calls directly in
    two places (``Stop`` when a connect task is cancelled, ``GetAllDevices``): same calls, locked."""

    def __init__(self, lock: GoCoreLock) -> None:
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        fn = getattr(_gocode, name)
        return locked(self._lock, name, fn) if callable(fn) else fn


_aio_client.gocode = _LockedGoCode(GO_CORE_LOCK)


class _FfiRouter:
    """Stands in for neonize's ``async_gocode``: same attribute names, but calls run on our
    executor, under the Go-core lock. ``Neonize`` (the call that blocks for the whole life of a
    session) is run pinned, which widens the pool so it never eats the headroom that sends and
    downloads need; it holds the lock alone until the client is registered (``registration``)."""

    def __init__(self, executor: FfiExecutor, lock: GoCoreLock = GO_CORE_LOCK, name: str = "") -> None:
        self._executor = executor
        self._lock = lock
        self._name = name
        self.registration: Registration | None = None
        self.stop_requested = False

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(_gocode, name)
        if name == REGISTERS:
            return partial(self._run_neonize, fn)
        if name == "Stop":
            # Set before Stop queues for the lock: a Neonize() still waiting behind it must not
            # register a client that nobody would ever stop.
            self.stop_requested = True
        return partial(self._executor.run, locked(self._lock, name, fn))

    async def _run_neonize(self, fn: Callable[..., Any], *args: Any) -> Any:
        registration = self.registration = Registration(self._lock, name=self._name)

        def call() -> Any:
            registration.begin()
            try:
                if self.stop_requested:
                    return b""  # stopped before it started: neonize reads b"" as "no error"
                return fn(*args)
            finally:
                registration.end()

        return await self._executor.run_pinned(call)

    def lease_shared(self) -> None:
        self._lock.lease_shared()

    def registered(self) -> None:
        """A callback arrived from the running ``Neonize()``: its map writes are done."""
        registration = self.registration
        if registration is not None:
            registration.end()


# Callback signatures (Go thread): (raw event, code) / (QR string) / (login status string)
EventCallback = Callable[[bytes, int], None]
TextCallback = Callable[[str], None]


class RyzeClient(NewAClient):  # type: ignore[misc]  # neonize is untyped
    """A neonize client whose callbacks go to the owning session, never to a global loop."""

    def __init__(
        self,
        name: str,
        *,
        uuid: str,
        executor: FfiExecutor,
        on_event: EventCallback,
        on_qr: TextCallback,
        on_login_status: TextCallback,
    ) -> None:
        # How the device is listed on the phone (Linked devices): "Ryze", as a Chrome client.
        super().__init__(name, uuid=uuid, props=DeviceProps(os="Ryze", platformType=DeviceProps.CHROME))
        # Name-mangled private attribute of NewAClient (0.5.2): every FFI call goes through it.
        self._router = _FfiRouter(executor, name=uuid)
        self._NewAClient__client = self._router
        # neonize's weakref finalizer calls Stop at garbage collection: from any thread, outside our
        # lock, possibly while Go still reads this client's map entry. Sessions stop clients.
        self._stop_finalizer.detach()
        self._on_event = on_event
        self._on_qr_cb = on_qr
        self._on_login_status_cb = on_login_status
        # The keys are what Go subscribes us to; the handlers are never called because
        # `execute` below replaces neonize's dispatcher (which drops handler exceptions and
        # interleaves handlers of consecutive events).
        self.event.list_func = dict.fromkeys(SUBSCRIBED_CODES, _not_called)
        self.event.execute = self._execute

    # --- Go-thread callbacks (bound into ctypes at connect time) ------------------------------

    def _execute(self, _uuid: bytes, binary: int, size: int, code: int) -> None:
        self._router.registered()  # the first event (our Device) follows Go's last map read
        try:
            # Events with no fields (StreamReplaced, KeepAliveRestored…) may arrive as NULL/0.
            raw = ctypes.string_at(binary, size) if binary and size > 0 else b""
            self._on_event(raw, code)
        except Exception:  # a ctypes callback must never raise: it would only print to stderr
            logging.getLogger(__name__).exception("neonize event callback failed", extra={"code": code})

    # NewAClient.connect binds `self.__onQr` / `self.__onLoginStatus`, i.e. these mangled names:
    # defining them here overrides neonize's versions (which use the global loop).
    def _NewAClient__onQr(self, _uuid: int, qr_ptr: int) -> None:
        self._router.registered()
        try:
            self._on_qr_cb(ctypes.string_at(qr_ptr).decode())
        except Exception:
            logging.getLogger(__name__).exception("neonize QR callback failed")

    def _NewAClient__onLoginStatus(self, _uuid: int, status_ptr: int) -> None:
        self._router.registered()
        # A login status ends the QR loop; Go then looks the client up in its maps again
        # (CallbackFunction, FetchMe). Keep writers (a Stop this status may trigger) out meanwhile.
        self._router.lease_shared()
        try:
            self._on_login_status_cb(ctypes.string_at(status_ptr).decode())
        except Exception:
            logging.getLogger(__name__).exception("neonize login-status callback failed")


async def _not_called(*_args: Any) -> None:  # pragma: no cover - see RyzeClient.__init__
    return None


def parse_event(raw: bytes, code: int) -> Any | None:
    """Decode one event from Go; ``None`` for codes neonize does not know."""
    event_type = INT_TO_EVENT.get(code)
    if event_type is None:
        return None
    return event_type.FromString(raw)
