"""`ChatwootEmulator`: the in-memory Chatwoot v4.15 stand-in and its ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from . import errors
from .agent import Agent
from .domain import Chatwoot, Settings
from .events import EventBus
from .faults import FaultMiddleware, Faults
from .jobs import Jobs
from .proxy import NginxHeaderMiddleware
from .recorder import Recorder, RecorderMiddleware
from .routes import contacts, control, conversations, inboxes, messages, server, storage
from .seed import EmulatorSeed
from .state import JSON, Store
from .views import conversation_json, message_json
from .webhooks import CHATWOOT_VERSION, WebhookDispatcher


class ChatwootEmulator:
    """One emulated Chatwoot installation. `app` is the ASGI app to serve or to test
    through `httpx.ASGITransport`; `state`, `recorder`, `faults` are for assertions and
    run-time control."""

    def __init__(
        self,
        seed: EmulatorSeed | None = None,
        public_url: str | None = None,
        *,
        webhook_timeout: float = 5.0,
        storage_delay_ms: float = 0.0,
        message_per_minute_limit: int = 200,
        webhook_workers: int = 8,
        recorder_maxlen: int = 20_000,
        job_delay: float = 0.0,
    ) -> None:
        self.seed = seed if seed is not None else EmulatorSeed.default()
        self.public_url = public_url.rstrip("/") if public_url else None
        self._seen_base: str | None = None
        self.storage_delay_ms = storage_delay_ms
        self.state = Store(self.seed)
        self.bus = EventBus()
        self.domain = Chatwoot(
            self.state,
            self.bus,
            Settings(message_per_minute_limit=message_per_minute_limit),
            self._webhook_base,
        )
        self.webhooks = WebhookDispatcher(
            self.state, self._on_webhook_failure, timeout=webhook_timeout, shards=webhook_workers
        )
        self.bus.sink = self.webhooks
        # `config/app.yml` version, as `GET /api` reports it; from 4.14 on webhooks go through
        # SafeFetch (see WebhookDispatcher.safe_fetch_refusal).
        self.version = CHATWOOT_VERSION
        self.faults = Faults()
        self.jobs = Jobs(delay=job_delay)
        self.recorder = Recorder(maxlen=recorder_maxlen)
        self.agent = Agent(self.state, self.domain)
        # The recorder sees what the client sent; the proxy then filters it as nginx would.
        self.proxy = NginxHeaderMiddleware(FaultMiddleware(self._starlette(), self.faults))
        self.app: ASGIApp = RecorderMiddleware(self.proxy, self.recorder)

    # --- URLs ------------------------------------------------------------------------

    def base_url(self, request: Request | None = None) -> str:
        """FRONTEND_URL for attachment links: the configured public URL, else the URL
        the client used (remembered so webhooks built later agree with REST answers)."""
        if self.public_url:
            return self.public_url
        if request is not None:
            self._seen_base = str(request.base_url).rstrip("/")
        return self._webhook_base()

    def _webhook_base(self) -> str:
        return self.public_url or self._seen_base or "http://127.0.0.1"

    # --- app -------------------------------------------------------------------------

    def _starlette(self) -> Starlette:
        async def not_found(_request: Request, _exc: Exception) -> Response:
            return errors.route_not_found().response()

        async def server_error(_request: Request, _exc: Exception) -> Response:
            return errors.internal_error().response()

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            yield
            await self.aclose()

        app = Starlette(
            # Starlette tries routes in order: the hot path (message create) goes first.
            routes=[
                *messages.routes,
                *conversations.routes,
                *contacts.routes,
                *inboxes.routes,
                *storage.routes,
                *server.routes,
                *control.routes,
            ],
            exception_handlers={404: not_found, 405: not_found, 500: server_error},
            lifespan=lifespan,
        )
        app.state.emulator = self
        return app

    async def aclose(self) -> None:
        """Release hung requests and stop the webhook workers."""
        self.faults.closing.set()
        await self.jobs.close()
        await self.webhooks.close()

    # --- webhooks --------------------------------------------------------------------

    def _on_webhook_failure(self, message_id: int, error: str) -> None:
        self.domain.mark_webhook_failed(message_id, error)

    async def incoming_dispatch_idle(self) -> None:
        """Wait until the webhook queues are drained, including failure follow-ups."""
        await self.webhooks.idle()

    async def jobs_idle(self) -> None:
        """Wait until every enqueued background job (DeleteObjectJob) has run."""
        await self.jobs.idle()

    # --- agent actions ---------------------------------------------------------------

    async def agent_reply(
        self,
        account_id: int,
        conversation_display_id: int,
        content: str | None,
        private: bool = False,
        attachments: Sequence[tuple[str, bytes, str]] = (),
        user_email: str | None = None,
        content_attributes: JSON | None = None,
    ) -> JSON:
        msg = self.agent.reply(
            account_id,
            conversation_display_id,
            content,
            private=private,
            attachments=attachments,
            user_email=user_email,
            content_attributes=content_attributes,
        )
        return message_json(self.state, self._webhook_base(), msg)

    async def agent_start_conversation(
        self, account_id: int, contact_id: int, inbox_id: int, content: str, user_email: str | None = None
    ) -> JSON:
        conv = self.agent.start_conversation(account_id, contact_id, inbox_id, content, user_email=user_email)
        return conversation_json(self.state, self._webhook_base(), conv)

    async def agent_delete(self, account_id: int, conversation_display_id: int, message_id: int) -> JSON:
        msg = self.agent.delete(account_id, conversation_display_id, message_id)
        return message_json(self.state, self._webhook_base(), msg)

    async def agent_toggle_status(
        self,
        account_id: int,
        conversation_display_id: int,
        status: str | None = None,
        user_email: str | None = None,
    ) -> JSON:
        conv = self.agent.toggle_status(account_id, conversation_display_id, status, user_email)
        return conversation_json(self.state, self._webhook_base(), conv)

    async def agent_typing(
        self, account_id: int, conversation_display_id: int, on: bool = True, private: bool = False
    ) -> None:
        self.agent.typing(account_id, conversation_display_id, on, private=private)

    # --- run-time settings -------------------------------------------------------------

    def configure(self, **settings: Any) -> None:
        """Change settings at run time (also `POST /_emulator/settings`)."""
        for key, value in settings.items():
            if key == "webhook_timeout":
                self.webhooks.timeout = float(value)
            elif key == "storage_delay_ms":
                self.storage_delay_ms = float(value)
            elif key == "message_per_minute_limit":
                self.domain.settings.message_per_minute_limit = int(value)
            elif key == "webhooks_enabled":
                self.webhooks.enabled = bool(value)
            elif key == "webhook_delivery":
                if value not in ("ordered", "sidekiq"):
                    raise ValueError("webhook_delivery must be 'ordered' or 'sidekiq'")
                self.webhooks.delivery = str(value)
            elif key == "webhook_duplicate_rate":
                rate = float(value)
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("webhook_duplicate_rate must be within 0..1")
                self.webhooks.duplicate_rate = rate
            elif key == "webhook_hold":
                if value:
                    self.webhooks.hold()
                else:
                    self.webhooks.release()
            elif key == "webhook_release":
                self.webhooks.release(str(value))
            elif key == "webhook_signing":
                self.domain.settings.webhook_signing = bool(value)
            elif key == "version":
                self.version = str(value)
                self.webhooks.version = self.version
            elif key == "safe_fetch_allow_private_network":
                self.webhooks.allow_private_network = bool(value)
            elif key == "role":
                # An administrator changes a member's role (Settings → Agents, AgentsController#update).
                self.set_role(int(value["account_id"]), str(value["email"]), str(value["role"]))
            elif key == "recorder_enabled":
                self.recorder.enabled = bool(value)
            elif key == "job_delay":
                self.jobs.delay = float(value)
            elif key == "drop_underscore_headers":
                self.proxy.drop_underscore_headers = bool(value)
            elif key == "inbox_limit":
                account_id, limit = (
                    (value["account_id"], value["limit"]) if isinstance(value, dict) else (1, value)
                )
                self.state.accounts[int(account_id)].inbox_limit = None if limit is None else int(limit)
            else:
                raise ValueError(f"unknown setting {key!r}")

    def set_role(self, account_id: int, email: str, role: str) -> None:
        if role not in ("administrator", "agent"):
            raise ValueError("role must be 'administrator' or 'agent'")
        user = self.state.user_by_email(email)
        account = self.state.accounts.get(account_id)
        if user is None or account is None or user.id not in account.roles:
            raise ValueError(f"{email} is not a member of account {account_id}")
        account.roles[user.id] = "administrator" if role == "administrator" else "agent"

    def settings_json(self) -> JSON:
        return {
            "public_url": self._webhook_base(),
            "webhook_timeout": self.webhooks.timeout,
            "storage_delay_ms": self.storage_delay_ms,
            "message_per_minute_limit": self.domain.settings.message_per_minute_limit,
            "webhooks_enabled": self.webhooks.enabled,
            "webhook_delivery": self.webhooks.delivery,
            "webhook_duplicate_rate": self.webhooks.duplicate_rate,
            "webhook_hold": self.webhooks.holding,
            "webhook_signing": self.domain.settings.webhook_signing,
            "version": self.version,
            "safe_fetch_allow_private_network": self.webhooks.allow_private_network,
            "recorder_enabled": self.recorder.enabled,
            "drop_underscore_headers": self.proxy.drop_underscore_headers,
            "job_delay": self.jobs.delay,
            "inbox_limits": {str(a.id): a.inbox_limit for a in self.state.accounts.values()},
        }
