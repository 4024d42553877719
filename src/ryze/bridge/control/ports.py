"""The connection conversation as other parts of the bridge use it (self-check, history import).

``ControlRoom`` posts into the integration's connection conversation; ``SelfCheckRunner`` and
``HistoryResync`` are what the ``selfcheck`` and ``resync`` commands call (built elsewhere and
handed to the command handler; absent, the command answers that it is not available).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


class ControlRoom(Protocol):
    # posts into the connection conversation, returns the Chatwoot message id
    async def post(self, text: str, *, private: bool = False) -> int: ...

    # creates bot contact + conversation on first use
    async def conversation_id(self) -> int: ...


SelfCheckRunner = Callable[[], Awaitable[str]]  # runs the self-check, returns the text to post
HistoryResync = Callable[[], Awaitable[str]]  # starts a history resync, returns the text to post
