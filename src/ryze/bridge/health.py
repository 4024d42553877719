"""An integration's health: what makes it ``active``, ``paused`` or in ``error``, and the live
figures the metrics read.

The relay reports into it (Chatwoot errors, progress, WhatsApp's state), the link's state callback
updates it, and the status view, the persisted status row and ``/metrics`` read it. It knows
nothing of the runtime that owns it: its probes (link connected, queue depths) and the status
persistence are plain callables, so ``ryze.bridge.metrics`` and the relay import this module, never
``ryze.bridge.runtime``.

Status rules (``GET /v1/integrations/{id}``): ``paused`` when the operator paused it, the link to
RyzeAPI is down or WhatsApp is disconnected; ``error`` when Chatwoot refuses the integration (token
revoked, inbox deleted), its webhooks keep failing the signature check, or RyzeAPI refused the
link; else ``active``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ryze.bridge.errors import IntegrationBlocked
from ryze.chatwoot.errors import ChatwootAuthError, ChatwootError, ChatwootNotFound
from ryze.chatwoot.port import ChatwootPort
from ryze.protocol import IntegrationStatus

INBOX_CHECK_INTERVAL = 5.0  # seconds between two "is our inbox gone?" checks after 404s


def _zero() -> int:
    return 0


class IntegrationHealth:
    def __init__(
        self,
        *,
        inbox_id: int,
        chatwoot: Callable[[], ChatwootPort],
        operator_paused: Callable[[], bool],
        link_connected: Callable[[], bool],
        on_change: Callable[[], Coroutine[Any, Any, None]],
        webhook_error: Callable[[], str] = lambda: "",
        inbound_pending: Callable[[], int] = _zero,
        outbound_queued: Callable[[], int] = _zero,
    ) -> None:
        self._inbox_id = inbox_id
        self._chatwoot = chatwoot
        self._operator_paused = operator_paused
        self._link_connected = link_connected
        self._on_change = on_change
        self._webhook_error = webhook_error
        self._inbound_pending = inbound_pending
        self._outbound_queued = outbound_queued
        self.chatwoot_error = ""
        self._link_error = "link to RyzeAPI not connected yet"
        self._link_refused = False
        self._whatsapp_state = ""
        self._last_progress = 0.0
        self._inbox_checked_at = 0.0

    # -- live figures (read at scrape time) -----------------------------------------------------

    @property
    def link_connected(self) -> bool:
        return self._link_connected()

    @property
    def inbound_pending(self) -> int:
        return self._inbound_pending()

    @property
    def outbound_queued(self) -> int:
        return self._outbound_queued()

    # -- reports --------------------------------------------------------------------------------

    def note_progress(self) -> None:
        """Chatwoot took an effect: it is working (a reported Chatwoot error is over)."""
        self._last_progress = time.monotonic()
        if self.chatwoot_error:
            self.chatwoot_error = ""
            asyncio.get_running_loop().create_task(self._on_change())

    def progressed_since(self, started: float) -> bool:
        """Whether Chatwoot completed other work since ``started`` (``time.monotonic()``)."""
        return self._last_progress >= started

    async def report_chatwoot_error(self, exc: ChatwootError) -> None:
        if isinstance(exc, ChatwootAuthError):
            self.chatwoot_error = (
                f"Chatwoot rejected the API token ({exc.status}): {exc.body[:300]} — update it with set"
            )
        else:
            self.chatwoot_error = str(exc)[:500]
        await self._on_change()

    def clear_chatwoot_error(self) -> None:
        self.chatwoot_error = ""

    async def check_inbox(self) -> None:
        """After a 404: is our inbox gone? Then the integration is in error until set again."""
        now = time.monotonic()
        if now - self._inbox_checked_at < INBOX_CHECK_INTERVAL and not self.chatwoot_error.startswith(
            "inbox"
        ):
            return
        self._inbox_checked_at = now
        try:
            await self._chatwoot().show_inbox(self._inbox_id)
        except ChatwootNotFound as exc:
            self.chatwoot_error = (
                f"inbox {self._inbox_id} was deleted in Chatwoot; run set again to create a new one"
            )
            await self._on_change()
            raise IntegrationBlocked(self.chatwoot_error) from exc
        except ChatwootAuthError as exc:
            await self.report_chatwoot_error(exc)
            raise IntegrationBlocked(self.chatwoot_error) from exc

    async def set_whatsapp_state(self, state: str, reason: str | None) -> None:
        self._whatsapp_state = state
        await self._on_change()

    async def set_link_state(self, connected: bool, error: str, refused: bool) -> None:
        self._link_error = "" if connected else error
        self._link_refused = refused and not connected
        await self._on_change()

    # -- the status -----------------------------------------------------------------------------

    def status(self) -> tuple[IntegrationStatus, str]:
        if self._operator_paused():
            return IntegrationStatus.PAUSED, "paused by the operator"
        if self.chatwoot_error:
            return IntegrationStatus.ERROR, self.chatwoot_error
        if webhook_error := self._webhook_error():  # webhooks keep failing the signature check
            return IntegrationStatus.ERROR, webhook_error
        if not self._link_connected():
            if self._link_refused:
                return IntegrationStatus.ERROR, self._link_error
            return IntegrationStatus.PAUSED, self._link_error or "link to RyzeAPI is down"
        if self._whatsapp_state and self._whatsapp_state != "connected":
            return IntegrationStatus.PAUSED, f"WhatsApp instance is {self._whatsapp_state}"
        return IntegrationStatus.ACTIVE, ""
