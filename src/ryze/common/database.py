"""Database engines and schema upgrades, shared by both services (each has its own tables).

SQLite is the embedded default (a file under ``./data/``); PostgreSQL is chosen by URL. SQLite runs
in WAL mode with ``synchronous=NORMAL``: the measured single-row commit rate is ~4x the rollback
journal's, and a crash still loses nothing that was committed before the last checkpoint-safe sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ryze.common.files import private_sqlite_file

log = logging.getLogger(__name__)


def normalize_url(url: str) -> str:
    """Accept the URLs operators write and pick the async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def is_sqlite(url: str) -> bool:
    return normalize_url(url).startswith("sqlite")


_DISK_FULL = ("database or disk is full", "no space left on device")


def disk_full(exc: BaseException) -> bool:
    """Whether a storage error is a full disk (SQLite's SQLITE_FULL, or ENOSPC from the OS), so the
    log says so in words an operator acts on instead of only in a traceback."""
    errno_ = getattr(exc, "errno", None)
    text = str(exc).lower()
    return errno_ == errno.ENOSPC or any(marker in text for marker in _DISK_FULL)


def make_engine(url: str, *, schema: str | None = None, pool_size: int = 10) -> AsyncEngine:
    """An async engine. ``schema`` (PostgreSQL only) sets the search_path, used to isolate tests."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            # Owner-only from the first byte: the file holds messages and encrypted secrets.
            private_sqlite_file(Path(path))
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


def _upgrade(sync_conn: Connection, script_location: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def upgrade_schema(engine: AsyncEngine, script_location: Path) -> None:
    """Apply the service's Alembic migrations up to head (what ``ryze api``/``ryze bridge`` do on start)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, str(script_location))


class WriterConnection:
    """The one long-lived connection of a group committer.

    Keeping it avoids a pool checkout and reset per batch (that halves SQLite's single-row commit
    rate). After a failed batch the owner drops it, since the connection may be what failed; the
    next batch opens a new one.
    """

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self._engine = engine
        self._name = name
        self._conn: AsyncConnection | None = None

    async def get(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._engine.connect()
        return self._conn

    async def drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                # Closing a broken connection can fail too; the committer must go on regardless.
                log.warning("closing a writer connection failed", extra={"writer": self._name}, exc_info=True)


_WRITE_LOCKS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def write_lock(engine: AsyncEngine) -> contextlib.AbstractAsyncContextManager[Any]:
    """The lock every hot-path writer of ``engine`` holds around its transaction.

    RyzeAPI's group committers (message store, Chatwoot event log, command claims) each keep their
    own writing connection. On SQLite two connections that write at once collide on the database's
    write lock, and the loser sleeps in SQLite's busy handler (1, 2, 5, 10, ... ms, in its aiosqlite
    thread) while every write of that batch waits. Taking turns on this lock instead costs nothing.
    PostgreSQL has row locks: no turns there.
    """
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    key = engine.sync_engine
    lock = _WRITE_LOCKS.get(key)
    if lock is None:
        lock = _WRITE_LOCKS[key] = asyncio.Lock()
    return lock


T = TypeVar("T")
R = TypeVar("R")

Transaction = Callable[[], contextlib.AbstractAsyncContextManager[AsyncConnection]]
"""Opens the committer's transaction: the write lock, then ``BEGIN`` on its own connection."""

CommitBatch = Callable[[Transaction, list[T]], Awaitable[list[R]]]
"""Writes a batch in one transaction and returns one result per item, in order.

It may return a shorter list (never empty) when it committed only a prefix of the batch (the
bridge's normal lane stops at :attr:`GroupCommitter.yield_requested`): the rest goes back to the
head of its lane. It raises when nothing of the batch was committed; it owns any in-memory
bookkeeping of its own (seq caches, post-commit callbacks) and must leave it consistent on failure.
"""


class CommitterClosed(RuntimeError):
    """The committer's flusher was cancelled (shutdown) before this write was committed."""


class GroupCommitter(Generic[T, R]):
    """Writes submitted concurrently share one transaction (group commit), each awaiting its result.

    Every hot-path writer of both services goes through one of these: RyzeAPI's message store, its
    Chatwoot event log and command claims, and the bridge's repositories. While a batch is being
    committed new submissions queue up and go out together in the next one, so the batch grows with
    the load and the fsync (and the driver-thread hops) are paid once per batch, not per write.

    * One connection of its own (:class:`WriterConnection`), dropped after a failed batch.
    * The engine's :func:`write_lock` around each transaction (SQLite: writers take turns).
    * A flusher task started by the first submission and ended when the queue is empty: an idle
      committer costs nothing, and a committer nobody started still writes.
    * ``on_failure="fail"``: a failed batch fails every item of it (the owner's batch is one
      statement, e.g. the message store's multi-row insert, so nothing was written);
      ``"singly"``: it is written again item by item, so one bad write fails alone.
    * Two lanes: ``urgent`` items (the bridge's webhook job insert, which Chatwoot waits for) are
      committed ahead of the normal ones, and a normal batch may yield to them (see
      :data:`CommitBatch`). Each round commits at least one normal batch: urgent traffic cannot
      starve the rest.
    * ``abandoned(item, result)``: called for an item committed after its submitter stopped
      waiting (cancelled), so the owner can undo what nobody will follow up (a command claim).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        commit: CommitBatch[T, R],
        *,
        name: str,
        max_batch: int | None = None,
        urgent_batch: int = 64,
        on_failure: Literal["fail", "singly"] = "fail",
        abandoned: Callable[[T, R], None] | None = None,
    ) -> None:
        self._engine = engine
        self._commit = commit
        self._name = name
        self._max_batch = max_batch
        self._urgent_batch = urgent_batch
        self._on_failure = on_failure
        self._abandoned = abandoned
        self._normal: deque[tuple[T, asyncio.Future[R] | None]] = deque()
        self._urgent: deque[tuple[T, asyncio.Future[R] | None]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._in_normal_batch = False
        self._closing = False
        self._conn = WriterConnection(engine, name)

    # -- submitting -----------------------------------------------------------------------------

    async def submit(self, item: T, *, urgent: bool = False) -> R:
        """Queue ``item``; returns its result once the transaction that wrote it committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._enqueue(item, future, urgent)
        return await future

    def submit_nowait(self, item: T) -> None:
        """Queue ``item`` without waiting for it (fire-and-forget; a failure is only logged)."""
        self._enqueue(item, None, False)

    def _enqueue(self, item: T, future: asyncio.Future[R] | None, urgent: bool) -> None:
        (self._urgent if urgent else self._normal).append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"group-commit: {self._name}")

    @property
    def yield_requested(self) -> bool:
        """True while a normal batch is being committed and an urgent item is waiting."""
        return self._in_normal_batch and bool(self._urgent)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """The write lock, then a transaction on the committer's own connection."""
        async with write_lock(self._engine):
            conn = await self._conn.get()
            async with conn.begin():
                yield conn

    # -- lifecycle ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Commit what is queued, then release the connection (before the engine is disposed).

        A submission after this still commits (shutdown order: sessions may still emit); its
        flusher releases the connection again when it is done."""
        self._closing = True
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._conn.drop()

    # -- the flusher ----------------------------------------------------------------------------

    async def _flush(self) -> None:
        try:
            while self._urgent or self._normal:
                if self._urgent:
                    await self._commit_from(self._urgent, self._urgent_batch)
                if self._normal:
                    self._in_normal_batch = True
                    try:
                        await self._commit_from(self._normal, self._max_batch)
                    finally:
                        self._in_normal_batch = False
        except asyncio.CancelledError:
            for lane in (self._urgent, self._normal):
                while lane:
                    _, future = lane.popleft()
                    if future is not None and not future.done():
                        future.set_exception(CommitterClosed(f"{self._name} closed"))
            raise
        finally:
            if self._closing:
                await self._conn.drop()

    async def _commit_from(self, lane: deque[tuple[T, asyncio.Future[R] | None]], limit: int | None) -> None:
        batch: list[tuple[T, asyncio.Future[R] | None]] = []
        while lane and (limit is None or len(batch) < limit):
            batch.append(lane.popleft())
        try:
            results = await self._commit(self.transaction, [item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_exception(CommitterClosed(f"{self._name} closed"))
            raise
        except Exception as exc:
            await self._conn.drop()  # it may be what failed: the next batch opens a new one
            if self._on_failure == "singly" and len(batch) > 1:
                log.warning(
                    "group commit failed"
                    + (": the disk is full" if disk_full(exc) else "")
                    + "; writing its items one by one",
                    extra={"writer": self._name, "batch": len(batch)},
                    exc_info=True,
                )
                await self._commit_singly(batch)
            else:
                log.exception(
                    "group commit failed" + (": the disk is full" if disk_full(exc) else ""),
                    extra={"writer": self._name, "batch": len(batch)},
                )
                for _, future in batch:
                    self._fail(future, exc)
            return
        done = len(results)
        if done < len(batch):  # committed a prefix: the rest goes first next time
            lane.extendleft(reversed(batch[done:]))
        for (item, future), result in zip(batch[:done], results, strict=True):
            self._settle(item, future, result)

    async def _commit_singly(self, batch: list[tuple[T, asyncio.Future[R] | None]]) -> None:
        for item, future in batch:
            try:
                results = await self._commit(self.transaction, [item])
            except Exception as exc:  # delivered to the waiting writer, which handles it
                await self._conn.drop()
                self._fail(future, exc)
                continue
            self._settle(item, future, results[0])

    def _settle(self, item: T, future: asyncio.Future[R] | None, result: R) -> None:
        if future is None:
            return
        if not future.done():
            future.set_result(result)
        elif self._abandoned is not None:
            self._abandoned(item, result)

    def _fail(self, future: asyncio.Future[R] | None, exc: BaseException) -> None:
        if future is None:
            log.warning("a fire-and-forget write failed", extra={"writer": self._name, "error": str(exc)})
        elif not future.done():
            future.set_exception(exc)
