"""One engine session per instance: opened lazily, restored at start, closed at shutdown."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from ryze.api.records import InstanceRecord
from ryze.api.services.ingest import InboundPipeline
from ryze.api.services.instances import InstanceService
from ryze.engines.base import (
    ConnectionEvent,
    ConnectionState,
    DomainEvent,
    Engine,
    EngineError,
    EventSink,
    MessageEvent,
    Session,
)

log = logging.getLogger(__name__)
RECONNECT_CANCEL_WAIT = 10.0  # seconds a shutdown waits for cancelled reconnects
_TRANSIENT = {ConnectionState.CONNECTING.value, ConnectionState.QR_READY.value}
RECONNECT_INITIAL = 2.0
RECONNECT_MAX = 300.0


@dataclass(frozen=True, slots=True)
class ReconnectStatus:
    """A stored login that could not be resumed at start-up and waits for its next attempt."""

    attempt: int  # attempts made so far (all failed)
    retry_in: float  # seconds until the next one
    error: str  # why the last one failed


class SessionManager:
    """``reconnect_initial`` / ``reconnect_max``: the back-off between attempts to resume a stored
    login at start-up (doubling, with up to 10 % jitter so many instances do not retry in step)."""

    def __init__(
        self,
        engine: Engine,
        pipeline: InboundPipeline,
        *,
        reconnect_initial: float = RECONNECT_INITIAL,
        reconnect_max: float = RECONNECT_MAX,
    ) -> None:
        self.engine = engine
        self._pipeline = pipeline
        self._sessions: dict[str, Session] = {}
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._reconnect_initial = reconnect_initial
        self._reconnect_max = reconnect_max
        self._reconnecting: dict[str, ReconnectStatus] = {}

    def _sink(self, instance: str) -> EventSink:
        async def sink(event: DomainEvent) -> None:
            try:
                await self._pipeline.handle(instance, event)
            except Exception:
                if not (isinstance(event, MessageEvent) and event.origin is not None):
                    raise
                # Our own send, reported while it goes out: failing the engine's send now would
                # tell the caller "not sent" and invite a second send. The send path stores it
                # again, or answers "sent but not stored".
                log.exception("could not store an own send as it was reported", extra={"instance": instance})

        return sink

    def peek(self, instance: str) -> Session | None:
        return self._sessions.get(instance)

    async def get(self, instance: InstanceRecord) -> Session:
        session = self._sessions.get(instance.name)
        if session is not None:
            return session
        async with self._lock:
            session = self._sessions.get(instance.name)
            if session is None:
                session = await self.engine.open_session(instance.name, self._sink(instance.name))
                self._sessions[instance.name] = session
        return session

    def state_of(self, instance: InstanceRecord) -> str:
        session = self._sessions.get(instance.name)
        if session is None:
            return instance.state
        if instance.name in self._reconnecting and session.state is ConnectionState.DISCONNECTED:
            return ConnectionState.CONNECTING.value  # between two attempts to resume the login
        return session.state.value

    def reconnect_status(self, instance: str) -> ReconnectStatus | None:
        return self._reconnecting.get(instance)

    async def restore(self, instances: list[InstanceRecord], instance_service: InstanceService) -> None:
        """Reconnect, in the background, every instance with a login to resume: those that were
        ``connected`` when we stopped, and those still retrying a failed resume (``connecting``
        with a known number). Failed attempts are retried with back-off (``_reconnect``).

        A pairing that was under way (``qr_ready``, or ``connecting`` of an instance that never had
        a number) did not survive the restart: those instances read as ``disconnected`` until
        connected again.
        """
        for instance in instances:
            resumable = instance.state == ConnectionState.CONNECTED.value or (
                instance.state == ConnectionState.CONNECTING.value and instance.number_jid
            )
            if not resumable:
                if instance.state in _TRANSIENT:
                    await instance_service.set_state(instance, ConnectionState.DISCONNECTED.value)
                continue
            task = asyncio.create_task(self._reconnect(instance))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _reconnect(self, instance: InstanceRecord) -> None:
        """Resume a stored login; while the attempt fails with a retryable error (network not up
        yet, WhatsApp unreachable), retry with back-off until it connects, someone else connects
        or pairs the instance, it is deleted, or the manager closes. Between attempts the instance
        reads ``connecting`` and an ``instance.state`` event says why and when the next try is."""
        name = instance.name
        delay = self._reconnect_initial
        attempt = 0
        try:
            while True:
                session = await self.get(instance)
                if attempt and session.state is not ConnectionState.DISCONNECTED:
                    return  # connected or paired meanwhile (e.g. through the connect route)
                attempt += 1
                try:
                    await session.connect()
                    if attempt > 1:
                        log.info("reconnected", extra={"instance": name, "attempt": attempt})
                    return
                except EngineError as exc:
                    if not exc.retryable:
                        log.warning("reconnect failed", extra={"instance": name, "error": exc.message})
                        return
                    error = exc.message
                if self._sessions.get(name) is not session:
                    return  # deleted meanwhile
                wait = min(delay, self._reconnect_max) * (1 + random.uniform(0, 0.1))
                delay = min(delay * 2, self._reconnect_max)
                self._reconnecting[name] = ReconnectStatus(attempt=attempt, retry_in=wait, error=error)
                log.warning(
                    "reconnect failed; retrying",
                    extra={"instance": name, "attempt": attempt, "retry_in": round(wait, 1), "error": error},
                )
                await self._report_retry(name, session, attempt, wait, error)
                await asyncio.sleep(wait)
        finally:
            self._reconnecting.pop(name, None)

    async def _report_retry(self, name: str, session: Session, attempt: int, wait: float, error: str) -> None:
        """Store and announce ``connecting`` (after the engine's own ``disconnected`` went through,
        so it is the last word): the instance is being resumed, and a restart resumes it too."""
        await session.drain()
        reason = f"Reconnecting: attempt {attempt} failed ({error}); next attempt in {wait:.0f} s"
        try:
            await self._pipeline.handle(
                name, ConnectionEvent(state=ConnectionState.CONNECTING, reason=reason)
            )
        except Exception:
            log.exception("could not record the reconnect state", extra={"instance": name})

    async def remove(self, instance: InstanceRecord) -> None:
        """Log out (when a login exists) and forget the session; errors are reported, not fatal."""
        session = self._sessions.pop(instance.name, None)
        if session is not None:
            try:
                if (
                    session.state not in (ConnectionState.LOGGED_OUT, ConnectionState.DISCONNECTED)
                    or session.me
                ):
                    await session.logout()
            except EngineError as exc:
                log.warning(
                    "logout failed during delete", extra={"instance": instance.name, "error": exc.message}
                )
            finally:
                await session.close()
        await self.engine.delete_session(instance.name)

    async def aclose(self) -> None:
        # Await the cancelled reconnects before closing sessions: one still inside ``get`` would
        # otherwise register a session after the snapshot below, and it would never be closed.
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=RECONNECT_CANCEL_WAIT)
            if stuck:
                log.warning("reconnects did not stop in time", extra={"count": len(stuck)})
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
        await self.engine.aclose()
