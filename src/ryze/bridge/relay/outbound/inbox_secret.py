"""The inbox's webhook signing secret, re-read from Chatwoot when a signature does not match.

An administrator can reset it at any time (``POST /api/v1/accounts/{id}/inboxes/{id}/reset_secret``
→ ``channel.reset_secret!`` in Chatwoot ≥ 4.13, ``app/controllers/api/v1/accounts/inboxes_controller.rb``),
and from then on Chatwoot signs with the new one (``lib/webhooks/trigger.rb``). The bridge learns a
secret at activation only, so without this every later webhook would be refused (401) for good.

On a failed signature the inbox is read again (``GET …/inboxes/{id}``; ``secret`` is shown to
administrators only) — at most once per ``webhook_secret_recheck_interval`` per integration, so a
caller holding the webhook URL but not the secret cannot turn the bridge into a Chatwoot load
generator, and concurrent failures share one read. A new secret is stored (encrypted) and the
webhook verified again with it, so the first webhook after a reset is not lost. When the secret
Chatwoot shows still does not verify, or cannot be read, the integration reports ``error`` with a
``last_error`` saying so, until a webhook verifies again.

The other way round: an inbox created before Chatwoot 4.13 has no secret, and its webhooks are
admitted by the path secret alone. 4.13's migration gives every API channel a secret, and its
webhooks then arrive signed; the first signed one makes the bridge read the inbox in the
background (same rate limit) and keep the secret, so from then on the signature is required.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ryze.chatwoot import ChatwootError, ChatwootPort
from ryze.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

STILL_FAILS = (
    "webhooks from Chatwoot fail the signature check, also with the inbox's current secret: "
    "agent replies are not relayed (check that the inbox's webhook URL is this bridge's, or run set again)"
)
UNREADABLE = (
    "webhooks from Chatwoot fail the signature check and the API token cannot read the inbox's new "
    "signing secret (Chatwoot shows it to administrators only): agent replies are not relayed; "
    "run set again with an administrator's token"
)

UNREACHABLE_INBOX = (
    "webhooks from Chatwoot fail the signature check and the inbox could not be re-read to learn "
    "a new signing secret: agent replies are not relayed"
)


@dataclass(frozen=True, slots=True)
class RecheckLimits:
    interval: float  # at most one inbox read per this many seconds
    budget: float  # how long a webhook waits for that read before it is refused


class InboxSecret:
    """The current secret (``value``) and its re-reads; the integration's runtime wires it with
    what it needs: its Chatwoot port, a way to store a new secret, and a status-changed callback."""

    def __init__(
        self,
        value: str,
        *,
        integration_id: str,
        inbox_id: int,
        chatwoot: Callable[[], ChatwootPort],
        save: Callable[[str], Awaitable[None]],
        on_change: Callable[[], Awaitable[None]],
        limits: RecheckLimits,
    ) -> None:
        self.value = value
        self._integration_id = integration_id
        self._inbox_id = inbox_id
        self._chatwoot = chatwoot
        self._save = save
        self._on_change = on_change
        self._limits = limits
        self.error = ""  # last_error while webhooks keep failing the check
        self._read_at = float("-inf")
        self._reading: asyncio.Task[str | None] | None = None

    def _read_recently(self) -> bool:
        return time.monotonic() - self._read_at < self._limits.interval

    async def verify_with_fresh(self, tried: str, verify: Callable[[str], bool]) -> bool:
        """The webhook did not verify with ``tried``: True when it does with the secret Chatwoot has now."""
        current = self.value
        if current != tried and current and verify(current):
            return True  # another webhook's re-read got here first
        if self._reading is None and self._read_recently():
            return False  # read recently: the answer would be the same
        if self._reading is None:
            self._start_read(learning=False)
        assert self._reading is not None
        try:
            # shielded: a webhook that stops waiting does not cancel the read the others share
            fresh = await asyncio.wait_for(asyncio.shield(self._reading), self._limits.budget)
        except TimeoutError:
            return False
        except Exception:  # the read's own failure is logged by _forget_read: refuse
            return False
        if fresh is None:
            return False
        if verify(fresh):
            return True
        await self._report(STILL_FAILS)
        return False

    def learn_soon(self) -> None:
        """A signed webhook came for an inbox the bridge knows no secret of (created before Chatwoot
        4.13, which backfilled a secret into every API channel on upgrade): learn it in the
        background (rate-limited like the re-read), so from then on the signature is required."""
        if self._reading is None and not self._read_recently():
            self._start_read(learning=True)

    def _start_read(self, *, learning: bool) -> None:
        self._read_at = time.monotonic()
        self._reading = asyncio.create_task(self._read(learning), name=f"inbox-secret-{self._integration_id}")
        self._reading.add_done_callback(self._forget_read)

    async def close(self) -> None:
        """The integration stops: a read still running is cancelled (and awaited)."""
        reading = self._reading
        if reading is not None and not reading.done():  # (a finished one is reaped by _forget_read)
            await cancel_and_wait([reading])

    async def verified(self) -> None:
        """A webhook verified: whatever was reported is over."""
        if self.error:
            self.error = ""
            await self._on_change()

    def _forget_read(self, task: asyncio.Task[str | None]) -> None:
        self._reading = None
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "inbox secret re-read crashed",
                extra={"integration_id": self._integration_id},
                exc_info=task.exception(),
            )

    async def _read(self, learning: bool) -> str | None:
        """The secret Chatwoot holds now (stored when it changed), or None when it cannot be read.
        While ``learning``, a failure changes nothing: webhooks are still admitted as before."""
        try:
            inbox = await self._chatwoot().show_inbox(self._inbox_id)
        except ChatwootError as exc:
            log.warning(
                "could not re-read the inbox after a webhook signature mismatch",
                extra={"integration_id": self._integration_id, "error": str(exc)[:300]},
            )
            if not exc.retryable and not learning:  # refused (401, 404…), not a passing outage
                await self._report(f"{UNREACHABLE_INBOX} ({exc.status}: {exc.body[:200]})")
            return None
        fresh = inbox.secret or ""
        if not fresh:
            if not learning:
                await self._report(UNREADABLE)
            return None
        if fresh != self.value:
            await self._save(fresh)
            self.value = fresh
            log.info(
                "inbox signing secret learnt" if learning else "inbox signing secret changed in Chatwoot",
                extra={"integration_id": self._integration_id},
            )
        return fresh

    async def _report(self, error: str) -> None:
        if self.error != error:
            self.error = error
            log.warning("webhook signature still rejected", extra={"integration_id": self._integration_id})
            await self._on_change()
