"""One ordered lane per chat, concurrent across chats.

A lane is a queue plus a task that exists only while the chat has work (bounded memory with many
idle chats); a global semaphore bounds how many lanes run at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable

from ryze.common.tasks import cancel_and_wait
from ryze.protocol import ChatRef

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class LaneKeys:
    """Which lane a chat's events go to, stable across the person's PN and LID forms.

    WhatsApp may address one person by LID first and only later reveal the phone number (or the
    other way round). Keying a lane by "PN when known" would put the first message in the LID lane
    and the next one in the PN lane, and the two could then overtake each other. Instead the first
    form seen names the lane, and every form a later event reveals is aliased to it. Bounded: an
    alias forgotten after a long idle time is harmless (nothing of that chat is in flight).
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self._alias: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    def key(self, chat: ChatRef) -> str:
        forms = [f for f in (chat.jid, chat.pn, chat.lid) if f]
        key = next((self._alias[f] for f in forms if f in self._alias), chat.jid)
        for form in forms:
            self._alias[form] = key
            self._alias.move_to_end(form)
        while len(self._alias) > self._capacity:
            self._alias.popitem(last=False)
        return key


class LaneRouter:
    def __init__(self, *, max_concurrent: int = 64, name: str = "") -> None:
        self._lanes: dict[str, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_concurrent)
        self._name = name

    def submit(self, key: str, job: Job) -> None:
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(job)
            return
        self._lanes[key] = deque([job])
        task = asyncio.create_task(self._drain(key), name=f"lane-{self._name}-{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: str) -> None:
        lane = self._lanes[key]
        async with self._slots:
            while lane:
                job = lane[0]
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a job handles its own failures; this is a bug guard
                    log.exception("lane job crashed", extra={"integration_id": self._name, "lane": key})
                lane.popleft()
        del self._lanes[key]

    @property
    def active(self) -> int:
        return len(self._lanes)

    async def close(self) -> None:
        await cancel_and_wait(list(self._tasks))
        self._lanes.clear()
