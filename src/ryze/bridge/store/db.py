"""The bridge database: engine, migrations, and a group committer for hot-path writes.

Hot-path writes (the inbound mapping row that marks an event done, the outbound job a webhook
persists) go through :class:`BridgeWriter`, a group committer (``ryze.common.database``):
concurrent writers are batched into one transaction, each awaiting its own result, so the commit
rate is not the ceiling (python-stack-ceilings.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ryze.common.database import GroupCommitter, Transaction, make_engine, upgrade_schema

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

K = TypeVar("K")
R = TypeVar("R")
READERS = 4  # concurrent read connections (the pool keeps 5; the group committer holds one more)
WriteOp = Callable[[AsyncConnection], Awaitable[Any]]


class BridgeWriter:
    """The bridge's hot-path writes: operations on a connection, run in shared transactions.

    A :class:`~ryze.common.database.GroupCommitter` (at most ``batch`` operations per transaction)
    whose items are the operations themselves; one bad operation fails alone (``singly``).

    Two lanes. ``urgent`` operations (the webhook's job insert: Chatwoot waits for the answer) are
    committed in their own short transaction ahead of everything else, and a normal batch being
    executed stops taking further operations as soon as an urgent one is waiting: it commits what
    it has done and leaves the rest at the head of its lane. An urgent write therefore waits for at
    most one normal operation and a commit, never for a whole burst. One connection still does all
    the writing: a second SQLite writer would only wait on the file lock (in sleeps of 1–100 ms).
    """

    def __init__(self, engine: AsyncEngine, *, batch: int = 200, urgent_batch: int = 64) -> None:
        self._committer: GroupCommitter[WriteOp, Any] = GroupCommitter(
            engine,
            self._commit,
            name="bridge group committer",
            max_batch=batch,
            urgent_batch=urgent_batch,
            on_failure="singly",
        )

    async def submit(self, op: WriteOp, *, urgent: bool = False) -> Any:
        return await self._committer.submit(op, urgent=urgent)

    async def aclose(self) -> None:
        await self._committer.aclose()

    async def _commit(self, transaction: Transaction, ops: list[WriteOp]) -> list[Any]:
        results: list[Any] = []
        async with transaction() as conn:
            for op in ops:
                if results and self._committer.yield_requested:
                    break  # an urgent write arrived: commit this part now, the rest goes next round
                results.append(await op(conn))
        return results


class BridgeDB:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self.writer = BridgeWriter(self.engine)
        # Never ask the pool for more connections than it keeps: an overflow connection is opened and
        # closed per use (a new aiosqlite thread each time), which costs far more than waiting.
        self._readers = asyncio.Semaphore(READERS)

    async def migrate(self) -> None:
        await upgrade_schema(self.engine, MIGRATIONS)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self._readers, self.engine.connect() as conn:
            yield conn

    def start(self) -> None:
        """Nothing to start: the writer's flusher runs while writes are queued."""

    async def close(self) -> None:
        await self.writer.aclose()
        await self.engine.dispose()


class Batcher(Generic[K, R]):
    """Coalesces concurrent single-item calls into one call over the list (one SQL statement).

    While a batch runs, new items queue up and go out together in the next one, so the batch size
    grows with the load and the per-item database round trips (and aiosqlite thread hops) vanish.
    """

    def __init__(
        self, run: Callable[[list[K]], Awaitable[list[R]]], *, max_batch: int = 500, concurrency: int = 1
    ) -> None:
        self._run = run
        self._max = max_batch
        self._concurrency = concurrency
        self._pending: list[tuple[K, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._draining = 0  # counted synchronously: a drain that just emptied the queue is not "running"

    async def __call__(self, item: K) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._draining < self._concurrency:
            self._draining += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # let the callers of this loop iteration join the batch
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as exc:  # every waiting caller gets the failure and retries on its own
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        except asyncio.CancelledError:
            for _, fut in self._pending:
                fut.cancel()
            raise
        finally:
            self._draining -= 1
