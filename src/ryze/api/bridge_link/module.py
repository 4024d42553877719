"""Wires the Chatwoot module into the RyzeAPI app: routes, bus subscription, instance hooks,
start-up and shutdown work (``create_app`` calls ``install``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import FastAPI

from ryze.api.bridge_link.bridge_client import BridgeClient
from ryze.api.bridge_link.commands import CommandRunner
from ryze.api.bridge_link.config import ChatwootConfig
from ryze.api.bridge_link.control import InstanceControl
from ryze.api.bridge_link.errors import ModuleError, gate_closed
from ryze.api.bridge_link.event_log import EventLog, EventLogWriter
from ryze.api.bridge_link.hooks import ChatwootHooks
from ryze.api.bridge_link.link import LinkHub, LinkSettings
from ryze.api.bridge_link.repository import IntegrationRepository
from ryze.api.bridge_link.service import ChatwootService
from ryze.api.services.container import ApiServices
from ryze.common.logging import register_secret
from ryze.protocol import MEDIA_PATH

log = logging.getLogger(__name__)

COMMAND_RESULT_TTL = timedelta(days=7)  # far beyond any bridge retry horizon
_HOUSEKEEPING_EVERY = 3600.0


@dataclass
class ChatwootModule:
    service: ChatwootService
    hub: LinkHub
    event_log: EventLog
    commands: CommandRunner
    bridge: BridgeClient
    hooks: ChatwootHooks
    _housekeeping: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def config(self) -> ChatwootConfig:
        return self.service.config

    def gate_error(self) -> ModuleError:
        return gate_closed()

    async def start(self) -> None:
        self.event_log.start()
        await self.service.load()
        self._housekeeping = asyncio.create_task(self._housekeep(), name="chatwoot-housekeeping")

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        await self.hub.close_all()
        await self.event_log.stop()
        await self.commands.aclose()
        await self.bridge.close()

    async def _housekeep(self) -> None:
        while True:
            try:
                removed = await self.commands.prune(COMMAND_RESULT_TTL)
                if removed:
                    log.info("pruned old bridge command results", extra={"removed": removed})
            except Exception:
                log.exception("bridge command result pruning failed")
            await asyncio.sleep(_HOUSEKEEPING_EVERY)


def build(services: ApiServices) -> ChatwootModule:
    config = ChatwootConfig.from_settings(services.settings)
    register_secret(config.bridge_token)
    engine = services.db.engine
    event_log = EventLog(engine)
    commands = CommandRunner(
        engine, services.messaging, media_retry_seconds=services.settings.bridge_media_retry_seconds
    )
    hub = LinkHub(
        event_log,
        commands,
        LinkSettings(
            window=config.window,
            ping_interval=config.ping_interval,
            resume_timeout=config.resume_timeout,
            max_concurrent_commands=config.max_concurrent_commands,
        ),
        control=InstanceControl(services.instances, services.sessions),
    )
    bridge = BridgeClient(config.bridge_url, config.bridge_token)
    service = ChatwootService(
        config, IntegrationRepository(engine), bridge, services.secret_box, event_log, hub
    )
    return ChatwootModule(service, hub, event_log, commands, bridge, ChatwootHooks(service))


def install(app: FastAPI, services: ApiServices) -> ChatwootModule:
    """Register the module's routes, bus subscription and instance hooks on ``app``."""
    from ryze.api.bridge_link.routes import build_router  # routes import this module for typing

    module = build(services)
    app.state.chatwoot = module
    app.include_router(build_router(module, services))
    # Messages' events are written in the message store's transaction (the writer); the handler
    # logs the other events (receipts, instance states).
    services.bus.subscribe(
        module.service.on_event, writer=EventLogWriter(module.event_log, module.service.log_payload)
    )
    # A successful command's result commits with the message it sent (no transaction of its own).
    services.bus.add_writer(module.commands.recorder)
    if module.config.enabled:  # the bridge downloads a message's media from the internal route
        internal_url = module.config.internal_url
        services.bus.set_media_locator(
            lambda instance, message_id: (
                internal_url + MEDIA_PATH.format(instance=instance, message_id=message_id)
            )
        )
    services.instance_hooks.append(module.hooks)
    services.on_startup.append(module.start)
    services.on_shutdown.append(module.stop)

    async def scrape() -> None:
        services.metrics.links_connected.set(module.hub.count)
        services.metrics.events_unacked.set(await module.event_log.unacked_total())

    services.metrics.on_scrape(scrape)
    return module
