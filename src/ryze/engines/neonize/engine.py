"""``NeonizeEngine``: the real WhatsApp engine (whatsmeow through neonize), one device per instance."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ryze.engines.base import Engine, EngineError, EventSink, Session
from ryze.engines.neonize.executor import FfiExecutor
from ryze.engines.neonize.session import MAX_ABANDONED, QR_LIFETIME, ClientFactory, NeonizeSession
from ryze.engines.neonize.storage import SessionStore, make_store, validate_instance

log = logging.getLogger(__name__)


class NeonizeEngine:
    """Sessions are stored per instance: ``<data_dir>/whatsmeow/<instance>.db`` (SQLite), or the
    schema ``<schema_prefix><instance>`` of ``database_url`` when that is a PostgreSQL URL.

    ``expected_sessions`` sizes the FFI thread pool up front (it grows with the sessions actually
    opened); ``headroom`` is the number of threads kept free for short calls. ``proxy``
    (``http://…`` or ``socks5://…``) carries whatsmeow's websocket and media traffic; the tests
    point it at a loopback listener so a real client never dials WhatsApp.
    """

    name = "neonize"

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        *,
        expected_sessions: int = 8,
        headroom: int | None = None,
        schema_prefix: str = "whatsmeow_",
        queue_size: int = 256,
        client_factory: ClientFactory | None = None,
        proxy: str | None = None,
        qr_lifetime: float = QR_LIFETIME,
        max_abandoned: int = MAX_ABANDONED,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.schema_prefix = schema_prefix
        self.executor = FfiExecutor(expected_sessions=expected_sessions, headroom=headroom)
        self._expected = expected_sessions
        self._queue_size = queue_size
        self._client_factory = client_factory
        self.proxy = proxy
        self.qr_lifetime = qr_lifetime
        self.max_abandoned = max_abandoned
        self._sessions: dict[str, NeonizeSession] = {}
        self._closed = False

    def store_for(self, instance: str) -> SessionStore:
        return make_store(
            instance, data_dir=self.data_dir, database_url=self.database_url, schema_prefix=self.schema_prefix
        )

    async def open_session(self, instance: str, sink: EventSink) -> NeonizeSession:
        """Create the session (a stored login is resumed by its first ``connect()``). Opening an
        instance that is already open returns the open session."""
        if self._closed:
            raise EngineError("Engine is closed")
        validate_instance(instance)
        existing = self._sessions.get(instance)
        if existing is not None:
            return existing
        kwargs = {} if self._client_factory is None else {"client_factory": self._client_factory}
        session = NeonizeSession(
            instance,
            store=self.store_for(instance),
            sink=sink,
            executor=self.executor,
            queue_size=self._queue_size,
            proxy=self.proxy,
            qr_lifetime=self.qr_lifetime,
            max_abandoned=self.max_abandoned,
            **kwargs,
        )
        session.start()
        self._sessions[instance] = session
        self.executor.expect_sessions(max(self._expected, len(self._sessions)))
        log.info("session opened", extra={"instance": instance, "engine": self.name})
        return session

    def thread_counts(self) -> dict[str, int]:
        """FFI threads: the pool's current ceiling, calls pinned in Go (one per live session and
        per stuck attempt), and stuck attempts (stopped clients whose Go call never returned)."""
        return self.executor.thread_counts()

    async def delete_session(self, instance: str) -> None:
        session = self._sessions.pop(instance, None)
        if session is not None:
            await session.close()
        await self.store_for(instance).wipe()
        self.executor.expect_sessions(max(self._expected, len(self._sessions)))
        log.info("session deleted", extra={"instance": instance, "engine": self.name})

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            try:
                await session.close()
            except Exception:
                log.exception("closing session failed", extra={"instance": session.instance})
        self.executor.shutdown()


if TYPE_CHECKING:  # mypy proves the classes satisfy the seam's protocols

    def _is_engine(engine: NeonizeEngine) -> Engine:
        return engine

    def _is_session(session: NeonizeSession) -> Session:
        return session
