"""One integration at run time: its Chatwoot client, link, lanes, resolver and workers, and its status.

Status (owned by the bridge, mirrored to RyzeAPI through ``GET /v1/integrations/{id}``):
``paused`` when the operator paused it, the link to RyzeAPI is down or WhatsApp is disconnected;
``error`` when Chatwoot refuses the integration (token revoked, inbox deleted); else ``active``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from ryze.bridge.errors import IntegrationBlocked
from ryze.bridge.link.client import LinkClient
from ryze.bridge.metrics import BridgeMetrics, detached
from ryze.bridge.relay.inbound.consumer import InboundRelay
from ryze.bridge.relay.inbound.lanes import LaneRouter
from ryze.bridge.relay.inbound.resolver import ConversationPolicy, ConversationResolver
from ryze.bridge.relay.outbound.inbox_secret import InboxSecret
from ryze.bridge.relay.outbound.worker import OutboundWorker
from ryze.bridge.settings import BridgeSettings
from ryze.bridge.store.repositories import IntegrationRecord, Repositories
from ryze.chatwoot import ChatwootAuthError, ChatwootClient, ChatwootError, ChatwootNotFound, ChatwootSessions
from ryze.common.crypto import SecretBox
from ryze.common.logging import register_secret
from ryze.protocol import IntegrationStatus, IntegrationView, link_url

log = logging.getLogger(__name__)

INBOX_SECRET_AD = "{id}:inbox_secret"  # noqa: S105 (associated-data template, not a secret)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class IntegrationRuntime:
    def __init__(
        self,
        record: IntegrationRecord,
        *,
        settings: BridgeSettings,
        repos: Repositories,
        sessions: ChatwootSessions,
        box: SecretBox,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.record = record
        self.metrics = metrics if metrics is not None else detached()
        self.id = record.id
        self.settings = settings
        self.repos = repos
        self._sessions = sessions
        self._token = box.decrypt(record.token_enc, record.id)
        register_secret(self._token)
        self.inbox_secret = (
            box.decrypt(record.inbox_secret_enc, INBOX_SECRET_AD.format(id=record.id))
            if record.inbox_secret_enc
            else ""
        )
        self.webhook_secret = InboxSecret(self, box, INBOX_SECRET_AD.format(id=record.id))
        self._client: ChatwootClient | None = None
        self._chatwoot_error = ""
        self._link_error = "link to RyzeAPI not connected yet"
        self._whatsapp_state = ""
        self._link_refused = False
        self._last_progress = 0.0
        self._inbox_checked_at = 0.0
        self._status_lock = asyncio.Lock()
        self.lanes = LaneRouter(max_concurrent=settings.max_chat_lanes, name=record.id)
        self.resolver = ConversationResolver(
            integration_id=record.id,
            inbox_id=record.inbox_id,
            chats=repos.chats,
            client=self.client,
            policy=lambda: ConversationPolicy(self.record.reopen_resolved, self.record.start_as_pending),
        )
        self.inbound = InboundRelay(self)
        self.outbound = OutboundWorker(self)
        self.link = LinkClient(
            integration_id=record.id,
            url=link_url(record.ryzeapi_url, record.instance),
            token=settings.token,
            watermark=record.watermark,
            on_event=self.inbound.on_event,
            on_state=self._on_link_state,
            save_watermark=self._save_watermark,
            backoff_base=settings.link_backoff_base,
            backoff_max=settings.link_backoff_max,
            ping_interval=settings.link_ping_interval,
            max_inflight=settings.link_max_inflight,
        )

    # ------------------------------------------------------------------ lifecycle

    def client(self) -> ChatwootClient:
        if self._client is None:
            self._client = self._sessions.client(
                self.record.chatwoot_base_url,
                self.record.chatwoot_account_id,
                self._token,
                timeout=self.settings.chatwoot_timeout,
            )
        return self._client

    def start(self, *, delay: float = 0.0, load_jobs: bool = True) -> None:
        if self.record.operator_paused:
            return
        self.link.start(delay=delay)
        self.outbound.start(load=load_jobs)

    async def stop(self) -> None:
        await self.outbound.stop()
        await self.link.stop()
        await self.lanes.close()
        await self.webhook_secret.close()

    async def pause(self) -> None:
        self.record.operator_paused = True
        await self.repos.integrations.update(self.id, operator_paused=True)
        await self.outbound.stop()
        await self.link.stop()
        await self.lanes.close()
        self.inbound.reset()
        await self.refresh_status()

    async def resume(self) -> None:
        self.record.operator_paused = False
        await self.repos.integrations.update(self.id, operator_paused=False)
        self._chatwoot_error = ""
        self.start()
        await self.refresh_status()

    # ------------------------------------------------------------------ link callbacks

    def link_done(self, seq: int) -> None:
        self.link.done(seq)

    async def _save_watermark(self, mark: int) -> None:
        self.record.watermark = mark
        await self.repos.integrations.update(self.id, watermark=mark)

    async def _on_link_state(self, connected: bool, error: str, refused: bool) -> None:
        self._link_error = "" if connected else error
        self._link_refused = refused and not connected
        if connected:
            self.outbound.wake()
        await self.refresh_status()

    # ------------------------------------------------------------------ health

    def note_progress(self) -> None:
        self._last_progress = time.monotonic()
        if self._chatwoot_error:
            self._chatwoot_error = ""
            asyncio.get_running_loop().create_task(self.refresh_status())

    def progressed_since(self, started: float) -> float:
        """How much a failed attempt counts toward giving up: fully when Chatwoot is otherwise working."""
        return 1.0 if self._last_progress >= started else 0.25

    async def report_chatwoot_error(self, exc: ChatwootError) -> None:
        if isinstance(exc, ChatwootAuthError):
            self._chatwoot_error = (
                f"Chatwoot rejected the API token ({exc.status}): {exc.body[:300]} — update it with set"
            )
        else:
            self._chatwoot_error = str(exc)[:500]
        await self.refresh_status()

    async def check_inbox(self) -> None:
        """After a 404: is our inbox gone? Then the integration is in error until set again."""
        now = time.monotonic()
        if now - self._inbox_checked_at < 5.0 and not self._chatwoot_error.startswith("inbox"):
            return
        self._inbox_checked_at = now
        try:
            await self.client().show_inbox(self.record.inbox_id)
        except ChatwootNotFound as exc:
            self._chatwoot_error = (
                f"inbox {self.record.inbox_id} was deleted in Chatwoot; run set again to create a new one"
            )
            await self.refresh_status()
            raise IntegrationBlocked(self._chatwoot_error) from exc
        except ChatwootAuthError as exc:
            await self.report_chatwoot_error(exc)
            raise IntegrationBlocked(self._chatwoot_error) from exc

    async def set_whatsapp_state(self, state: str, reason: str | None) -> None:
        self._whatsapp_state = state
        await self.refresh_status()

    def compute_status(self) -> tuple[IntegrationStatus, str]:
        if self.record.operator_paused:
            return IntegrationStatus.PAUSED, "paused by the operator"
        if self._chatwoot_error:
            return IntegrationStatus.ERROR, self._chatwoot_error
        if self.webhook_secret.error:
            return IntegrationStatus.ERROR, self.webhook_secret.error
        if not self.link.connected:
            if self._link_refused:
                return IntegrationStatus.ERROR, self._link_error
            return IntegrationStatus.PAUSED, self._link_error or "link to RyzeAPI is down"
        if self._whatsapp_state and self._whatsapp_state != "connected":
            return IntegrationStatus.PAUSED, f"WhatsApp instance is {self._whatsapp_state}"
        return IntegrationStatus.ACTIVE, ""

    async def refresh_status(self) -> None:
        async with self._status_lock:
            status, error = self.compute_status()
            if status.value == self.record.status and error == self.record.last_error:
                return
            self.record.status, self.record.last_error = status.value, error
            try:
                await self.repos.integrations.update(self.id, status=status.value, last_error=error)
            except Exception:  # the in-memory status is authoritative; the row catches up next change
                log.warning(
                    "could not persist the integration status",
                    extra={"integration_id": self.id},
                    exc_info=True,
                )
            log.info(
                "integration status",
                extra={"integration_id": self.id, "status": status.value, "last_error": error},
            )

    def view(self) -> IntegrationView:
        status, error = self.compute_status()
        r = self.record
        return IntegrationView(
            id=r.id,
            instance=r.instance,
            status=status,
            last_error=error,
            inbox_id=r.inbox_id,
            inbox_name=r.inbox_name,
            chatwoot_base_url=r.chatwoot_base_url,
            chatwoot_account_id=r.chatwoot_account_id,
            sign_messages=r.sign_messages,
            ignore_groups=r.ignore_groups,
            start_as_pending=r.start_as_pending,
            reopen_resolved=r.reopen_resolved,
            link_connected=self.link.connected,
            last_acked_seq=self.link.watermark,
            created_at=_iso(r.created_at),
            updated_at=_iso(r.updated_at),
        )
