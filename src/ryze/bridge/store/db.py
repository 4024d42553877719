"""The bridge database: engine, migrations, and a group committer for hot-path writes.

Hot-path writes (the inbound mapping row that marks an event done, the outbound job a webhook
persists) go through :class:`GroupCommitter`: concurrent writers are batched into one transaction,
each awaiting its own result, so the commit rate is not the ceiling (python-stack-ceilings.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ryze.common.database import WriterConnection, make_engine, upgrade_schema
from ryze.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

K = TypeVar("K")
R = TypeVar("R")
READERS = 4  # concurrent read connections (the pool keeps 5; the group committer holds one more)
WriteOp = Callable[[AsyncConnection], Awaitable[Any]]


class GroupCommitter:
    """Runs write operations submitted concurrently in shared transactions (at most ``batch`` each).

    The committer keeps one connection of its own (opened lazily, dropped after an error): a pool
    checkout per batch costs a reset (a ROLLBACK round trip through the aiosqlite thread) on return.

    Two lanes. ``urgent`` operations (the webhook's job insert: Chatwoot waits for the answer) are
    committed in their own short transaction ahead of everything else, and a normal batch being
    executed stops taking further operations as soon as an urgent one is waiting: it commits what
    it has done and leaves the rest at the head of its lane. An urgent write therefore waits for at
    most one normal operation and a commit, never for a whole burst. One connection still does all
    the writing: a second SQLite writer would only wait on the file lock (in sleeps of 1–100 ms).
    """

    def __init__(self, engine: AsyncEngine, *, batch: int = 200, urgent_batch: int = 64) -> None:
        self._engine = engine
        self._batch = batch
        self._urgent_batch = urgent_batch
        self._normal: deque[tuple[WriteOp, asyncio.Future[Any]]] = deque()
        self._urgent: deque[tuple[WriteOp, asyncio.Future[Any]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer_conn = WriterConnection(engine, "bridge group committer")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bridge-group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        for lane in (self._urgent, self._normal):
            while lane:
                _, fut = lane.popleft()
                if not fut.done():
                    fut.set_exception(RuntimeError("bridge database closed"))

    async def submit(self, op: WriteOp, *, urgent: bool = False) -> Any:
        if self._task is None:  # not started (tests, tools): plain transaction
            async with self._engine.begin() as conn:
                return await op(conn)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append((op, fut))
        self._wakeup.set()
        return await fut

    async def _drop_connection(self) -> None:
        await self._writer_conn.drop()

    async def _run(self) -> None:
        try:
            await self._loop()
        finally:
            await self._drop_connection()

    @staticmethod
    def _take(lane: deque[tuple[WriteOp, asyncio.Future[Any]]], limit: int) -> list[tuple[WriteOp, Any]]:
        items: list[tuple[WriteOp, Any]] = []
        while lane and len(items) < limit:
            items.append(lane.popleft())
        return items

    async def _loop(self) -> None:
        while True:
            if not self._urgent and not self._normal:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._urgent:
                await self._commit(self._take(self._urgent, self._urgent_batch), yield_to_urgent=False)
            if self._normal:  # at least one normal op per round: urgent traffic cannot starve the rest
                await self._commit(self._take(self._normal, self._batch), yield_to_urgent=True)

    async def _commit(self, items: list[tuple[WriteOp, Any]], *, yield_to_urgent: bool) -> None:
        kept = len(items)  # items[:kept] belong to this transaction; the rest went back to the lane
        try:
            results: list[Any] = []
            conn = await self._writer_conn.get()
            async with conn.begin():
                for index, (op, _) in enumerate(items):
                    if yield_to_urgent and index and self._urgent:
                        # an urgent write arrived: commit this part now, the rest goes next round
                        kept = index
                        self._normal.extendleft(reversed(items[index:]))
                        break
                    results.append(await op(conn))
            for (_, fut), result in zip(items[:kept], results, strict=True):
                if not fut.done():
                    fut.set_result(result)
        except asyncio.CancelledError:
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(RuntimeError("bridge database closed"))
            raise
        except Exception:  # one bad op must not fail its neighbours: replay them one by one
            log.warning("group commit failed; retrying its writes one by one", exc_info=True)
            await self._drop_connection()  # it may be what failed: the next batch opens a new one
            for op, fut in items[:kept]:
                if fut.done():
                    continue
                try:
                    async with self._engine.begin() as conn:
                        fut.set_result(await op(conn))
                except Exception as exc:  # delivered to the waiting writer, which handles it
                    fut.set_exception(exc)


class BridgeDB:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self.writer = GroupCommitter(self.engine)
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
        self.writer.start()

    async def close(self) -> None:
        await self.writer.stop()
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
