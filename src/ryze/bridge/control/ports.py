"""What the parts of the bridge that talk to the operator need from the connection conversation."""

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
