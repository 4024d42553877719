"""The bridge's long-lived objects, built once per process and kept at ``app.state.bridge``."""

from __future__ import annotations

from dataclasses import dataclass

from ryze.bridge.control.selfchecks import SelfChecks
from ryze.bridge.metrics import BridgeMetrics
from ryze.bridge.provisioning import Provisioner
from ryze.bridge.runtimes import IntegrationManager
from ryze.bridge.settings import BridgeSettings
from ryze.bridge.store.db import BridgeDB
from ryze.bridge.store.repositories import Repositories
from ryze.chatwoot import ChatwootSessions
from ryze.common.crypto import SecretBox
from ryze.common.files import private_dir
from ryze.common.outbound import FetchPolicy


@dataclass
class BridgeServices:
    settings: BridgeSettings
    db: BridgeDB
    repos: Repositories
    sessions: ChatwootSessions
    box: SecretBox
    manager: IntegrationManager
    provisioner: Provisioner
    metrics: BridgeMetrics
    selfchecks: SelfChecks

    @classmethod
    def build(cls, settings: BridgeSettings) -> BridgeServices:
        private_dir(settings.data_dir, tighten=True)  # the key file and (default) the database
        db = BridgeDB(settings.database_url)
        repos = Repositories.create(db)
        metrics = BridgeMetrics()
        sessions = ChatwootSessions(
            limit_per_host=settings.chatwoot_connections_per_host,
            timeout=settings.chatwoot_timeout,
            on_request=metrics.chatwoot_request,
            policy=FetchPolicy.from_setting(settings.fetch_allow, setting="BRIDGE_FETCH_ALLOW"),
        )
        box = SecretBox.from_setting(settings.encryption_key, settings.key_file)
        manager = IntegrationManager(
            settings=settings, repos=repos, sessions=sessions, box=box, metrics=metrics
        )
        metrics.watch(lambda: [runtime.health for runtime in manager.runtimes.values()])
        selfchecks = SelfChecks(
            settings=settings, manager=manager, store=repos.selfchecks, rooms=SelfChecks.connection_room
        )
        manager.on_build.append(selfchecks.attach)
        provisioner = Provisioner(
            settings=settings, repos=repos, sessions=sessions, box=box, manager=manager, selfchecks=selfchecks
        )
        return cls(settings, db, repos, sessions, box, manager, provisioner, metrics, selfchecks)

    async def start(self) -> None:
        await self.db.migrate()
        self.db.start()
        await self.repos.outbound.prune(self.settings.job_retention_seconds)
        await self.manager.start_all()
        await self.selfchecks.load()

    async def close(self) -> None:
        await self.selfchecks.close()
        await self.manager.close()
        await self.sessions.close()
        await self.db.close()
