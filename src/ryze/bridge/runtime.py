"""One integration at run time: it builds and owns its Chatwoot client, link, lanes, resolver,
health and the two relay directions, and persists its status.

The runtime is a composition root, not a locator: the relay gets narrow collaborators
(``ryze.bridge.relay.context.RelayContext``: repositories, a ``ChatwootPort``, the health object,
metrics, the retry policy; plus its lanes, resolver and link), and nothing it builds imports this
module. Status rules are in ``ryze.bridge.health``; the status is mirrored to RyzeAPI through
``GET /v1/integrations/{id}``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from ryze.bridge.control.center import ControlCenter
from ryze.bridge.control.ports import HistoryResync
from ryze.bridge.control.probe import WebhookProbe
from ryze.bridge.control.store import ControlRoomStore
from ryze.bridge.health import IntegrationHealth
from ryze.bridge.link.client import LinkClient
from ryze.bridge.metrics import BridgeMetrics, detached
from ryze.bridge.relay.context import RelayContext
from ryze.bridge.relay.history.progress import HistoryProgress
from ryze.bridge.relay.history.resync import history_resync
from ryze.bridge.relay.inbound.avatars import AvatarLimits, AvatarRefresher, RyzePictures
from ryze.bridge.relay.inbound.consumer import InboundRelay
from ryze.bridge.relay.inbound.lanes import LaneRouter
from ryze.bridge.relay.inbound.media import MediaLimits, RyzeMedia
from ryze.bridge.relay.inbound.resolver import ConversationPolicy, ConversationResolver
from ryze.bridge.relay.outbound.catchup import CatchupLimits, CatchupSweep
from ryze.bridge.relay.outbound.inbox_secret import InboxSecret, RecheckLimits
from ryze.bridge.relay.outbound.worker import OutboundWorker
from ryze.bridge.retry import RetryPolicy
from ryze.bridge.settings import BridgeSettings
from ryze.bridge.store.repositories import IntegrationRecord, Repositories
from ryze.chatwoot import ChatwootClient, ChatwootSessions
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
        self._box = box
        self.webhook_secret = InboxSecret(
            box.decrypt(record.inbox_secret_enc, INBOX_SECRET_AD.format(id=record.id))
            if record.inbox_secret_enc
            else "",
            integration_id=record.id,
            inbox_id=record.inbox_id,
            chatwoot=self.client,
            save=self._save_inbox_secret,
            on_change=self.refresh_status,
            limits=RecheckLimits(
                interval=settings.webhook_secret_recheck_interval,
                budget=min(settings.chatwoot_timeout, settings.webhook_secret_recheck_budget),
            ),
        )
        self._client: ChatwootClient | None = None
        self._status_lock = asyncio.Lock()
        self.probe = WebhookProbe()  # the self-check's round trip watches its note's webhook here
        self.lanes = LaneRouter(max_concurrent=settings.max_chat_lanes, name=record.id)
        self.resolver = ConversationResolver(
            integration_id=record.id,
            inbox_id=record.inbox_id,
            chats=repos.chats,
            client=self.client,
            policy=lambda: ConversationPolicy(self.record.reopen_resolved, self.record.start_as_pending),
        )
        self.health = IntegrationHealth(
            inbox_id=record.inbox_id,
            chatwoot=self.client,
            operator_paused=lambda: self.record.operator_paused,
            link_connected=lambda: self.link.connected,
            on_change=self.refresh_status,
            webhook_error=lambda: self.webhook_secret.error,
            inbound_pending=lambda: self.link.pending,
            outbound_queued=lambda: self.outbound.queued,
        )
        context = RelayContext(
            integration_id=record.id,
            record=record,
            messages=repos.messages,
            jobs=repos.outbound,
            chatwoot=self.client,
            health=self.health,
            metrics=self.metrics,
            retry=RetryPolicy(settings.retry_base_seconds, settings.retry_max_seconds, settings.max_attempts),
        )
        self.media = RyzeMedia(
            record.ryzeapi_url,
            settings.token,
            MediaLimits(
                max_bytes=settings.media_max_bytes,
                attempts=settings.media_attempts,
                retry_base=settings.media_retry_base_seconds,
            ),
        )
        # The history import's progress; its connection-conversation posts start once a control
        # room is attached (``self.history.room``).
        self.history = HistoryProgress(record, save=self._save_history)
        self.pictures = RyzePictures(record.ryzeapi_url, record.instance, settings.token)
        self.avatars = (
            AvatarRefresher(
                integration_id=record.id,
                chats=repos.chats,
                client=self.client,
                pictures=self.pictures,
                limits=AvatarLimits(
                    interval=settings.avatar_refresh_seconds, concurrency=settings.avatar_concurrency
                ),
            )
            if settings.avatar_refresh_seconds > 0
            else None
        )
        self.inbound = InboundRelay(
            context,
            lanes=self.lanes,
            resolver=self.resolver,
            done=self.link_done,
            media=self.media,
            live_location_interval=settings.live_location_interval,
            history=self.history,
            on_state=lambda data: self.control.on_state(data),
            avatars=self.avatars,
        )
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
        self.outbound = OutboundWorker(
            context,
            link=self.link,
            max_lanes=settings.max_chat_lanes,
            command_timeout=settings.command_timeout,
            reorder_window=settings.outbound_reorder_window,
            mark_read_on_reply=settings.mark_read_on_reply,
        )
        # The connection conversation (docs/control-room.md). `resync` runs the history import's
        # request; `selfcheck` is given by the self-check service (``SelfChecks.attach``).
        self.control = ControlCenter(
            integration_id=record.id,
            instance=record.instance,
            inbox_id=record.inbox_id,
            chatwoot=self.client,
            store=ControlRoomStore(repos.integrations.db, record.id),
            link=self.link,
            relay_status=self._relay_status,
            resync=self.history_resync(),
            enabled=settings.control_room,
        )
        if settings.control_room:
            self.history.room = self.control.room  # the import's start and end are posted there
        # Agent messages whose webhook never reached the bridge (down, or storage failing): listed
        # in Chatwoot and enqueued at start and after a webhook could not be stored. Looking back
        # no further than finished jobs are kept, so a job pruned cannot make a message go twice.
        self.catchup = CatchupSweep(
            integration_id=record.id,
            inbox_id=record.inbox_id,
            created_at=record.created_at,
            last_seen=record.last_webhook_at,
            chatwoot=self.client,
            jobs=repos.outbound,
            worker=self.outbound,
            chat_of=lambda conversation_id: repos.chats.chat_of_conversation(record.id, conversation_id),
            is_control=lambda conversation_id: self.control.owns(conversation_id),
            save_seen=lambda at: repos.integrations.update(record.id, last_webhook_at=at),
            limits=CatchupLimits(
                window=min(settings.catchup_window, max(0.0, settings.job_retention_seconds - 120)),
                max_pages=settings.catchup_max_pages,
            ),
        )

    @property
    def inbox_secret(self) -> str:
        """The inbox's current webhook signing secret ("" when the inbox has none)."""
        return self.webhook_secret.value

    async def _save_inbox_secret(self, fresh: str) -> None:
        register_secret(fresh)
        encrypted = self._box.encrypt(fresh, INBOX_SECRET_AD.format(id=self.id))
        await self.repos.integrations.update(self.id, inbox_secret_enc=encrypted)
        self.record.inbox_secret_enc = encrypted

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
        self.catchup.start(delay=delay)

    async def stop(self) -> None:
        await self.control.stop()
        await self.catchup.stop()
        await self.outbound.stop()
        await self.link.stop()
        await self.lanes.close()
        await self.webhook_secret.close()
        await self.media.close()
        if self.avatars is not None:
            await self.avatars.close()
        await self.pictures.close()

    async def pause(self) -> None:
        self.record.operator_paused = True
        await self.repos.integrations.update(self.id, operator_paused=True)
        await self.catchup.stop()
        await self.outbound.stop()
        await self.link.stop()
        await self.lanes.close()
        self.inbound.reset()
        await self.refresh_status()

    async def resume(self) -> None:
        self.record.operator_paused = False
        await self.repos.integrations.update(self.id, operator_paused=False)
        self.health.clear_chatwoot_error()
        self.start()
        await self.refresh_status()

    # ------------------------------------------------------------------ link callbacks

    def link_done(self, seq: int) -> None:
        self.link.done(seq)

    async def _save_history(self, **values: object) -> None:
        await self.repos.integrations.update(self.id, **values)

    def history_resync(self) -> HistoryResync:
        """The ``resync`` command's callable for this integration (the control commands run it)."""
        return history_resync(self.link, self.record)

    async def _save_watermark(self, mark: int) -> None:
        self.record.watermark = mark
        await self.repos.integrations.update(self.id, watermark=mark)

    async def _on_link_state(self, connected: bool, error: str, refused: bool) -> None:
        if connected:
            self.outbound.wake()
        await self.health.set_link_state(connected, error, refused)
        if connected:
            self.control.on_link_ready()

    # ------------------------------------------------------------------ status

    def _relay_status(self) -> str:
        """The relay's side of the ``status`` command, in words."""
        status, error = self.compute_status()
        because = f" ({error})" if error else ""
        link = "up" if self.link.connected else "down"
        return (
            f"Inbox relay: {status.value}{because}. Link to RyzeAPI: {link}. "
            f"WhatsApp events waiting: {self.link.pending}; agent replies queued: {self.outbound.queued}."
        )

    def compute_status(self) -> tuple[IntegrationStatus, str]:
        return self.health.status()

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
            history=self.history.view(),
        )
