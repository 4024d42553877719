"""One engine session per instance: opened lazily, restored at start, closed at shutdown."""

from __future__ import annotations

import asyncio
import logging

from ryze.api.records import InstanceRecord
from ryze.api.services.ingest import InboundPipeline
from ryze.api.services.instances import InstanceService
from ryze.engines.base import (
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


class SessionManager:
    def __init__(self, engine: Engine, pipeline: InboundPipeline) -> None:
        self.engine = engine
        self._pipeline = pipeline
        self._sessions: dict[str, Session] = {}
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

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
        return session.state.value if session is not None else instance.state

    async def restore(self, instances: list[InstanceRecord], instance_service: InstanceService) -> None:
        """Reconnect, in the background, every instance that was connected when we stopped.

        A pairing that was under way (``connecting``/``qr_ready``) did not survive the restart: those
        instances read as ``disconnected`` until connected again.
        """
        for instance in instances:
            if instance.state in _TRANSIENT:
                await instance_service.set_state(instance, ConnectionState.DISCONNECTED.value)
                continue
            if instance.state != ConnectionState.CONNECTED.value:
                continue
            task = asyncio.create_task(self._reconnect(instance))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _reconnect(self, instance: InstanceRecord) -> None:
        try:
            session = await self.get(instance)
            await session.connect()
        except EngineError as exc:
            log.warning("reconnect failed", extra={"instance": instance.name, "error": exc.message})

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
