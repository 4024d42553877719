"""Background jobs whose delay a client can observe (Chatwoot runs them in Sidekiq).

Only the ones a bridge can tell apart from an immediate effect are emulated: ``DeleteObjectJob``
(app/jobs/delete_object_job.rb), which ``InboxesController#destroy`` enqueues instead of deleting,
so the inbox, its conversations and its webhooks live on until a worker picks the job up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("ryze.emulator.jobs")


class Jobs:
    def __init__(self, delay: float = 0.0) -> None:
        self._delay = delay  # seconds between enqueue and run (the queue's latency)
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def delay(self) -> float:
        return self._delay

    @delay.setter
    def delay(self, value: float) -> None:
        """Applies to queued jobs too: lowering it lets a test release a job it held back."""
        self._delay = value
        self._changed.set()
        self._changed = asyncio.Event()

    def enqueue(self, name: str, job: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run(name, job, loop.time()), name=f"job-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, name: str, job: Callable[[], None], enqueued: float) -> None:
        loop = asyncio.get_running_loop()
        while (remaining := enqueued + self._delay - loop.time()) > 0:
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass
        await asyncio.sleep(0)  # never within the request that enqueued it
        try:
            job()
        except Exception:  # a failed job is logged by Sidekiq, never seen by the client
            log.exception("emulated job %s failed", name)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def idle(self) -> None:
        """Wait until every enqueued job has run."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._tasks.clear()
