"""The connection conversation's ``resync``: ask the phone for recent history again.

``history_resync`` builds the ``HistoryResync`` callable the control commands run: it sends the
link command ``history_sync`` (RyzeAPI asks the engine for an on-demand sync, whatsmeow
``BuildHistorySyncRequest``) and answers with the text to post. The import itself arrives later,
as any history sync does, and posts its own start and end (``progress``).
"""

from __future__ import annotations

import logging
import uuid

from ryze.bridge.control.ports import HistoryResync
from ryze.bridge.link.client import LinkUnavailable
from ryze.bridge.relay.context import CommandLink
from ryze.bridge.store.repositories import IntegrationRecord
from ryze.protocol import CommandAction, CommandFrame, HistorySyncParams

log = logging.getLogger(__name__)

RESYNC_BUDGET = 30.0  # seconds to wait for RyzeAPI's answer to the request (not for the import)
MESSAGES_PER_CHAT = 50


def history_resync(
    link: CommandLink,
    record: IntegrationRecord,
    *,
    budget: float = RESYNC_BUDGET,
    per_chat: int = MESSAGES_PER_CHAT,
) -> HistoryResync:
    """The ``resync`` command of one integration (``record`` is its live row: the window read at
    each call, so a later ``set`` with another ``historyDays`` counts)."""

    async def resync() -> str:
        days = record.history_days
        if days <= 0:
            return (
                "History import is off for this inbox (historyDays = 0). Run POST /api/chatwoot/set "
                "with historyDays greater than 0 to turn it on, then resync."
            )
        # a fresh id per request: each resync is a new request, never a replay of the previous one
        frame = CommandFrame(
            id=f"cwhistory-{record.id}-{uuid.uuid4().hex}",
            action=CommandAction.HISTORY_SYNC,
            params=HistorySyncParams(days=days, count=per_chat).model_dump(),
        )
        try:
            result = await link.command(frame, budget=budget)
        except LinkUnavailable as exc:
            log.info("history resync not sent", extra={"integration_id": record.id, "error": str(exc)})
            return (
                f"WhatsApp history could not be requested: {exc}. Try resync again once RyzeAPI is reachable."
            )
        if not result.ok:
            log.info("history resync refused", extra={"integration_id": record.id, "error": result.error})
            return f"WhatsApp history could not be requested: {result.error}."
        log.info("history resync requested", extra={"integration_id": record.id, "days": days})
        return (
            f"Asked the phone for the last {days} days of WhatsApp history. The import's start and "
            "end are posted here when the phone answers (it must be online); messages already in "
            "this inbox are not added again."
        )

    return resync
