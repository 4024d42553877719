"""One WhatsApp account (one RyzeAPI instance) on one whatsmeow device.

Threads and loops: neonize calls back from Go threads. Those callbacks only decode and enqueue;
everything else (state changes, translation, the sink) happens in the session's one pump task
on the event loop, in arrival order. The client is created per connection attempt, so a stuck
attempt never shares callbacks with the next one; items from an older attempt ("generation")
are ignored.

Process safety: neonize's Go side keeps clients in a map and dereferences them without a nil
check, so calling almost any method before ``Neonize()`` has registered the client (or after
``Stop`` removed it) crashes the whole process. Sends therefore require the ``connected`` state,
and the pairing code is only requested after the first QR code arrived (the socket is up).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from ryze.engines.base import (
    ConnectionEvent,
    ConnectionState,
    ConnectResult,
    DomainEvent,
    EngineError,
    EventSink,
    Media,
    MessageEvent,
    NotConnectedError,
    OutgoingMedia,
    Party,
    ProfilePicture,
    Quote,
    SentMessage,
    SessionStopped,
    deliver_until_stored,
)
from ryze.engines.neonize import send
from ryze.engines.neonize._neonize import (
    DEVICE_CODE,
    ChatPresence,
    ChatPresenceMedia,
    ProxySettings,
    ReceiptType,
    RyzeClient,
    parse_event,
    pb,
    reset_event_loop,
    wa,
)
from ryze.engines.neonize.executor import FfiExecutor
from ryze.engines.neonize.pump import EventPump
from ryze.engines.neonize.storage import SessionStore
from ryze.engines.neonize.translate import (
    group_subject,
    translate_connection,
    translate_group_info,
    translate_joined_group,
    translate_message,
    translate_receipt,
)
from ryze.engines.neonize.translate.history import translate_history
from ryze.engines.neonize.translate.jids import GROUP_SERVER, is_group, jid_str, parse_jid, timestamp
from ryze.engines.neonize.translate.messages import with_group_subject, with_saved_name

log = logging.getLogger(__name__)

HISTORY_SYNC_CODE = 13  # neonize INT_TO_EVENT: HistorySyncEv
MESSAGE_CODE = 17
RECEIPT_CODE = 18
JOINED_GROUP_CODE = 21
GROUP_INFO_CODE = 22
SUBJECT_CACHE_SIZE = 4096
"""Group subjects kept per session (least recently used out first)."""
GROUP_INFO_TIMEOUT = 10.0
"""The pump (every later event of the session) waits on a subject lookup at most this long."""
SUBJECT_RETRY_SECONDS = 300.0
# A saved (phone-book) name read from whatsmeow's contact store is reused this long: the store is
# local, but each read crosses into Go; a rename in the phone book shows within this time.
SAVED_NAME_TTL_SECONDS = 600.0
PICTURE_TIMEOUT = 20.0  # seconds for a profile picture's lookup and for its download
PICTURE_MAX_BYTES = 5 * 1024 * 1024  # WhatsApp's full-size pictures are 640×640 JPEGs, ~100 KB
"""After a failed group-info lookup, messages of that group go without a subject this long
before the next lookup: one slow or refused query must not be paid on every message."""
PAIR_STATUS_CODE = 2
STOP_TIMEOUT = 5.0
QR_LIFETIME = 150.0
"""Ryze ends an unscanned QR series itself after this long. whatsmeow's own series (qrchan.go:
the first code 60 s, five more 20 s each) ends at 160 s by disconnecting, and then neonize's
``Neonize()`` goes on to ``FetchMe``, which polls every 100 ms, forever, for a login that will never
come: a spinning thread per expired QR. Stopping the client first (an *expected* disconnect: the
QR emitter returns without closing its channel) leaves the thread parked on that channel instead,
using no CPU. Either way the thread never returns: ``MAX_ABANDONED`` bounds how many pile up."""
MAX_ABANDONED = 32
"""Connection attempts are refused once this many neonize calls are stuck in Go (restart to free)."""

ClientFactory = Callable[..., Any]
"""``(name, *, uuid, executor, on_event, on_qr, on_login_status) -> client``; ``RyzeClient``
in production, a fake in tests."""


# --- items that travel through the pump ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _GoEvent:
    generation: int
    code: int
    event: Any


@dataclass(frozen=True, slots=True)
class _Qr:
    generation: int
    code: str


@dataclass(frozen=True, slots=True)
class _LoginStatus:
    generation: int
    status: str


@dataclass(frozen=True, slots=True)
class _RunEnded:
    generation: int
    error: EngineError | None


@dataclass(frozen=True, slots=True)
class _QrExpired:
    generation: int


@dataclass(frozen=True, slots=True)
class _Emit:
    event: DomainEvent


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: Literal["qr", "connected", "loggedout", "failed"]
    qr: str | None = None
    error: EngineError | None = None


@dataclass(slots=True)
class _Attempt:
    generation: int
    client: Any
    waiter: asyncio.Future[_Outcome]
    task: asyncio.Task[Any] | None = None
    qr_timer: asyncio.TimerHandle | None = None


class _InstanceLog(logging.LoggerAdapter[logging.Logger]):
    """Adds ``instance`` to every record, keeping the call's own ``extra`` (the stock adapter
    replaces it)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def normalize_pair_number(number: str) -> str:
    digits = re.sub(r"[\s()+-]", "", number)
    if not re.fullmatch(r"[0-9]{8,15}", digits):
        raise EngineError(f"Invalid phone number for a pairing code: {number!r} (use international digits)")
    return digits


class NeonizeSession:
    def __init__(
        self,
        instance: str,
        *,
        store: SessionStore,
        sink: EventSink,
        executor: FfiExecutor,
        client_factory: ClientFactory = RyzeClient,
        queue_size: int = 256,
        proxy: str | None = None,
        qr_lifetime: float = QR_LIFETIME,
        max_abandoned: int = MAX_ABANDONED,
    ) -> None:
        self.instance = instance
        self._proxy = proxy
        self._qr_lifetime = qr_lifetime
        self._max_abandoned = max_abandoned
        self._store = store
        self._sink = sink
        self._executor = executor
        self._client_factory = client_factory
        self._state = ConnectionState.DISCONNECTED
        self._me: Party | None = None
        self._qr: str | None = None
        self._pairing_code: str | None = None
        self._attempt: _Attempt | None = None
        self._generation = 0
        self._connect_lock = asyncio.Lock()
        self._pump = EventPump(self._handle, maxsize=queue_size, name=instance)
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._log = _InstanceLog(log, {"instance": instance})
        # Group JID -> subject. whatsmeow's message events carry no subject: it comes from
        # JoinedGroup / GroupInfo events, or from one GetGroupInfo query per group (then cached).
        self._subjects: OrderedDict[str, str | None] = OrderedDict()
        self._subject_failed: dict[str, float] = {}  # group JID -> monotonic time of the failure
        self._saved_names: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    def start(self) -> None:
        self._pump.start()

    # --- Session protocol: state --------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def me(self) -> Party | None:
        return self._me

    # --- connect ------------------------------------------------------------------------------

    async def connect(self, *, pair_number: str | None = None, timeout: float = 60.0) -> ConnectResult:
        """``timeout`` bounds the whole call, including waiting for the connect lock."""
        self._check_open()
        number = normalize_pair_number(pair_number) if pair_number else None
        try:
            async with asyncio.timeout(timeout), self._connect_lock:
                return await self._connect_locked(number)
        except TimeoutError:
            if self._qr is not None and self._attempt is not None:
                # The QR flow is up; only the pairing-code request was slow. Keep the QR.
                raise EngineError(
                    f"WhatsApp did not return a pairing code within {timeout:g} s", retryable=True
                ) from None
            # Stop in the background: connect() must not outlive its timeout waiting for Go.
            self._in_background(self._shutdown(self._detach()))
            self._change_state(
                ConnectionState.DISCONNECTED, reason=f"No answer from WhatsApp within {timeout:g} s"
            )
            raise EngineError(
                f"Could not reach WhatsApp servers within {timeout:g} s (no QR code and no connection)",
                retryable=True,
            ) from None

    async def _connect_locked(self, number: str | None) -> ConnectResult:
        attempt = self._attempt
        if attempt is not None and self._state is ConnectionState.CONNECTED:
            return ConnectResult(state=ConnectionState.CONNECTED)
        if attempt is not None and self._state is ConnectionState.CONNECTING and attempt.waiter.done():
            # Paired a moment ago and whatsmeow is reconnecting: don't restart the flow.
            return ConnectResult(state=ConnectionState.CONNECTING)
        if attempt is not None and self._qr is not None:
            # Pairing already under way: hand out the current QR (and a code when asked).
            code = await self._pair(attempt, number) if number else self._pairing_code
            return ConnectResult(state=ConnectionState.QR_READY, qr=self._qr, pairing_code=code)
        for retry in (False, True):
            attempt = await self._start_attempt()
            outcome = await attempt.waiter
            if outcome.kind == "connected":
                return ConnectResult(state=ConnectionState.CONNECTED)
            if outcome.kind == "qr":
                code = await self._pair(attempt, number) if number else None
                return ConnectResult(state=ConnectionState.QR_READY, qr=outcome.qr, pairing_code=code)
            await self._stop_client()
            if outcome.kind == "loggedout" and not retry:
                # The stored login was unlinked from the phone: forget it and pair afresh.
                self._log.info("stored login was revoked; starting a new pairing")
                await self._store.wipe()
                self._me = None
                continue
            raise outcome.error or EngineError("Could not connect to WhatsApp", retryable=True)
        raise EngineError("Could not connect to WhatsApp", retryable=True)  # pragma: no cover

    async def _start_attempt(self) -> _Attempt:
        await self._stop_client()
        stuck = self._executor.abandoned
        if stuck >= self._max_abandoned:
            # Each expired QR series keeps one thread inside neonize's Go core for good.
            raise EngineError(
                f"{stuck} earlier connection attempts are still held inside neonize's Go core; "
                "restart RyzeAPI to release them before connecting again"
            )
        await self._store.prepare()
        loop = asyncio.get_running_loop()
        self._generation += 1
        generation = self._generation
        self._qr = None
        self._pairing_code = None
        client = self._client_factory(
            self._store.name,
            uuid=f"ryze-{self.instance}-{generation}-{secrets.token_hex(4)}",
            executor=self._executor,
            on_event=partial(self._from_go_event, generation),
            on_qr=partial(self._from_go_qr, generation),
            on_login_status=partial(self._from_go_status, generation),
        )
        attempt = _Attempt(generation=generation, client=client, waiter=loop.create_future())
        self._attempt = attempt
        self._change_state(ConnectionState.CONNECTING)
        reset_event_loop(loop)
        self._log.info("connecting to WhatsApp")
        try:
            attempt.task = await (
                client.connect(ProxySettings(self._proxy)) if self._proxy else client.connect()
            )
        except Exception as exc:
            self._attempt = None
            error = send.engine_error("connect", exc)
            self._change_state(ConnectionState.DISCONNECTED, reason=error.message)
            raise error from exc
        if attempt.task is not None:
            attempt.task.add_done_callback(partial(self._on_run_done, generation))
        return attempt

    async def _pair(self, attempt: _Attempt, number: str) -> str:
        try:
            code = str(await attempt.client.PairPhone(number, True))
        except Exception as exc:
            raise send.engine_error("issue a pairing code", exc) from exc
        self._pairing_code = code
        self._log.info("pairing code issued")  # never log the code itself
        return code

    # --- Go-thread callbacks: decode, enqueue, nothing else ----------------------------------

    def _from_go_event(self, generation: int, raw: bytes, code: int) -> None:
        event = parse_event(raw, code)
        if event is None:
            self._log.debug("unknown neonize event code %s", code)
            return
        self._pump.submit_threadsafe(_GoEvent(generation, code, event))

    def _from_go_qr(self, generation: int, code: str) -> None:
        self._pump.submit_threadsafe(_Qr(generation, code))

    def _from_go_status(self, generation: int, status: str) -> None:
        self._pump.submit_threadsafe(_LoginStatus(generation, status))

    def _on_run_done(self, generation: int, task: asyncio.Task[Any]) -> None:
        error: EngineError | None = None
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            error = send.engine_error("connect", exc)
        self._pump.submit(_RunEnded(generation, error))

    # --- the pump handler (event loop, one item at a time) -----------------------------------

    async def _handle(self, item: Any) -> None:
        if isinstance(item, _Emit):
            await self._deliver(item.event)
            return
        attempt = self._attempt
        if attempt is None or item.generation != attempt.generation:
            return  # from a client we already stopped
        if isinstance(item, _Qr):
            await self._on_qr(attempt, item.code)
        elif isinstance(item, _QrExpired):
            if self._state is ConnectionState.QR_READY:
                self._log.info("QR code not scanned in time; ending the pairing attempt")
                await self._on_login_status(attempt, "timeout")
        elif isinstance(item, _LoginStatus):
            await self._on_login_status(attempt, item.status)
        elif isinstance(item, _RunEnded):
            await self._on_run_ended(attempt, item.error)
        elif isinstance(item, _GoEvent):
            await self._on_go_event(attempt, item.code, item.event)

    async def _on_qr(self, attempt: _Attempt, code: str) -> None:
        if attempt.qr_timer is None:  # the series starts: end it before whatsmeow does
            attempt.qr_timer = asyncio.get_running_loop().call_later(
                self._qr_lifetime, self._pump.submit, _QrExpired(attempt.generation)
            )
        self._qr = code
        self._state = ConnectionState.QR_READY
        await self._deliver(ConnectionEvent(state=ConnectionState.QR_READY, qr=code))
        _resolve(attempt, _Outcome("qr", qr=code))

    async def _on_login_status(self, attempt: _Attempt, status: str) -> None:
        if status == "success":
            # whatsmeow reconnects with the new credentials; Connected follows.
            self._log.info("phone paired; waiting for the connection")
            self._qr = None
            self._pairing_code = None
            self._state = ConnectionState.CONNECTING
            await self._deliver(
                ConnectionEvent(
                    state=ConnectionState.CONNECTING, reason="Phone paired; finishing the connection"
                )
            )
            return
        # "timeout" (all QR codes shown, none scanned) or an "err-…" from the pairing flow.
        reason = (
            "QR code expired without being scanned" if status == "timeout" else f"Pairing failed ({status})"
        )
        self._qr = None
        self._pairing_code = None
        self._state = ConnectionState.DISCONNECTED
        await self._deliver(ConnectionEvent(state=ConnectionState.DISCONNECTED, reason=reason))
        _resolve(attempt, _Outcome("failed", error=EngineError(reason, retryable=True)))
        self._in_background(self._stop_client_if(attempt))

    async def _on_run_ended(self, attempt: _Attempt, error: EngineError | None) -> None:
        reason = error.message if error else "WhatsApp session ended"
        self._qr = None
        if self._state is not ConnectionState.LOGGED_OUT:
            self._state = ConnectionState.DISCONNECTED
            await self._deliver(ConnectionEvent(state=ConnectionState.DISCONNECTED, reason=reason))
        _resolve(attempt, _Outcome("failed", error=error or EngineError(reason, retryable=True)))
        self._in_background(self._stop_client_if(attempt))

    async def _on_go_event(self, attempt: _Attempt, code: int, event: Any) -> None:
        if code == MESSAGE_CODE:
            message = translate_message(event)
            if message is not None:
                if message.is_group:
                    subject = await self._group_subject(attempt, message.chat.jid)
                    message = with_group_subject(message, subject)
                elif not message.from_me:
                    message = with_saved_name(message, await self._saved_name(attempt, message.sender.jid))
                await self._deliver(MessageEvent(message=message))
            return
        if code == HISTORY_SYNC_CODE:
            history = translate_history(event, me=self._me)
            if history is not None and history.chats:
                for chat in history.chats:
                    if chat.chat.jid.endswith("@" + GROUP_SERVER) and chat.chat.name:
                        self._remember_subject(chat.chat.jid, chat.chat.name)
                await self._deliver(history)
            return
        if code == JOINED_GROUP_CODE:
            joined = translate_joined_group(event)
            if joined is not None:
                self._remember_subject(joined.chat.jid, joined.subject)
                await self._deliver(joined)
            return
        if code == GROUP_INFO_CODE:
            jid = jid_str(event.JID) if event.HasField("JID") else None
            known = await self._group_subject(attempt, jid) if jid and not event.HasField("Name") else None
            for group_change in translate_group_info(event, known_subject=known):
                if group_change.action == "subject":
                    self._remember_subject(group_change.chat.jid, group_change.subject)
                await self._deliver(group_change)
            return
        if code == RECEIPT_CODE:
            receipt = translate_receipt(event)
            if receipt is not None:
                await self._deliver(receipt)
            return
        if code == DEVICE_CODE:
            self._me = _device_party(event) or self._me
            return
        if code == PAIR_STATUS_CODE:
            self._log.info(
                "pair status %s", pb.PairStatus.PStatus.Name(event.Status) if event.Status else "?"
            )
            return
        if isinstance(event, pb.Connected | pb.KeepAliveRestored):
            await self._refresh_me(attempt)
        change = translate_connection(event, me=self._me)
        if change is None:
            return
        if change.state is ConnectionState.CONNECTED:
            self._qr = None
            self._pairing_code = None
        self._state = change.state
        self._log.info("connection state %s", change.state.value, extra={"reason": change.reason})
        await self._deliver(change)
        if change.state is ConnectionState.CONNECTED:
            _resolve(attempt, _Outcome("connected"))
        elif change.state is ConnectionState.LOGGED_OUT:
            error = EngineError(change.reason or "Logged out", retryable=True)
            if not _resolve(attempt, _Outcome("loggedout", error=error)):
                self._in_background(self._forget_login(attempt))
        elif change.state is ConnectionState.TEMP_BANNED or isinstance(
            event, pb.ConnectFailure | pb.ClientOutdated
        ):
            _resolve(attempt, _Outcome("failed", error=EngineError(change.reason or "Connect failure")))

    # --- group subjects -----------------------------------------------------------------------

    def _remember_subject(self, jid: str, subject: str | None) -> None:
        self._subjects[jid] = subject
        self._subjects.move_to_end(jid)
        self._subject_failed.pop(jid, None)
        while len(self._subjects) > SUBJECT_CACHE_SIZE:
            self._subjects.popitem(last=False)

    def _cached_subject(self, jid: str) -> str | None:
        return self._subjects.get(jid)

    async def _group_subject(self, attempt: _Attempt, jid: str) -> str | None:
        """The group's subject: cached, else asked once of WhatsApp (``GetGroupInfo``). A failed
        lookup is not fatal (the message goes on without ``chat.name``) and is not repeated for
        ``SUBJECT_RETRY_SECONDS``."""
        if jid in self._subjects:
            self._subjects.move_to_end(jid)
            return self._subjects[jid]
        failed_at = self._subject_failed.get(jid)
        if failed_at is not None and time.monotonic() - failed_at < SUBJECT_RETRY_SECONDS:
            return None
        if self._state is not ConnectionState.CONNECTED:
            return None  # the Go client is not registered: calling it could crash the process
        try:
            info = await asyncio.wait_for(attempt.client.get_group_info(parse_jid(jid)), GROUP_INFO_TIMEOUT)
        except Exception as exc:
            self._subject_failed[jid] = time.monotonic()
            if len(self._subject_failed) > SUBJECT_CACHE_SIZE:
                self._subject_failed.pop(next(iter(self._subject_failed)))
            self._log.warning(
                "could not look up a group's subject",
                extra={"group": jid, "error": send.engine_error("look up the group", exc).message},
            )
            return None
        subject = group_subject(info)
        self._remember_subject(jid, subject)
        return subject

    async def _saved_name(self, attempt: _Attempt, jid: str) -> str | None:
        """The name our phone book has for ``jid`` (whatsmeow ``store.ContactInfo``: ``FullName``,
        else ``FirstName``; filled by app-state sync of the phone's contacts), cached for
        ``SAVED_NAME_TTL_SECONDS``. A failed read is not fatal: the message goes on without it."""
        now = time.monotonic()
        hit = self._saved_names.get(jid)
        if hit is not None and now - hit[0] < SAVED_NAME_TTL_SECONDS:
            return hit[1]
        if self._state is not ConnectionState.CONNECTED:
            return None  # the Go client is not registered: calling it could crash the process
        name: str | None = None
        try:
            info = await asyncio.wait_for(
                attempt.client.contact.get_contact(parse_jid(jid)), GROUP_INFO_TIMEOUT
            )
        except Exception as exc:
            self._log.warning(
                "could not read a contact's saved name",
                extra={"error": send.engine_error("read the contact store", exc).message},
            )
        else:
            if info.Found:
                name = str(info.FullName or info.FirstName or "") or None
        self._saved_names[jid] = (now, name)
        self._saved_names.move_to_end(jid)
        while len(self._saved_names) > SUBJECT_CACHE_SIZE:
            self._saved_names.popitem(last=False)
        return name

    async def _refresh_me(self, attempt: _Attempt) -> None:
        try:
            device = await attempt.client.get_me()
        except Exception:
            self._log.warning("could not read our own JID", exc_info=True)
            return
        self._me = _device_party(device) or self._me

    async def _deliver(self, event: DomainEvent) -> None:
        """The engine seam's failure contract (engines/base.py): retry, in order, until stored or
        the session stops; the pump (and through it Go's queue) waits meanwhile."""
        try:
            await deliver_until_stored(
                self._sink, event, stopped=lambda: self._closed, instance=self.instance
            )
        except SessionStopped:
            self._log.error(
                "session stopped before an event was stored", extra={"event_type": type(event).__name__}
            )

    # --- client lifecycle ---------------------------------------------------------------------

    def _change_state(self, state: ConnectionState, *, reason: str | None = None) -> None:
        """A state change decided on the loop: applied now, announced in order via the pump."""
        self._state = state
        self._pump.submit(_Emit(ConnectionEvent(state=state, reason=reason)))

    async def _stop_client(self) -> None:
        await self._shutdown(self._detach())

    def _detach(self) -> _Attempt | None:
        """Make the current attempt stale at once (its late callbacks are then ignored)."""
        attempt, self._attempt = self._attempt, None
        self._qr = None
        self._pairing_code = None
        return attempt

    async def _shutdown(self, attempt: _Attempt | None) -> None:
        if attempt is None:
            return
        if attempt.qr_timer is not None:
            attempt.qr_timer.cancel()
        _resolve(
            attempt, _Outcome("failed", error=EngineError("Connection attempt cancelled", retryable=True))
        )
        try:
            # Stop is nil-safe on the Go side (unlike Disconnect): it disconnects, cancels the
            # session context so Neonize() returns, and forgets the client.
            await asyncio.wait_for(attempt.client.stop(), STOP_TIMEOUT)
        except Exception:
            self._log.warning("stopping the neonize client failed", exc_info=True)
        task = attempt.task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if not done:
                # Go is still inside a blocking call: a dial, or a QR series that will never
                # return (see QR_LIFETIME). The executor keeps the task (and through it the
                # client and its ctypes callbacks) alive until it returns, however long.
                self._executor.abandon(task)
                self._log.warning(
                    "a neonize call did not return after Stop; its thread stays inside Go",
                    extra={"abandoned": self._executor.abandoned},
                )

    async def _stop_client_if(self, attempt: _Attempt) -> None:
        if self._attempt is attempt:
            await self._stop_client()

    async def _forget_login(self, attempt: _Attempt) -> None:
        if self._attempt is attempt:
            await self._stop_client()
            await self._store.wipe()
            self._me = None

    def _in_background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("Session is closed")

    def _client(self) -> Any:
        attempt = self._attempt
        if attempt is None or self._state is not ConnectionState.CONNECTED:
            raise NotConnectedError()
        return attempt.client

    # --- disconnect / logout / close ----------------------------------------------------------

    async def disconnect(self) -> None:
        self._check_open()
        await self._stop_client()
        self._change_state(ConnectionState.DISCONNECTED, reason="Disconnected by request")

    async def logout(self) -> None:
        self._check_open()
        attempt = self._attempt
        if attempt is not None and self._state is ConnectionState.CONNECTED:
            try:
                await attempt.client.logout()
            except Exception as exc:
                # Forget the login locally anyway; the phone may still list the device.
                self._log.warning("WhatsApp logout failed: %s", send.engine_error("log out", exc).message)
        await self._stop_client()
        await self._store.wipe()
        self._me = None
        self._change_state(ConnectionState.LOGGED_OUT, reason="Logged out by request")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stop_client()
        await self._pump.aclose()
        for task in list(self._background):
            task.cancel()

    async def drain(self) -> None:
        """Wait until every event received so far reached the sink (tests, shutdown)."""
        await self._pump.join()

    # --- sending --------------------------------------------------------------------------------

    async def _send(
        self, client: Any, to: Any, message: Any, *, action: str, origin: str | None
    ) -> SentMessage:
        try:
            response = await client.send_message(to, message)
        except Exception as exc:
            raise send.engine_error(action, exc) from exc
        return self._sent(response, to, message, origin)

    def _sent(self, response: Any, to: Any, message: Any, origin: str | None) -> SentMessage:
        """Announce what we sent as a from-me MessageEvent (whatsmeow does not echo our own
        sends), translated by the same code as messages sent from the phone."""
        me = self._me
        source = pb.MessageSource(Chat=to, IsFromMe=True, IsGroup=to.Server == GROUP_SERVER)
        if me is not None:
            source.Sender.CopyFrom(parse_jid(me.jid))
            if me.alt:
                source.SenderAlt.CopyFrom(parse_jid(me.alt))
        info = pb.MessageInfo(
            ID=response.ID,
            Timestamp=response.Timestamp,
            Pushname=(me.name if me else "") or "",
            MessageSource=source,
        )
        translated = translate_message(pb.Message(Info=info, Message=message))
        if translated is not None:
            if translated.is_group:  # from the cache only: a send must not wait on a lookup
                translated = with_group_subject(translated, self._cached_subject(translated.chat.jid))
            self._pump.submit(_Emit(MessageEvent(message=translated, origin=origin)))
        return SentMessage(id=response.ID, timestamp=timestamp(response.Timestamp))

    async def send_text(
        self,
        to: str,
        text: str,
        *,
        quote: Quote | None = None,
        mentions: tuple[str, ...] = (),
        origin: str | None = None,
    ) -> SentMessage:
        client = self._client()
        message = send.build_text(text, quote=quote, mentions=mentions, me=self._me.jid if self._me else None)
        return await self._send(client, parse_jid(to), message, action="send the message", origin=origin)

    async def send_media(
        self, to: str, media: OutgoingMedia, *, quote: Quote | None = None, origin: str | None = None
    ) -> SentMessage:
        client = self._client()
        target = parse_jid(to)
        mimetype = send.detect_mimetype(media.data, media.mimetype)
        try:
            upload = await client.upload(media.data, send.UPLOAD_TYPE[media.kind])
        except Exception as exc:
            raise send.engine_error("upload the media", exc) from exc
        image = await self._executor.run(send.image_info, media.data) if media.kind == "image" else None
        message = send.build_media(
            media,
            upload,
            mimetype=mimetype,
            quote=quote,
            me=self._me.jid if self._me else None,
            image=image,
        )
        return await self._send(client, target, message, action=f"send the {media.kind}", origin=origin)

    async def send_reaction(
        self,
        chat: str,
        target_id: str,
        emoji: str,
        *,
        target_from_me: bool,
        target_sender: str | None = None,
        origin: str | None = None,
    ) -> SentMessage:
        client = self._client()
        message = send.build_reaction(
            chat, target_id, emoji, target_from_me=target_from_me, target_sender=target_sender
        )
        return await self._send(client, parse_jid(chat), message, action="send the reaction", origin=origin)

    async def edit(self, chat: str, message_id: str, text: str, *, origin: str | None = None) -> SentMessage:
        client = self._client()
        message = send.build_edit_message(chat, message_id, text)
        return await self._send(client, parse_jid(chat), message, action="edit the message", origin=origin)

    async def revoke(self, chat: str, message_id: str, *, origin: str | None = None) -> SentMessage:
        client = self._client()
        message = send.build_revoke(chat, message_id)
        return await self._send(client, parse_jid(chat), message, action="revoke the message", origin=origin)

    async def mark_read(self, chat: str, message_ids: tuple[str, ...], *, sender: str | None = None) -> None:
        client = self._client()
        if not message_ids:
            return
        chat_jid = parse_jid(chat)
        if sender:
            sender_jid = parse_jid(sender)
        elif is_group(jid_str(chat_jid) or ""):
            raise EngineError("Marking group messages as read needs the sender of the messages")
        else:
            sender_jid = chat_jid
        try:
            await client.mark_read(*message_ids, chat=chat_jid, sender=sender_jid, receipt=ReceiptType.READ)
        except Exception as exc:
            raise send.engine_error("mark the messages as read", exc) from exc

    async def send_presence(self, chat: str, state: Literal["composing", "recording", "paused"]) -> None:
        client = self._client()
        presence, media = _PRESENCE[state]
        try:
            await client.send_chat_presence(parse_jid(chat), presence, media)
        except Exception as exc:
            raise send.engine_error("send the chat presence", exc) from exc

    async def profile_picture(self, jid: str, *, known_id: str | None = None) -> ProfilePicture | None:
        """whatsmeow ``GetProfilePictureInfo`` (``user.go``): with ``ExistingID`` set to the
        current id it answers nothing new (neonize: an empty info), ``ErrProfilePictureNotSet``
        (404) when there is none and ``ErrProfilePictureUnauthorized`` (401) when the person's
        privacy settings hide it from us; the URL is then downloaded from WhatsApp's CDN."""
        client = self._client()
        params = pb.GetProfilePictureParams(Preview=False, ExistingID=known_id or "")
        try:
            info = await asyncio.wait_for(client.get_profile_picture(parse_jid(jid), params), PICTURE_TIMEOUT)
        except Exception as exc:
            text = str(exc).lower()
            if any(
                marker in text for marker in ("not-authorized", "401", "404", "item-not-found", "not set")
            ):
                return None
            raise send.engine_error("look up the profile picture", exc) from exc
        if not info.URL:
            if known_id and (not info.ID or info.ID == known_id):
                return ProfilePicture(id=known_id, mimetype="image/jpeg", data=b"")
            return None
        return ProfilePicture(id=str(info.ID), mimetype="image/jpeg", data=await _download_picture(info.URL))

    async def download_media(self, media: Media) -> bytes:
        client = self._client()
        if not media.handle:
            raise EngineError("This media has no download handle")
        try:
            message = wa.Message.FromString(media.handle)
        except Exception as exc:
            raise EngineError("This media's download handle is not from the neonize engine") from exc
        try:
            data = await client.download_any(message)
        except Exception as exc:
            text = str(exc).lower()
            if any(marker in text for marker in ("404", "410", "expired", "gone")):
                raise EngineError("The media is no longer available on WhatsApp's servers") from exc
            raise send.engine_error("download the media", exc) from exc
        return bytes(data or b"")


_PRESENCE = {
    "composing": (ChatPresence.CHAT_PRESENCE_COMPOSING, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
    "recording": (ChatPresence.CHAT_PRESENCE_COMPOSING, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO),
    "paused": (ChatPresence.CHAT_PRESENCE_PAUSED, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
}


async def _download_picture(url: str) -> bytes:
    """A profile picture from WhatsApp's CDN (``pps.whatsapp.net``, a signed HTTPS URL: no
    credentials), at most ``PICTURE_MAX_BYTES``."""
    import aiohttp  # the bridge's HTTP client; only needed once a picture is asked for

    timeout = aiohttp.ClientTimeout(total=PICTURE_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
            if resp.status != 200:
                raise EngineError(
                    f"WhatsApp's CDN answered {resp.status} for a profile picture", retryable=True
                )
            data = await resp.content.read(PICTURE_MAX_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise EngineError(f"could not download the profile picture: {exc}", retryable=True) from exc
    if len(data) > PICTURE_MAX_BYTES:
        raise EngineError("the profile picture is larger than expected", retryable=False)
    return data


def _resolve(attempt: _Attempt, outcome: _Outcome) -> bool:
    """Settle the attempt's connect() waiter once; False if it was already settled."""
    if attempt.waiter.done():
        return False
    attempt.waiter.set_result(outcome)
    return True


def _device_party(device: Any) -> Party | None:
    jid = jid_str(device.JID) if device.HasField("JID") else None
    if not jid:
        return None
    lid = jid_str(device.LID) if device.HasField("LID") else None
    return Party(jid=jid, alt=lid if lid != jid else None, name=device.PushName or None)
