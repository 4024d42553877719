"""Event buffering: Chatwoot fires webhooks from after-commit hooks, so payloads are built
when the outermost "transaction" of an action ends, in the order the records were saved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .state import JSON


@dataclass
class PendingEvent:
    event: str
    inbox_id: int
    conversation_pk: int
    message_id: int | None
    build: Callable[[], JSON]


class EventBus:
    """Collects events during an action and hands them to `sink` at commit."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: list[PendingEvent] = []
        self.sink: Callable[[PendingEvent], None] = lambda _e: None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._depth += 1
        ok = False
        try:
            yield
            ok = True
        finally:
            self._depth -= 1
            if self._depth == 0:
                pending, self._pending = self._pending, []
                if ok:  # a rolled-back transaction fires no after_commit hooks
                    for ev in pending:
                        self.sink(ev)

    def emit(self, ev: PendingEvent) -> None:
        if self._depth:
            self._pending.append(ev)
        else:
            self.sink(ev)
