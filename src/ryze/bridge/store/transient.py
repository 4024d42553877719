"""Riding out a short storage outage where an answer waits for a write.

Chatwoot delivers a webhook once (``lib/webhooks/trigger.rb``: one ``RestClient`` request with
``timeout: 5``, no retry) and marks the agent's message failed on an error answer. The bridge must
not answer 200 before the outbound job is stored, so a PostgreSQL restart or a full disk freed a
moment later would fail the message; retrying the write for a few seconds inside the answer turns
such an outage into a delay. ``make chaos`` measures it (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, NotSupportedError, ProgrammingError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Below Chatwoot's fixed 5 s webhook timeout, with room for the write itself and the answer.
WEBHOOK_WRITE_BUDGET = 3.0
_FIRST_DELAY, _MAX_DELAY = 0.1, 0.8


def is_transient(exc: BaseException) -> bool:
    """A storage error that a later attempt may not meet: the connection lost or refused (server
    restarting), SQLite busy or full. Not a constraint or a bad statement, which would fail again.

    asyncpg's errors of a restarting server (``CannotConnectNowError``, ``AdminShutdownError``)
    reach SQLAlchemy as plain DB-API errors, so every driver error but the four kinds that name a
    wrong request counts as transient."""
    if isinstance(exc, IntegrityError | ProgrammingError | DataError | NotSupportedError):
        return False
    return isinstance(exc, DBAPIError | OSError)


async def retry_transient(
    call: Callable[[], Awaitable[T]], *, budget: float, what: str, on_retry: Callable[[], None] | None = None
) -> T:
    """``call()`` again after a transient storage error until ``budget`` seconds have passed; then
    (or on any other error) the error propagates."""
    deadline = time.monotonic() + budget
    delay = _FIRST_DELAY
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning(
                "storage briefly unavailable; retrying",
                extra={"what": what, "attempt": attempt, "error": f"{type(exc).__name__}: {str(exc)[:200]}"},
            )
        if on_retry is not None:
            on_retry()
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY)
        attempt += 1
