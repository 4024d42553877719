"""Every integration's runtime, started together (staggered) and stopped together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ryze.bridge.metrics import BridgeMetrics
from ryze.bridge.runtime import IntegrationRuntime
from ryze.bridge.settings import BridgeSettings
from ryze.bridge.store.repositories import IntegrationRecord, Repositories
from ryze.chatwoot import ChatwootSessions
from ryze.common.crypto import CryptoError, SecretBox

log = logging.getLogger(__name__)


class IntegrationManager:
    def __init__(
        self,
        *,
        settings: BridgeSettings,
        repos: Repositories,
        sessions: ChatwootSessions,
        box: SecretBox,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.repos = repos
        self.sessions = sessions
        self.box = box
        self.runtimes: dict[str, IntegrationRuntime] = {}
        # Called with each runtime as it is built: services that live beyond one runtime (the
        # self-check) hand it what it needs here, so the runtime does not know them.
        self.on_build: list[Callable[[IntegrationRuntime], None]] = []
        self._lock = asyncio.Lock()

    def get(self, integration_id: str) -> IntegrationRuntime | None:
        return self.runtimes.get(integration_id)

    def build(self, record: IntegrationRecord) -> IntegrationRuntime:
        runtime = IntegrationRuntime(
            record,
            settings=self.settings,
            repos=self.repos,
            sessions=self.sessions,
            box=self.box,
            metrics=self.metrics,
        )
        for hook in self.on_build:
            hook(runtime)
        return runtime

    async def start_all(self) -> int:
        """Re-link every stored integration, spreading the dials so thousands don't stampede RyzeAPI."""
        records = await self.repos.integrations.list_all()
        with_jobs = await self.repos.outbound.integrations_with_pending()
        spread = min(self.settings.relink_spread_seconds, 0.005 * len(records))
        started = 0
        for index, record in enumerate(records):
            try:
                runtime = self.build(record)
            except CryptoError as exc:
                log.error(
                    "integration token cannot be decrypted",
                    extra={"integration_id": record.id, "error": str(exc)},
                )
                await self.repos.integrations.update(
                    record.id, status="error", last_error=f"stored Chatwoot token cannot be decrypted: {exc}"
                )
                continue
            self.runtimes[record.id] = runtime
            runtime.start(delay=spread * index / max(1, len(records)), load_jobs=record.id in with_jobs)
            started += 1
        log.info("integrations re-linked", extra={"count": started, "spread_seconds": spread})
        return started

    async def add(self, record: IntegrationRecord) -> IntegrationRuntime:
        async with self._lock:
            old = self.runtimes.pop(record.id, None)
            if old is not None:
                await old.stop()
                record.watermark = max(record.watermark, old.link.watermark)
            runtime = self.build(record)
            self.runtimes[record.id] = runtime
            runtime.start()
            return runtime

    async def remove(self, integration_id: str) -> None:
        async with self._lock:
            runtime = self.runtimes.pop(integration_id, None)
        if runtime is not None:
            await runtime.stop()

    async def close(self) -> None:
        runtimes, self.runtimes = list(self.runtimes.values()), {}
        await asyncio.gather(*(r.stop() for r in runtimes), return_exceptions=True)
