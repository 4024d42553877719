"""Which private notes' ``message_created`` webhooks reached the bridge, while a self-check waits.

The self-check's round trip posts a private note and waits for Chatwoot to deliver its webhook
(``lib/webhooks/trigger.rb``: private notes are delivered to an API inbox's URL, activity messages
are not). The webhook receiver reports verified private notes here only while a watch is open, so
the hot path pays one attribute read when no self-check is running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A watch lasts seconds and sees only private notes of one inbox: this bounds it anyway.
MAX_SEEN = 256


class Watch:
    def __init__(self) -> None:
        self._seen: list[int] = []
        self._arrived = asyncio.Event()

    def saw(self, message_id: int) -> None:
        self._seen.append(message_id)
        if len(self._seen) > MAX_SEEN:
            del self._seen[0]
        self._arrived.set()

    async def wait_for(self, message_id: int, timeout: float) -> bool:
        """True once ``message_id``'s webhook arrived (also before this call), False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while message_id not in self._seen:  # ends: each turn waits, and the deadline passes
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return message_id in self._seen
        return True


class WebhookProbe:
    def __init__(self) -> None:
        self._watches: list[Watch] = []

    @property
    def watching(self) -> bool:
        return bool(self._watches)

    def saw(self, message_id: object) -> None:
        if isinstance(message_id, int) and not isinstance(message_id, bool):
            for watch in self._watches:
                watch.saw(message_id)

    @contextmanager
    def watch(self) -> Iterator[Watch]:
        """Open a watch before posting (the webhook may arrive before ``post`` returns the id)."""
        watch = Watch()
        self._watches.append(watch)
        try:
            yield watch
        finally:
            self._watches.remove(watch)
