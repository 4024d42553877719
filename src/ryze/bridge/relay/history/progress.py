"""The history import's progress: counts, state, and the posts in the connection conversation.

An import starts with the first ``history.sync`` ``started`` marker while none is running and ends
with a ``finished`` marker of the sync's ``final`` chunk, once every history message offered
before it has settled (messages run in their chats' lanes, concurrently with the marker's). The
state and counts are kept on the integration's row (migration ``0004_history``), written at
each marker and every ``SAVE_EVERY`` messages: after a SIGKILL the import resumes from the
link's replay and the counts from the last write (messages imported since then count again as
``duplicates`` when they are replayed, never as a second Chatwoot message).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

from ryze.bridge.control.ports import ControlRoom
from ryze.bridge.store.repositories import IntegrationRecord
from ryze.chatwoot import ChatwootError
from ryze.protocol import HistorySyncData, HistoryView

log = logging.getLogger(__name__)

Outcome = Literal["imported", "skipped", "duplicate"]
SaveProgress = Callable[..., Awaitable[None]]  # (**columns) -> written on the integration's row
DEFAULT_HISTORY_DAYS = 7
# The row's progress columns: written by the import, never by a second activation.
HISTORY_PROGRESS_FIELDS = (
    "history_state", "history_received", "history_imported", "history_skipped",
    "history_duplicates", "history_started_at", "history_finished_at",
)  # fmt: skip
SAVE_EVERY = 25
SETTLE_TIMEOUT = 600.0  # seconds the final marker waits for the sync's messages before reporting
_COUNT = {"imported": "history_imported", "skipped": "history_skipped", "duplicate": "history_duplicates"}
_STATES: dict[str, Literal["idle", "importing", "done"]] = {
    "idle": "idle",
    "importing": "importing",
    "done": "done",
}


def _iso(ts: float) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def history_view(record: IntegrationRecord) -> HistoryView:
    """``IntegrationView.history`` from the integration's row."""
    return HistoryView(
        days=record.history_days,
        state=_STATES.get(record.history_state, "idle"),
        received=record.history_received,
        imported=record.history_imported,
        skipped=record.history_skipped,
        duplicates=record.history_duplicates,
        started_at=_iso(record.history_started_at),
        finished_at=_iso(record.history_finished_at),
    )


class HistoryProgress:
    """One integration's import. ``offered`` is called as each history message is dispatched (in
    seq order), ``settled`` when its lane finished it; ``on_marker`` for ``history.sync``."""

    def __init__(
        self,
        record: IntegrationRecord,
        *,
        save: SaveProgress,
        room: ControlRoom | None = None,
        settle_timeout: float = SETTLE_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.record = record  # shared with the runtime: the columns are kept current in it
        self._save = save
        # The connection conversation (None: nothing is posted). Public so the integration's
        # composition root can attach it once the control room exists.
        self.room = room
        self._settle_timeout = settle_timeout
        self._clock = clock
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._unsaved = 0

    @property
    def days(self) -> int:
        return self.record.history_days

    def view(self) -> HistoryView:
        return history_view(self.record)

    # ------------------------------------------------------------------ messages

    def offered(self) -> None:
        self._pending += 1
        self._idle.clear()
        self.record.history_received += 1

    async def settled(self, outcome: Outcome | None) -> None:
        """A history message's lane is done with it (``None``: given up after retries)."""
        self._pending = max(0, self._pending - 1)
        field = _COUNT[outcome or "skipped"]
        setattr(self.record, field, getattr(self.record, field) + 1)
        if self._pending == 0:
            self._idle.set()
        self._unsaved += 1
        if self._unsaved >= SAVE_EVERY:
            await self._persist()

    def reset(self) -> None:
        """The link stopped and its in-flight events were abandoned: they will be offered again."""
        self._pending = 0
        self._idle.set()

    # ------------------------------------------------------------------ markers

    def begin(self, marker: HistorySyncData) -> bool:
        """Called as a marker is dispatched, in seq order with the messages (which count as they
        are dispatched): a ``started`` marker while no import runs starts one here, so the
        counts it resets are the ones its own messages then add to. True: a new import."""
        r = self.record
        if marker.phase != "started" or r.history_state == "importing":
            return False  # a later chunk of the same sync, or the marker replayed after a restart
        r.history_state = "importing"
        r.history_started_at, r.history_finished_at = self._clock(), 0.0
        r.history_received = r.history_imported = r.history_skipped = r.history_duplicates = 0
        return True

    async def on_marker(self, marker: HistorySyncData, *, began: bool) -> None:
        """The marker's effect, in its lane: the start's notice, or the end's once settled."""
        if marker.phase == "started":
            await self._persist()
            if began:
                await self._announce(marker)
        elif marker.final:
            await self._finished()
        else:
            await self._persist()

    async def _announce(self, marker: HistorySyncData) -> None:
        log.info(
            "history import started",
            extra={
                "integration_id": self.record.id,
                "messages": marker.messages,
                "chats": marker.chats,
                "days": self.days,
            },
        )
        if self.days > 0:
            await self._post(
                f"📥 Importing WhatsApp history: {marker.messages} messages in {marker.chats} chats "
                f"arrived from the phone; the last {self.days} days go into this inbox, oldest first "
                "in each conversation, each with its original time on its first line."
            )

    async def _finished(self) -> None:
        try:
            await asyncio.wait_for(self._idle.wait(), self._settle_timeout)
        except TimeoutError:
            log.warning(
                "history import reported before all its messages settled",
                extra={"integration_id": self.record.id, "pending": self._pending},
            )
        r = self.record
        was_importing = r.history_state == "importing"
        r.history_state, r.history_finished_at = "done", self._clock()
        await self._persist()
        log.info(
            "history import finished",
            extra={
                "integration_id": r.id,
                "imported": r.history_imported,
                "duplicates": r.history_duplicates,
                "skipped": r.history_skipped,
            },
        )
        if was_importing and self.days > 0:
            await self._post(
                f"✅ WhatsApp history imported: {r.history_imported} messages added, "
                f"{r.history_duplicates} already here, {r.history_skipped} older than {self.days} days "
                "or not shown in Chatwoot."
            )

    # ------------------------------------------------------------------ helpers

    async def _persist(self) -> None:
        self._unsaved = 0
        r = self.record
        values: dict[str, Any] = {
            "history_state": r.history_state,
            "history_received": r.history_received,
            "history_imported": r.history_imported,
            "history_skipped": r.history_skipped,
            "history_duplicates": r.history_duplicates,
            "history_started_at": r.history_started_at,
            "history_finished_at": r.history_finished_at,
        }
        await self._save(**values)

    async def _post(self, text: str) -> None:
        if self.room is None:
            return
        try:
            await self.room.post(text)
        except ChatwootError as exc:  # the import itself went on: only the notice is missing
            log.warning(
                "could not post the history progress",
                extra={"integration_id": self.record.id, "error": str(exc)[:300]},
            )
